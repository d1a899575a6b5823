"""The organism's bars, measured with the suite's own engine on held-out problems.

- ``accuracy``: greedy answer == gold (official extraction).
- ``accuracy_zero_latents``: the same with all six fed latents zeroed
  (``Intervention("latent_post_prj", P1..P6, Zero())``); ``zero_drop_pp`` = the drop in points.
- ``lens_step12_any``: share of problems where step 1 or step 2 is the last-layer logit-lens top-1
  (``engine.logits(trace.latent_pre[:, k])``) at some position P0..P6; ``lens_any_layer`` allows any
  layer (``engine.logit_lens``); per-position shares are reported too.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..data import Problem, answers_match

POSITIONS = tuple(f"P{k}" for k in range(7))
BARS = {"accuracy": 0.90, "zero_drop_pp": 40.0, "lens_step12_any": 0.60}


def _number_id(tok, value: float) -> int | None:
    if not float(value).is_integer():
        return None
    ids = tok(str(int(value)), add_special_tokens=False)["input_ids"]
    return ids[0] if len(ids) == 1 and ids[0] != tok.unk_token_id else None


@torch.no_grad()
def measure_bars(model, problems: Sequence[Problem], *, batch_size: int = 250) -> dict:
    from ..engine import CodiEngine, Intervention, Record, Zero

    engine = CodiEngine(model)
    tok = model.tokenizer
    zero = [Intervention("latent_post_prj", tuple(f"P{k}" for k in range(1, 7)), Zero())]
    correct, correct_zero = [], []
    hit_last = np.zeros((len(problems), 7, 2), dtype=bool)
    hit_any = np.zeros((len(problems), 7, 2), dtype=bool)
    for start in range(0, len(problems), batch_size):
        chunk = list(problems[start:start + batch_size])
        qs = [p.question for p in chunk]
        n = len(chunk)
        variants = [(i, ()) for i in range(n)] + [(i, zero) for i in range(n)]
        trace = engine.run(qs, variants=variants, record=Record(sites=("resid_post",), logits=False),
                           max_new_tokens=8)
        for i, p in enumerate(chunk):
            correct.append(answers_match(trace.answer[i], p.answer))
            correct_zero.append(answers_match(trace.answer[n + i], p.answer))
        targets = [[_number_id(tok, p.intermediates[0]), _number_id(tok, p.intermediates[1])] for p in chunk]
        top_last = engine.logits(trace.latent_pre[:n].to(model.device, model.base_dtype)).argmax(-1)  # [n, 7]
        for i in range(n):
            for k in range(7):
                for s in range(2):
                    hit_last[start + i, k, s] = int(top_last[i, k]) == targets[i][s]
        for layer in range(model.n_layers):
            for k, pos in enumerate(POSITIONS):
                top = engine.logit_lens(trace, layer, pos)[:n].argmax(-1)
                for i in range(n):
                    for s in range(2):
                        hit_any[start + i, k, s] |= int(top[i]) == targets[i][s]
    acc = float(np.mean(correct))
    acc_zero = float(np.mean(correct_zero))
    res = {
        "n": len(problems),
        "accuracy": acc,
        "accuracy_zero_latents": acc_zero,
        "zero_drop_pp": 100.0 * (acc - acc_zero),
        "lens_step12_any": float(hit_last.any(axis=(1, 2)).mean()),
        "lens_step1_any": float(hit_last[:, :, 0].any(1).mean()),
        "lens_step2_any": float(hit_last[:, :, 1].any(1).mean()),
        "lens_any_layer_step12_any": float(hit_any.any(axis=(1, 2)).mean()),
        "lens_by_position": {pos: {"step1": float(hit_last[:, k, 0].mean()), "step2": float(hit_last[:, k, 1].mean())}
                             for k, pos in enumerate(POSITIONS)},
    }
    res["bars"] = {k: {"threshold": t, "value": res[k], "met": bool(res[k] >= t)} for k, t in BARS.items()}
    return res


@torch.no_grad()
def latent_states(model, problems: Sequence[Problem], batch_size: int = 250, *, fed: bool = False) -> torch.Tensor:
    """``[N, 7, D]`` last-layer post-norm latents h_0..h_6 from the engine, or with ``fed`` the
    ``[N, 6, D]`` fed latents e_1..e_6."""
    from ..engine import CodiEngine, Record

    engine = CodiEngine(model)
    out = []
    for start in range(0, len(problems), batch_size):
        chunk = list(problems[start:start + batch_size])
        trace = engine.run([p.question for p in chunk], record=Record(sites=(), logits=False), max_new_tokens=1)
        out.append(trace.latent_post if fed else trace.latent_pre)
    return torch.cat(out)


def linear_probe(model, train: Sequence[Problem], heldout: Sequence[Problem], *, epochs: int = 300,
                 fed: bool = False) -> dict:
    """Held-out decodability of step 1 / step 2 from each latent h_k (``fed``: each fed e_k, positions
    P1..P6): a multinomial logistic probe (full-batch Adam, weight decay) trained on training-problem
    latents, scored on held-out latents (value combinations never trained on)."""
    xs_tr, xs_te = latent_states(model, train, fed=fed), latent_states(model, heldout, fed=fed)
    res: dict = {}
    for s, name in enumerate(("step1", "step2")):
        y_tr = torch.tensor([int(p.intermediates[s]) for p in train])
        y_te = torch.tensor([int(p.intermediates[s]) for p in heldout])
        classes = int(max(y_tr.max(), y_te.max())) + 1
        per_pos = {}
        for k in range(xs_tr.shape[1]):
            x_tr, x_te = xs_tr[:, k].float(), xs_te[:, k].float()
            mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-6
            x_tr, x_te = (x_tr - mu) / sd, (x_te - mu) / sd
            torch.manual_seed(0)
            probe = torch.nn.Linear(x_tr.shape[1], classes)
            opt = torch.optim.Adam(probe.parameters(), lr=0.05, weight_decay=1e-3)
            for _ in range(epochs):
                opt.zero_grad()
                torch.nn.functional.cross_entropy(probe(x_tr), y_tr).backward()
                opt.step()
            per_pos[f"P{k + 1 if fed else k}"] = float((probe(x_te).argmax(-1) == y_te).float().mean())
        res[name] = {"by_position": per_pos, "best": max(per_pos.values()),
                     "best_position": max(per_pos, key=per_pos.get)}
    return res


def patch_subset(heldout: Sequence[Problem], n: int = 200) -> list[Problem]:
    """``n`` held-out problems at an even stride (every template and family): the card's patching set."""
    return list(heldout)[::max(1, len(heldout) // n)][:n]


def measure_design(model, train: Sequence[Problem], heldout: Sequence[Problem], design, *,
                   n_patch: int = 200) -> dict:
    """The model card's direct measurement of a design, at every (intermediate, fed position):

    - ``probe``: held-out linear-probe accuracy on the fed latent e_k (``linear_probe(fed=True)``:
      trained on training problems, scored on held-out value combinations);
    - ``donor``: the share of ``n_patch`` held-out problems (an even stride: every template and family)
      whose answer becomes the donor-implied one when e_k is patched from a single donor problem with
      another value
      (``codi_probe.experiments.carriers.donor_patching``): the total effect, later fed latents recomputed;
    - ``donor_direct``: the same with every later fed latent held at its clean value, scored against the
      answer implied with the other intermediate at its own value: the direct effect, which locates a
      carrier.

    Independent of the catalogue's claims (which use grouped-fold nearest means and value-group means)."""
    from ..engine import CodiEngine, Record
    from ..experiments.carriers import donor_patching

    engine = CodiEngine(model)
    probe = linear_probe(model, train, heldout, fed=True)
    sub = patch_subset(heldout, n_patch)
    trace = engine.run([p.question for p in sub], record=Record(sites=(), logits=False), max_new_tokens=1)
    donor, direct = ({name: {f"P{k}": float(donor_patching(engine, sub, trace, name, k, hold_later=hold).mean())
                             for k in range(1, 7)} for name in ("step1", "step2")} for hold in (False, True))
    return {"design": design.to_json(), "probe": {n: probe[n]["by_position"] for n in ("step1", "step2")},
            "donor": donor, "donor_direct": direct, "n_patch": len(sub)}
