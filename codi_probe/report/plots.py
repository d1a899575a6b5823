"""The report's figures (matplotlib, Agg canvas, no pyplot state), one :class:`Panel` each.

A panel whose data the report lacks, or carries malformed, keeps its title and gets a visible note
instead of a figure; building the panels never raises.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from . import details as D
from .fmt import interval, num

DPI = 100


class Missing(Exception):
    """The report lacks a panel's data (the message is the visible note)."""


@dataclass(frozen=True)
class Panel:
    """One figure of the report: PNG bytes, or ``None`` with a note saying why not."""

    slug: str
    title: str
    caption: str
    png: bytes | None = None
    note: str | None = None


def _figure(n: int, width: float = 4.2, height: float = 3.4, cols: int = 3) -> tuple[Figure, list[Any]]:
    cols = max(1, min(cols, n))
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(width * cols, height * rows), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(rows, cols, i + 1) for i in range(n)]
    return fig, axes


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _heatmap(ax: Any, values: list[list[float]], rows: list[Any], cols: list[Any], *, vmin: float | None = None,
             vmax: float | None = None, label: str = "") -> None:
    arr = np.asarray(values, dtype=float)
    image = ax.imshow(arr, cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(cols)), [str(c) for c in cols])
    ax.set_yticks(range(len(rows)), [str(r) for r in rows])
    if arr.size <= 64:
        finite = arr[np.isfinite(arr)]
        mid = (finite.min() + finite.max()) / 2 if finite.size else 0.0
        for (i, j), v in np.ndenumerate(arr):
            ax.text(j, i, "" if not np.isfinite(v) else f"{v:.2f}", ha="center", va="center", fontsize=7,
                    color="black" if v > mid else "white")
    ax.figure.colorbar(image, ax=ax, shrink=0.8, label=label)


def _importance(report: dict[str, Any]) -> tuple[bytes, str | None]:
    grid = D.requested(report, "method_position")
    fig, (ax,) = _figure(1, width=9, height=3.8)
    if grid is not None:
        mean = np.asarray(D.matrix(grid))
        has_ci = "lo" in grid and "hi" in grid
        lo, hi = (np.asarray(D.matrix(grid, "lo")), np.asarray(D.matrix(grid, "hi"))) if has_ci else (mean, mean)
        x = np.arange(len(grid["cols"]))
        width = 0.8 / max(1, len(grid["rows"]))
        for i, method in enumerate(grid["rows"]):
            offset = (i - (len(grid["rows"]) - 1) / 2) * width
            yerr = np.abs(np.vstack([mean[i] - lo[i], hi[i] - mean[i]])) if has_ci else None
            ax.errorbar(x + offset, mean[i], yerr=yerr, fmt="o", ms=4, capsize=2, label=str(method))
        ax.set_xticks(x, [str(c) for c in grid["cols"]])
        note = None if has_ci else "no CIs in this report (lo/hi absent)"
    else:
        drawn = 0
        for base_id, key, label in (("IMP-01", "failure_rate_by_position", "mean over methods (IMP-01)"),
                                    ("IMP-02", "zero_failure_by_position", "zero ablation (IMP-02)")):
            values = D.detail(report, base_id, key)
            if values:
                ax.plot(*D.series(values), "o-", label=label)
                drawn += 1
        if not drawn:
            raise Missing(D.missing_note("method_position"))
        note = D.missing_note("method_position") + " (per-method CIs); showing the method means without CIs"
    ax.set_xlabel("latent position")
    ax.set_ylabel("failure rate (baseline-correct problems)")
    ax.legend(fontsize=7, ncols=2)
    return _png(fig), note


def _method_heatmap(report: dict[str, Any]) -> tuple[bytes, str | None]:
    grid = D.requested(report, "method_position")
    if grid is None:
        raise Missing(D.missing_note("method_position"))
    fig, (ax,) = _figure(1, width=7, height=0.5 * len(grid["rows"]) + 1.8)
    _heatmap(ax, D.matrix(grid), grid["rows"], grid["cols"], vmin=0, label="failure rate")
    ax.set_xlabel("latent position")
    ax.set_ylabel("corruption method")
    return _png(fig), None


def _curve(report: dict[str, Any], base_id: str, key: str) -> tuple[list[str], list[float]]:
    """A claim's ``{label: number}`` (or list) details as labels and values; :class:`Missing` if absent."""
    curve = D.detail(report, base_id, key)
    if not curve:
        raise Missing(f"not in this report: needs {base_id}.details.{key}")
    return D.series(curve)


