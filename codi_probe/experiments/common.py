"""Shared pieces of the claim experiments: batched conditions, scoring, readout tokens, depth → layer.

Every experiment runs all of its conditions as rows of one engine call (the question prefix once per
problem, the variants batched) and scores at the problem level.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import torch

from ..data import answers_match
from ..engine import CodiEngine, Record, Trace
from ..metrics import answer_readout_index, kl_from_reference, reference_log_probs

NO_RECORD = Record(sites=(), logits=False)  # sweeps keep answers only; scores come teacher-forced


def depth_to_layer(depth: float, n_layers: int) -> int:
    """Relative depth → block index: layer 8 of 16 is depth 0.5; early/middle/late are 0.25/0.5/0.875."""
    if not 0.0 <= depth <= 1.0:
        raise ValueError(f"relative depth must lie in [0, 1], got {depth}")
    return min(n_layers - 1, int(round(depth * n_layers)))


def middle_layer(n_layers: int) -> int:
    """The block of a P0..P6 grid at relative depth 0.5 (:func:`depth_to_layer`), moved off the last block
    when the model has a block before it: the last block's P6 cell is dead by construction
    (:func:`codi_probe.engine.positions.is_dead_cell`), so a full grid there would be refused. Unchanged on
    models of 4 or more blocks (block 8 of 16); block 1 of 3 and block 0 of 2."""
    return min(depth_to_layer(0.5, n_layers), max(0, n_layers - 2))


@dataclass
class ConditionRuns:
    """One batched run of several named conditions; ``rows[name]`` are that condition's trace rows,
    one per problem, in problem order."""

    trace: Trace
    rows: dict[str, list[int]]
    references: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)  # readout_kl's, per reference

    def answers(self, name: str) -> list[float | None]:
        return [self.trace.answer[r] for r in self.rows[name]]

    def correct(self, name: str, golds: Sequence[float | None]) -> np.ndarray:
        return np.array([answers_match(a, g) for a, g in zip(self.answers(name), golds)], dtype=bool)

    def changed(self, name: str, reference: str = "baseline") -> np.ndarray:
        """Problems whose parsed answer (or, when unparsable, answer text) differs from the reference."""
        t = self.trace
        out = []
        for r, b in zip(self.rows[name], self.rows[reference]):
            out.append(t.answer[r] != t.answer[b] if t.answer[b] is not None or t.answer[r] is not None
                       else t.answer_text[r] != t.answer_text[b])
        return np.array(out, dtype=bool)


def engine_key(engine: CodiEngine, problems) -> dict:
    """What any stored result of ``engine`` on ``problems`` depends on besides the model weights (whose
    sha256 keys a :class:`~codi_probe.engine.cache.TraceCache` separately): the package version, the loop
    (padding, latents, variant, answer budget), dtype, device type, special ids, answer format, the tokenizer's vocabulary
    and the ordered problem set (ids, questions, answers)."""
    import hashlib
    import json

    from .. import __version__

    model = engine.model
    problem_set = hashlib.sha256(json.dumps([[str(p.id), p.question, p.answer] for p in problems]).encode())
    vocab = hashlib.sha256(json.dumps(sorted(model.tokenizer.get_vocab().items())).encode()).hexdigest()
    return {"codi_probe": __version__, "padding": engine.padding, "num_latent": engine.num_latent,
            "answer_budget": engine.answer_budget,
            "dtype": str(model.base_dtype), "device": model.device.type, "special": repr(model.special),
            "answer_format": model.config.answer_format, "variant": model.config.variant,
            "tokenizer_vocab": vocab, "problems": problem_set.hexdigest()}


def run_conditions(engine: CodiEngine, questions: Sequence[str], conditions: Mapping[str, Sequence],
                   *, record: Record = NO_RECORD, max_new_tokens: int = 16,
                   teacher_force: Sequence[Sequence[int]] | None = None,
                   readout: Sequence[int] | None = None, progress: str = "conditions") -> ConditionRuns:
    """``conditions[name][i]`` is the intervention list for problem ``i`` under that condition.
    A ``"baseline"`` condition (no interventions) is always included. With ``teacher_force`` (one
    target list per problem), every condition is scored on the same targets instead of generated;
    with ``readout`` (one index per problem) only the logits at that index are kept. ``progress``: the
    label of the run's step bar (:meth:`CodiEngine.run`; drawn only where bars are shown, on long runs)."""
    conds = {"baseline": [()] * len(questions), **{k: v for k, v in conditions.items() if k != "baseline"}}
    variants, rows, targets, idx = [], {}, [], []
    for name, per_problem in conds.items():
        if len(per_problem) != len(questions):
            raise ValueError(f"condition {name!r} has {len(per_problem)} rows for {len(questions)} problems")
        rows[name] = list(range(len(variants), len(variants) + len(questions)))
        variants.extend((i, list(ivs)) for i, ivs in enumerate(per_problem))
        if teacher_force is not None:
            targets.extend(teacher_force[i] for i in range(len(questions)))
        if readout is not None:
            idx.extend(readout)
    trace = engine.run(questions, variants=variants, record=record, max_new_tokens=max_new_tokens,
                       teacher_force=targets if teacher_force is not None else None,
                       readout=idx if readout is not None else None, progress=progress)
    return ConditionRuns(trace, rows)


