"""Which problems a claim runs on, chosen by the model's training family, with provenance.

``gsm8k``: GSM8K test in file order. ``cyw`` / ``ao``: template families with ground-truth
intermediates (``ao`` uses its held-out split). A path (relative to the model directory or absolute):
any file ``codi_probe.data.load_problems`` reads. No silent filtering: the sample is the first ``n``
(GSM8K, AO held-out) or a seeded shuffle (CYW), recorded in ``ProblemSet.filters``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data import ProblemSet, ao_synthetic_problems, cyw_template_problems, load_gsm8k, load_problems


def family_problems(family: str, n: int, *, seed: int = 0, model_dir: str | None = None) -> ProblemSet:
    if n <= 0:
        raise ValueError(f"need a positive number of problems, got {n}")
    if family == "gsm8k":
        full = load_gsm8k("test")
        return full.derive(list(full)[:n], {"filter": "first_n", "n": n, "before": len(full)})
    if family == "cyw":
        full = cyw_template_problems()
        order = np.random.default_rng(seed).permutation(len(full))[:n]
        return full.derive([full[int(i)] for i in order], {"filter": "seeded_sample", "n": n, "seed": seed,
                                                            "before": len(full)})
    if family == "ao":
        full = ao_synthetic_problems()
        held = full.where(lambda p: p.meta.get("split") == "heldout", "heldout_split")
        return held.derive(list(held)[:n], {"filter": "first_n", "n": n, "before": len(held)})
    path = Path(family)
    if not path.is_absolute() and model_dir is not None:
        path = Path(model_dir) / path
    if path.is_file():
        full = load_problems(path)
        return full.derive(list(full)[:n], {"filter": "first_n", "n": n, "before": len(full)})
    raise ValueError(f"unknown problem family {family!r}: use gsm8k, cyw, ao or a problem file")


def for_variant(ps: ProblemSet, model) -> ProblemSet:
    """The problem set as the model's loop variant's own evaluation poses it. The bcywinski evaluation
    (CYW ``test.py``) strips each GSM8K-style question, replaces double spaces and appends
    ``problem_suffix`` (" Output only the answer and nothing else."); template problems (CYW, AO) already end
    with their own answer-only sentence and are left as they are. Logged in ``ps.filters``."""
    from dataclasses import replace

    from ..engine.loop import normalize_question

    suffix = model.variant.problem_suffix
    if not suffix:
        return ps
    templated = ("cyw", "ao")
    out = [p if p.family in templated else replace(p, question=normalize_question(p.question) + suffix)
           for p in ps]
    return ps.derive(out, {"filter": "variant_prompt", "variant": model.variant.name, "suffix": suffix,
                           "changed": sum(p.family not in templated for p in ps)})


def model_families(model) -> tuple[str, str]:
    """(family for answer-level claims, family with intermediates for lens/patching claims)."""
    own = getattr(model.config, "problems", None)
    if own:
        return own, own
    return "gsm8k", "cyw"


def model_dir(model) -> str | None:
    path = model.source.get("path") if getattr(model, "source", None) else None
    return str(Path(path).parent) if path else None