def _layer_recovery(report: dict[str, Any]) -> tuple[bytes, str | None]:
    _labels, ys = _curve(report, "LAY-01", "pooled_recovery_by_layer")
    layers = np.arange(len(ys))
    fig, (ax,) = _figure(1, width=7, height=3.4)
    ax.plot(layers, ys, "o-", label="pooled recovery")
    ci = D.requested(report, "recovery_ci")
    if ci is not None:
        ax.fill_between(layers, ci["lo"], ci["hi"], alpha=0.25, label=f"CI{100 * ci.get('level', 0.95):g}")
    for i, layer in enumerate(D.detail(report, "LAY-01", "band") or []):
        ax.axvspan(layer - 0.5, layer + 0.5, color="orange", alpha=0.15, label="claimed band" if i == 0 else None)
    ax.set_xticks(layers)
    ax.set_xlabel("layer patched (0-based block)")
    ax.set_ylabel("recovery of the clean answer")
    ax.legend(fontsize=7)
    return _png(fig), None if ci is not None else D.missing_note("recovery_ci") + " (CI band)"


def _top_heads(report: dict[str, Any]) -> tuple[bytes, str | None]:
    heads = D.requested(report, "top_heads")
    if not heads:
        raise Missing(D.missing_note("top_heads"))
    heads = heads[:6]
    fig, axes = _figure(len(heads), width=3.6, height=3.2)
    for ax, head in zip(axes, heads):
        _heatmap(ax, D.matrix(head), head["rows"], head["cols"], vmin=0)
        score = f", score {num(head.get('score'), 3)}" if head.get("score") is not None else ""
        ax.set_title(f"L{head['layer']} H{head['head']}{score}", fontsize=9)
        ax.set_xlabel("key")
        ax.set_ylabel("query")
    return _png(fig), None


def _rho_title(claim: dict[str, Any]) -> str:
    p = f", p = {num(claim.get('p_value'), 2)}" if claim.get("p_value") is not None else ""
    return f"{claim['id']}\nwithin-problem ρ = {num(claim.get('value'), 3)} {interval(claim.get('ci'))}{p}"


def _scatter(report: dict[str, Any]) -> tuple[bytes, str | None]:
    base_id, key, _shape = D.REQUESTED["scatter"]
    claims = D.claims_with(report, base_id, key)
    if not claims:
        raise Missing(D.missing_note("scatter"))
    fig, axes = _figure(len(claims), width=4, height=3.6)
    for ax, claim in zip(axes, claims):
        data = claim["details"][key]
        att, imp = np.asarray(data["attention"], float), np.asarray(data["importance"], float)
        if att.shape != imp.shape or att.ndim != 2:
            raise ValueError(f"{claim['id']}: attention {att.shape} and importance {imp.shape} differ")
        att_c, imp_c = att - att.mean(1, keepdims=True), imp - imp.mean(1, keepdims=True)
        for j, position in enumerate(data["positions"]):
            ax.scatter(att_c[:, j], imp_c[:, j], s=12, alpha=0.7, label=str(position))
        ax.set_title(_rho_title(claim), fontsize=8)
        ax.set_xlabel("attention − problem mean")
        ax.set_ylabel("importance − problem mean")
    axes[0].legend(fontsize=6, ncols=2)
    return _png(fig), None


def _lens_grid(report: dict[str, Any]) -> tuple[bytes, str | None]:
    base_id, key, _shape = D.REQUESTED["lens_grid"]
    claims = D.claims_with(report, "LENS-02", key) + D.claims_with(report, base_id, key)
    if claims:
        fig, axes = _figure(len(claims), width=4.4, height=3.4)
        for ax, claim in zip(axes, claims):
            grid = claim["details"][key]
            _heatmap(ax, D.matrix(grid), grid["rows"], grid["cols"], vmin=0, vmax=1)
            ax.set_title(claim["id"], fontsize=9)
            ax.set_xlabel("latent position")
            ax.set_ylabel("layer")
        return _png(fig), None
    rows = D.claims_with(report, "LENS-02", "rate_by_position") + D.claims_with(report, base_id, "rate_by_position")
    if not rows:
        raise Missing(D.missing_note("lens_grid"))
    cols, _ = D.series(rows[0]["details"]["rate_by_position"])
    values = [D.series(c["details"]["rate_by_position"])[1] for c in rows]
    fig, (ax,) = _figure(1, width=7, height=0.6 * len(rows) + 1.8)
    _heatmap(ax, values, [c["id"] for c in rows], cols, vmin=0, vmax=1, label="top-1 rate")
    ax.set_xlabel("latent position (last layer)")
    return _png(fig), D.missing_note("lens_grid") + "; showing the last layer only (rate_by_position)"