def answer_target(engine: CodiEngine, value: float | str) -> tuple[list[int], int]:
    """Token ids of the model's answer string for ``value`` (its ``answer_format`` + EOS) and the index
    of the first answer-number token in them (the readout: F-04/F-10)."""
    model = engine.model
    number = number_text(value)
    text = model.config.answer_format.format(number)
    ids = model.tokenizer(text, add_special_tokens=False)["input_ids"] + [model.special.eos[0]]
    return ids, answer_readout_index(model.tokenizer, ids, number)


def number_text(value: float | str) -> str:
    """How a value is written in an answer: integers without a decimal point."""
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def readout_logits(runs: ConditionRuns, name: str) -> torch.Tensor:
    """``[n_problems, V]`` logits at each problem's readout index (a run made with ``readout=``)."""
    return torch.stack([runs.trace.answer_logits[r][0] for r in runs.rows[name]])


def readout_kl(runs: ConditionRuns, name: str, reference: str = "baseline") -> np.ndarray:
    """Per-problem KL(reference ‖ condition), summed over the vocabulary, at the readout token (the
    reference's log-probabilities are computed once per ``runs``)."""
    if reference not in runs.references:
        runs.references[reference] = reference_log_probs(readout_logits(runs, reference))
    return kl_from_reference(runs.references[reference], readout_logits(runs, name)).numpy()


def golds(problems) -> list[float | None]:
    return [p.answer for p in problems]


def filtered_effect(filtered: np.ndarray, unfiltered: np.ndarray, keep: np.ndarray, name: str) -> dict:
    """An effect measured on a filtered subset, reported with the same problems' unfiltered effect beside it
    (claims.md F-17: effects on pre-filtered sets must not stand alone). ``filtered``: the per-problem values
    on the ``keep`` rows (``[n_keep, ...]``); ``unfiltered``: a per-problem value on every problem
    (``[n, ...]``); both are averaged over problems (per column when 2-D)."""
    keep = np.asarray(keep, dtype=bool)
    f, u = np.asarray(filtered, dtype=float), np.asarray(unfiltered, dtype=float)
    if len(f) != int(keep.sum()) or len(u) != len(keep):
        raise ValueError(f"filtered rows ({len(f)}) must be the kept problems ({int(keep.sum())}) and unfiltered "
                         f"rows ({len(u)}) every problem ({len(keep)})")
    return {"filter": name, "n filtered": int(keep.sum()), "n all": int(len(keep)),
            "filtered": f.mean(0).tolist() if len(f) else None, "unfiltered": u.mean(0).tolist() if len(u) else None}


def decided_below_minimum(claim, n: int) -> bool:
    """Decide ``claim`` "inconclusive (n below minimum)" without evidence when ``n`` problems are below its
    hypothesis's minimum, and say so (True): the caller then computes no statistic that a handful of
    problems cannot give (a mean test needs 2 problems, a grouped fold needs groups). Declared controls
    are recorded as not established (False); the rule judges none below the minimum."""
    hyp = claim.hypothesis
    if n >= hyp.min_n:
        return False
    claim.decide([], n=n, controls={c: False for c in hyp.controls} or None)
    return True
