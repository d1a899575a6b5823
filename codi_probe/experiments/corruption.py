"""Corrupting one latent position at one layer (the CCTA design of IMP-01/02, COR-01/02, ATT-01/02).

For every problem, method and position, one row of a batched run: generation scores failures
(baseline correct ∧ corrupted wrong) and answer changes; a second, teacher-forced run on each
problem's clean greedy answer reads the KL at the first answer-number token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from ..engine import CodiEngine, Intervention, Noise, Op, Patch, Record, Shuffle, Zero
from ..engine.cache import TraceCache
from ..engine.positions import LATENT_POSITIONS
from .common import engine_key, golds, number_text, readout_kl, run_conditions

OpFactory = Callable[[int, str], Op]  # (problem index, position) -> op
DEFAULT_CHUNK = 16  # problems per chunk of a cached grid


def gs_methods(clean, n_problems: int, seed: int = 0, rows: Mapping[int, int] | None = None) -> dict[str, OpFactory]:
    """The seven CCTA corruption methods of the seeds (IMP-01): zero, absolute Gaussian noise
    σ ∈ {0.1, 0.5, 1, 2}, replacement by another problem's activation, and a position shuffle (the
    value of another latent position of the same problem). Seeded per problem.

    Factories take the problem's index in the whole set of ``n_problems`` (donors and noise seeds
    depend on it alone, so a sweep run in chunks draws what one batch would); ``rows`` maps that index
    to its row in ``clean`` (default: the same index)."""
    donors, swap = _gs_draws(n_problems, seed)
    row = (lambda i: i) if rows is None else rows.__getitem__
    methods: dict[str, OpFactory] = {"zero": lambda i, p: Zero()}
    for sigma in (0.1, 0.5, 1.0, 2.0):
        methods[f"noise_{sigma:g}"] = lambda i, p, s=sigma: Noise(s, seed=seed * 7919 + i)
    methods["random"] = lambda i, p: Patch(clean, row(donors[i]))
    methods["shuffle"] = lambda i, p: Shuffle(clean, row(i), {p: swap[(i, p)]})
    return methods


def _gs_draws(n_problems: int, seed: int) -> tuple[list[int], dict[tuple[int, str], str]]:
    """The random draws of :func:`gs_methods`: each problem's donor problem and, per position, the
    position its shuffle reads."""
    rng = np.random.default_rng(seed)
    donors = [(i + 1 + int(rng.integers(max(1, n_problems - 1)))) % n_problems for i in range(n_problems)]
    others = {p: [q for q in LATENT_POSITIONS if q != p] for p in LATENT_POSITIONS}
    swap = {(i, p): others[p][int(rng.integers(len(others[p])))] for i in range(n_problems) for p in LATENT_POSITIONS}
    return donors, swap


def relative_noise(sigmas: Sequence[float], seed: int = 0) -> dict[str, OpFactory]:
    """Gaussian noise with per-element std σ·‖h‖/√D (so E‖ε‖ ≈ σ‖h‖), the same direction for every σ."""
    return {f"rel_noise_{s:g}": (lambda i, p, s=s: Noise(s, relative=True, seed=seed * 7919 + i)) for s in sigmas}


@dataclass
class CorruptionResult:
    """Per-problem outcomes; ``failure[m][p]``, ``changed[m][p]``, ``kl[m][p]`` are arrays over problems."""

    layer: int
    positions: tuple[str, ...]
    methods: tuple[str, ...]
    baseline_correct: np.ndarray
    failure: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    changed: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    kl: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    fallback: np.ndarray | None = None  # [n_problems] bool: clean answer had no number, read at index 0

    @property
    def readout_fallbacks(self) -> int:
        return int(self.fallback.sum()) if self.fallback is not None else 0

    def per_position(self, metric: str, method: str | None = None) -> np.ndarray:
        """``[n_problems, n_positions]``: the metric for one method, or its mean over methods. ``failure`` and
        ``changed`` exist only for the methods whose answers were generated (``corruption_grid(generate=...)``)."""
        table = getattr(self, metric)
        names = [method] if method else list(self.methods)
        missing = [m for m in names if m not in table]
        if missing:
            raise ValueError(f"{metric} was not measured for {', '.join(missing)} (teacher-forced only: KL)")
        return np.mean([[table[m][p] for p in self.positions] for m in names], axis=0).T

    def problem_tensors(self) -> list[dict[str, torch.Tensor]]:
        """One dict per problem (``failure``/``changed`` uint8 and ``kl`` float64, each
        ``[n_methods, n_positions]``; ``baseline_correct`` and ``fallback`` ``[1]`` uint8), the unit a
        TraceCache stores."""
        grids = {k: np.stack([[getattr(self, k)[m][p] for p in self.positions] for m in self.methods])
                 for k in ("failure", "changed", "kl")}  # [M, P, n]
        out = []
        for i in range(len(self.baseline_correct)):
            t = {k: torch.from_numpy(np.ascontiguousarray(v[:, :, i])) for k, v in grids.items()}
            t["failure"], t["changed"] = t["failure"].to(torch.uint8), t["changed"].to(torch.uint8)
            t["kl"] = t["kl"].to(torch.float64)
            t["baseline_correct"] = torch.tensor([int(self.baseline_correct[i])], dtype=torch.uint8)
            t["fallback"] = torch.tensor([int(self.fallback[i]) if self.fallback is not None else 0], dtype=torch.uint8)
            out.append(t)
        return out

    @classmethod
    def from_problem_tensors(cls, layer: int, positions: tuple[str, ...], methods: tuple[str, ...],
                             rows: Sequence[Mapping[str, torch.Tensor]]) -> "CorruptionResult":
        """The inverse of :meth:`problem_tensors`."""
        base = np.array([bool(r["baseline_correct"][0]) for r in rows], dtype=bool)
        res = cls(layer, positions, methods, base, fallback=np.array([bool(r["fallback"][0]) for r in rows], dtype=bool))
        for key, dtype in (("failure", bool), ("changed", bool), ("kl", np.float64)):
            stack = np.stack([r[key].numpy() for r in rows], axis=-1) if rows else np.zeros((len(methods), len(positions), 0))
            getattr(res, key).update({m: {p: stack[a, b].astype(dtype) for b, p in enumerate(positions)}
                                      for a, m in enumerate(methods)})
        return res


def corruption_grid(engine: CodiEngine, problems, *, layer: int, methods: Mapping[str, OpFactory] | None = None,
                    positions: Sequence[str] = LATENT_POSITIONS, seed: int = 0, clean=None,
                    max_new_tokens: int = 16, site: str = "resid_post", cache_dir: str | Path | None = None,
                    chunk_size: int | None = None, fp16: bool = False, progress: bool = False,
                    generate: Sequence[str] | None = None) -> CorruptionResult:
    """Run every (method, position) corruption of ``site`` at block ``layer`` on every problem.

    By default every problem runs in one batched call, whose memory grows with the number of rows
    (problems x methods x positions). With ``chunk_size`` (the seeds' methods only) problems run that
    many at a time, with the same donors and noise draws as one batch, so the result is the same.
    With ``cache_dir`` (chunks of ``chunk_size``, default 16) each problem's outcomes also go to a
    :class:`TraceCache` under ``cache_dir``, keyed by the model's weights sha256 and this call's
    configuration (layer, site, positions, seed, tokens, padding, latents, dtype, device, special ids,
    answer format, tokenizer vocabulary and the ordered problem set):
    an interrupted sweep resumes after its last stored chunk and a rerun on an unchanged model reads
    everything back. Chunks need ``padding="exact"``, under which a row does not depend on its batch.
    ``progress`` shows a bar with the time left. ``generate`` (custom methods only): the methods whose
    answers are generated; the others get the teacher-forced KL alone (their ``failure``/``changed`` are
    not measured, and :meth:`CorruptionResult.per_position` refuses them)."""
    problems = list(problems)
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"corruption_grid: chunk_size must be at least 1, got {chunk_size}")
    if cache_dir is None and chunk_size is None:
        if clean is None:
            clean = _clean_run(engine, problems, site, max_new_tokens)
        methods = dict(methods) if methods is not None else gs_methods(clean, len(problems), seed)
        if generate is not None and set(generate) - set(methods):
            raise ValueError(f"corruption_grid: generate names methods that are not in the grid: "
                             f"{sorted(set(generate) - set(methods))}")
        return _grid(engine, problems, range(len(problems)), list(range(len(problems))), clean, methods,
                     layer, positions, max_new_tokens, site, generate)
    if engine.padding != "exact":
        raise ValueError("corruption_grid: chunk_size and cache_dir need padding='exact' (with 'official' padding "
                         "a row's numbers depend on the other questions in its batch)")
    if methods is not None or clean is not None or generate is not None:
        raise ValueError("corruption_grid: chunk_size and cache_dir need the default methods and their own clean "
                         "runs (custom method factories may read a clean trace of the whole set and have no "
                         "identity to key a cache by)")
    chunk = chunk_size or DEFAULT_CHUNK
    names = grid_methods(seed)
    compute = lambda index: grid_chunk(engine, problems, index, layer=layer, positions=positions, seed=seed,
                                       max_new_tokens=max_new_tokens, site=site)

    if cache_dir is None:
        from ..progress import track

        starts = range(0, len(problems), chunk)
        stored = [t for i in track(starts, "corruption grid", "chunk", force=progress)
                  for t in compute(list(range(i, min(len(problems), i + chunk))))]
        return CorruptionResult.from_problem_tensors(layer, tuple(positions), names, stored)
    ids = [str(p.id) for p in problems]
    if len(set(ids)) != len(ids):
        raise ValueError("corruption_grid: problem ids must be unique to key the cache")
    cache = TraceCache(cache_dir, engine.model.weights_sha256(),
                       grid_key(engine, problems, layer, site, positions, seed, max_new_tokens),
                       fp16=fp16, shard_size=chunk)  # a shard per chunk: a kill loses one chunk at most
    where = {pid: i for i, pid in enumerate(ids)}
    cache.sweep(ids, lambda chunk_ids: compute([where[pid] for pid in chunk_ids]), batch=chunk, progress=progress)
    return CorruptionResult.from_problem_tensors(layer, tuple(positions), names, [cache.get(pid) for pid in ids])


def grid_methods(seed: int = 0) -> tuple[str, ...]:
    """The names of :func:`gs_methods`, in order."""
    return tuple(gs_methods(None, 1, seed))


def grid_chunk(engine: CodiEngine, problems, index: list[int], *, layer: int, positions: Sequence[str] = LATENT_POSITIONS,
               seed: int = 0, max_new_tokens: int = 16, site: str = "resid_post") -> list[dict[str, torch.Tensor]]:
    """The seeds' grid (:func:`gs_methods`) on problems ``index`` of ``problems``, as the per-problem tensors
    of :meth:`CorruptionResult.problem_tensors`: the unit of a chunked or cached :func:`corruption_grid`.
    Donors and noise draws are those of the whole set; the clean run covers the chunk and its donors."""
    donors, _ = _gs_draws(len(problems), seed)
    need = sorted(set(index) | {donors[i] for i in index})
    clean_c = _clean_run(engine, [problems[i] for i in need], site, max_new_tokens)
    rows = {i: r for r, i in enumerate(need)}
    part = _grid(engine, [problems[i] for i in index], index, [rows[i] for i in index], clean_c,
                 gs_methods(clean_c, len(problems), seed, rows), layer, positions, max_new_tokens, site)
    return part.problem_tensors()


def _clean_run(engine: CodiEngine, problems, site: str, max_new_tokens: int):
    return engine.run([p.question for p in problems], record=Record(sites=(site,)), max_new_tokens=max_new_tokens)


def grid_key(engine: CodiEngine, problems, layer, site, positions, seed, max_new_tokens) -> dict:
    """What a cached grid's results depend on besides the weights (:func:`~.common.engine_key`)."""
    return {"design": "corruption_grid", "layer": layer, "site": site, "positions": list(positions),
            "methods": list(grid_methods(seed)), "seed": seed, "max_new_tokens": max_new_tokens,
            **engine_key(engine, problems)}


def _grid(engine: CodiEngine, problems, index: Sequence[int], clean_rows: Sequence[int], clean,
          methods: Mapping[str, OpFactory], layer: int, positions: Sequence[str], max_new_tokens: int,
          site: str, generate: Sequence[str] | None = None) -> CorruptionResult:
    """The grid on ``problems`` (whose indices in the whole set are ``index`` and whose rows in
    ``clean`` are ``clean_rows``): one generation run (of the ``generate`` methods, default all) and one
    teacher-forced run, all rows batched."""
    questions = [p.question for p in problems]
    conditions = {f"{m}@{p}": [[Intervention(site, (p,), make(i, p), layer=layer)] for i in index]
                  for m, make in methods.items() for p in positions}
    generated = tuple(methods) if generate is None else tuple(m for m in methods if m in generate)
    gen = run_conditions(engine, questions, {k: v for k, v in conditions.items() if k.split("@")[0] in generated},
                         max_new_tokens=max_new_tokens)
    gold = golds(problems)
    base = gen.correct("baseline", gold)
    targets, readout, fallback = clean_targets(engine, clean)
    targets, readout = [targets[r] for r in clean_rows], [readout[r] for r in clean_rows]
    forced = run_conditions(engine, questions, conditions, teacher_force=targets, readout=readout)
    res = CorruptionResult(layer, tuple(positions), tuple(methods), base,
                           fallback=np.array([fallback[r] for r in clean_rows], dtype=bool))
    for m in methods:
        res.kl[m] = {p: readout_kl(forced, f"{m}@{p}") for p in positions}
        if m in generated:
            res.failure[m] = {p: base & ~gen.correct(f"{m}@{p}", gold) for p in positions}
            res.changed[m] = {p: gen.changed(f"{m}@{p}") for p in positions}
    return res


def clean_targets(engine: CodiEngine, clean) -> tuple[list[list[int]], list[int], list[bool]]:
    """Each problem's clean greedy answer tokens, and the index of its answer-number token (the first
    token when the clean answer has no number; those fallbacks are flagged)."""
    from ..metrics import answer_readout_index

    targets, readout, fallbacks = [], [], []
    for r in range(len(clean.questions)):
        ids = list(clean.answer_ids[r]) or [engine.model.special.eos[0]]
        value = clean.answer[r]
        try:
            if value is None:
                raise ValueError("no number")
            idx = answer_readout_index(engine.model.tokenizer, ids, number_text(value))
            fallbacks.append(False)
        except ValueError:
            idx = 0
            fallbacks.append(True)
        targets.append(ids)
        readout.append(idx)
    return targets, readout, fallbacks


ABLATION_TYPES = {"zero": "zero", "mean": "mean", "resample": "random"}  # type -> method name in its grid


def ablation_types(ccta: CorruptionResult, mean: CorruptionResult, metric: str = "failure",
                   rows: np.ndarray | None = None) -> dict[str, dict[str, float]]:
    """Per ablation type (zero and resample from the CCTA grid, mean from its mean-ablated twin), the
    ``metric``'s mean by position over ``rows`` (default: all problems)."""
    out = {}
    for kind, method in ABLATION_TYPES.items():
        grid = mean if kind == "mean" else ccta
        m = grid.per_position(metric, method)
        m = m if rows is None else m[rows]
        out[kind] = dict(zip(grid.positions, m.mean(0).tolist())) if len(m) else {}
    return out


def shifted_number_token(tokenizer, token: int, plus: int) -> int | None:
    """The token spelling the integer of ``token`` plus ``plus``, with the same leading space (``" 8"`` ->
    ``" 9"`` for ``plus=1``); ``None`` when ``token`` is no integer or the shifted number is not one token."""
    text = tokenizer.decode([token])
    body = text.strip()
    if not body.lstrip("-").isdigit():
        return None
    ids = tokenizer.encode(text[: len(text) - len(text.lstrip())] + str(int(body) + plus), add_special_tokens=False)
    return int(ids[0]) if len(ids) == 1 else None


@torch.no_grad()
def discretized_latents(engine: CodiEngine, trace, plus: int = 0) -> tuple[list[list[Intervention]], float]:
    """COR-03's "discretize" corruption (claims.md 4.C, GS comprehensive intervention): at every fed position
    P_k the latent ``h_(k-1)`` about to be projected (``latent_pre_prj``) is replaced by the input embedding of
    its own logit-lens top-1 token. ``plus != 0`` ("discretize + 1"): a top-1 token that is an integer is
    replaced by the token of that integer plus ``plus`` first. Returns one intervention list per row of
    ``trace`` (``trace.latent_pre[:, k]`` is ``h_k``; one ``Set`` over P1..P6) and the share of the (row, position) cells whose token
    was shifted (0 for ``plus == 0``)."""
    from ..engine import Set
    from ..engine.positions import FED_POSITIONS

    model = engine.model
    weight = model.embed.weight
    tokens = torch.stack([engine.logits(trace.latent_pre[:, k].to(model.device, model.base_dtype)).argmax(-1).cpu()
                          for k in range(len(FED_POSITIONS))], 1)  # [n, 6]: the top-1 token of h_0..h_5
    shifted = 0
    out = []
    for row in tokens.tolist():
        vectors = {}
        for position, tok in zip(FED_POSITIONS, row):
            new = shifted_number_token(model.tokenizer, tok, plus) if plus else None
            shifted += new is not None
            vectors[position] = weight[tok if new is None else new].detach().cpu()
        out.append([Intervention("latent_pre_prj", FED_POSITIONS, Set(vectors))])
    return out, shifted / max(tokens.numel(), 1)