def _accuracy(report: dict[str, Any]) -> tuple[bytes, str | None]:
    labels, ys = _curve(report, "ACC-03", "accuracy_by_iterations")
    order = sorted(range(len(labels)), key=lambda i: float(labels[i]))
    x = [float(labels[i]) for i in order]
    y = np.array([ys[i] for i in order])
    fig, (ax,) = _figure(1, width=6, height=3.4)
    ci = D.requested(report, "accuracy_ci")
    if ci is not None:
        bounds = np.array([ci[labels[i]] for i in order], float)
        ax.errorbar(x, y, yerr=np.abs(np.vstack([y - bounds[:, 0], bounds[:, 1] - y])), fmt="o-", capsize=3)
    else:
        ax.plot(x, y, "o-")
    ax.set_xticks(x)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("latent iterations (0 = skip thinking)")
    ax.set_ylabel("accuracy")
    return _png(fig), None if ci is not None else D.missing_note("accuracy_ci") + " (CIs)"


def _noise_sweep(report: dict[str, Any]) -> tuple[bytes, str | None]:
    """COR-01 records the KL at every relative σ (``sigma_relative``, ``mean_kl``) and generates answers at the
    smallest σ only: its value, the share of problems failing there, is the one red point."""
    claim = next(iter(D.claims_with(report, "COR-01", "sigma_relative")), None)
    if claim is None or "mean_kl" not in claim["details"]:
        raise Missing("not in this report: needs COR-01.details.sigma_relative and COR-01.details.mean_kl")
    sweep = claim["details"]
    fig, (ax,) = _figure(1, width=6, height=3.4)
    ax.plot(sweep["sigma_relative"], sweep["mean_kl"], "o-", label="mean KL (nats)")
    ax.set_xscale("log")
    ax.set_xlabel("relative noise σ (× |h|)")
    ax.set_ylabel("mean KL at the answer token")
    twin = ax.twinx()
    if claim.get("value") is not None:
        twin.plot([sweep["sigma_relative"][0]], [claim["value"]], "s", color="tab:red",
                  label=f"share of problems failing at σ = {sweep['sigma_relative'][0]:g} (COR-01's value)")
    twin.set_ylabel("share of problems failing")
    fig.legend(fontsize=7, loc="upper left")
    return _png(fig), None


PanelBuilder = Callable[[dict[str, Any]], tuple[bytes, str | None]]
PANELS: tuple[tuple[str, str, str, PanelBuilder], ...] = (
    ("importance", "Position importance per corruption method",
     "Failure rate under single-position corruption, per method, with CIs (IMP-01, IMP-02).", _importance),
    ("method-position", "Method × position failure rate", "IMP-01: the same rates as a heatmap.", _method_heatmap),
    ("layer-recovery", "Layer-wise patching recovery",
     "LAY-01: recovery of the clean answer when patching each layer (pooled over pairs as a ratio of sums); "
     "the claimed band shaded.", _layer_recovery),
    ("top-heads", "Latent attention of the top heads",
     "Mean attention among the latent positions (query rows, key columns) for the top heads.", _top_heads),
    ("attention-importance", "Attention against importance",
     ("ATT-01: per-problem centred attention and importance per position; the within-problem Spearman ρ in "
     "each title."), _scatter),
    ("logit-lens", "Logit lens over positions and layers",
     "LENS-02/LENS-10: top-1 rate of the intermediate or the answer per latent position and layer.", _lens_grid),
    ("accuracy-iterations", "Accuracy against latent iterations", "ACC-03: accuracy with k latent iterations.",
     _accuracy),
    ("noise-sweep", "Damage against noise scale",
     "COR-01: answer-token KL by σ, and the share of problems failing at the smallest σ.",
     _noise_sweep),
)


def build_panels(report: dict[str, Any], only: Collection[str] | None = None) -> list[Panel]:
    """Every panel of the report (or the slugs in ``only``); missing or malformed data becomes a note,
    never an exception."""
    panels = []
    for slug, title, caption, build in PANELS:
        if only is not None and slug not in only:
            continue
        try:
            png, note = build(report)
            panels.append(Panel(slug, title, caption, png, note))
        except Missing as exc:
            panels.append(Panel(slug, title, caption, None, str(exc)))
        except Exception as exc:  # noqa: BLE001 -- malformed details: say so on the page, keep going
            panels.append(Panel(slug, title, caption, None, f"could not render: {type(exc).__name__}: {exc}"))
    return panels
