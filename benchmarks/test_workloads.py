"""The four issue-9 workloads: engine vs the naive reference, with the FLOP-bound ratio.

Run explicitly: ``pytest benchmarks -p no:cacheprovider --benchmark-disable-gc`` (see README.md).
Each engine workload is timed once (they are seconds to minutes long); the naive loop is timed on
``BENCH_NAIVE`` of the same interventions, asserted to agree with the engine on them, and its rate
extrapolated. ``extra_info`` holds interventions/s, the measured and FLOP-bound ratios, their
quotient and the maxrss growth.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np

from codi_probe.engine import CodiEngine, Intervention, Patch, Record
from codi_probe.engine.positions import FED_POSITIONS, LATENT_POSITIONS
from codi_probe.experiments.corruption import gs_methods

from . import flops
from .conftest import env_int, maxrss_mb
from .naive import naive_generate, naive_score

NEW_TOKENS = 8
MEAN_FIRST = float(np.mean([int(p[1:]) for p in FED_POSITIONS]))  # shared steps per row (P1..P6)


def _timed(fn):
    rss, t0 = maxrss_mb(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, maxrss_mb() - rss


def _report(benchmark, n_engine, t_engine, n_naive, t_naive, flop_ratio, rss):
    eng, nai = n_engine / t_engine, n_naive / t_naive
    info = {"engine_ips": round(eng, 2), "naive_ips": round(nai, 3), "ratio": round(eng / nai, 2),
            "flop_ratio": round(flop_ratio, 2), "of_flop_bound": round(eng / nai / flop_ratio, 2),
            "maxrss_growth_mb": round(rss, 1), "load": os.getloadavg()[0]}
    benchmark.extra_info.update(info)
    print(info)
    return info


def _lengths(model, questions):
    return [len(model.tokenizer(q)["input_ids"]) for q in questions]


def test_ccta_generation(benchmark, model, questions):
    """N problems × 6 positions (P1..P6) × 7 methods at the middle block, greedy answers of 8 tokens."""
    engine = CodiEngine(model)
    layer, n = model.n_layers // 2, len(questions)
    clean = engine.run(questions, record=Record(sites=("resid_post",), logits=False), max_new_tokens=NEW_TOKENS)
    methods = gs_methods(clean, n)
    variants = [(i, [Intervention("resid_post", (p,), make(i, p), layer=layer)])
                for i in range(n) for make in methods.values() for p in FED_POSITIONS]
    run = lambda: engine.run(questions, variants, record=Record(logits=False), max_new_tokens=NEW_TOKENS)
    trace, t_eng, rss = _timed(lambda: benchmark.pedantic(run, rounds=1, iterations=1))
    picks = list(range(0, len(variants), max(1, len(variants) // env_int("BENCH_NAIVE", 7))))
    t0 = time.perf_counter()
    for r in picks:
        q, (iv,) = variants[r]
        ids, hs = naive_generate(model, questions[q], (layer, iv.positions[0], iv.op), NEW_TOKENS)
        assert ids == trace.answer_ids[r], f"row {r}: naive {ids} != engine {trace.answer_ids[r]}"
        assert float((hs - trace.latent_pre[r]).abs().max()) <= 1e-4
    t_naive = time.perf_counter() - t0
    shape, t = flops.Shape.of(model), int(np.mean(_lengths(model, questions)))
    bound = flops.naive(shape, t, NEW_TOKENS) / flops.engine(shape, t, NEW_TOKENS, len(variants) // n, MEAN_FIRST)
    _report(benchmark, len(variants), t_eng, len(picks), t_naive, bound, rss)


def test_patching_sweep_teacher_forced(benchmark, model, questions):
    """Clean→corrupted patching of every block × P1..P6, logit difference at a teacher-forced readout."""
    engine = CodiEngine(model)
    n = len(questions)
    corrupted = questions[1:] + questions[:1]
    clean = engine.run(questions, record=Record(sites=("resid_post",), logits=False), max_new_tokens=NEW_TOKENS)
    base = engine.run(corrupted, record=Record(logits=False), max_new_tokens=NEW_TOKENS)
    readout = 2
    variants, targets = [], []
    for i in range(n):
        for layer in range(model.n_layers):
            for p in FED_POSITIONS:
                variants.append((i, [Intervention("resid_post", (p,), Patch(clean, i), layer=layer)]))
                targets.append(base.answer_ids[i])
    run = lambda: engine.run(corrupted, variants, teacher_force=targets, readout=[readout] * len(variants))
    trace, t_eng, rss = _timed(lambda: benchmark.pedantic(run, rounds=1, iterations=1))
    good = [clean.answer_ids[i][readout] for i in range(n)]
    bad = [base.answer_ids[i][readout] for i in range(n)]
    ld = lambda r, logits: float(logits[good[variants[r][0]]] - logits[bad[variants[r][0]]])
    picks = list(range(0, len(variants), max(1, len(variants) // env_int("BENCH_NAIVE", 7))))
    t0 = time.perf_counter()
    for r in picks:
        q, (iv,) = variants[r]
        logits = naive_score(model, corrupted[q], targets[r], readout, (iv.layer, iv.positions[0], iv.op))
        assert abs(ld(r, logits) - ld(r, trace.answer_logits[r][0])) <= 1e-4
    t_naive = time.perf_counter() - t0
    shape, t = flops.Shape.of(model), int(np.mean(_lengths(model, corrupted)))
    bound = (flops.naive(shape, t, readout + 1)
             / flops.engine(shape, t, readout + 1, len(variants) // n, MEAN_FIRST,
                                answer_logits=1))
    _report(benchmark, len(variants), t_eng, len(picks), t_naive, bound, rss)


def test_latent_attention(benchmark, model, questions):
    """6×6 (7×7 with P0) latent attention for every layer and head of N problems."""
    engine = CodiEngine(model)
    run = lambda: engine.run(questions, record=Record(sites=(), attention=True, logits=False),
                             max_new_tokens=1).latent_attention()
    att, t_eng, rss = _timed(lambda: benchmark.pedantic(run, rounds=1, iterations=1))
    assert att.shape[1:] == (model.n_layers, model.n_heads, len(LATENT_POSITIONS), len(LATENT_POSITIONS))
    benchmark.extra_info.update({"problems_per_s": round(len(questions) / t_eng, 2),
                                 "maxrss_growth_mb": round(rss, 1), "load": os.getloadavg()[0]})


def test_hypotheses_wall_time(benchmark, tmp_path):
    """``pytest hypotheses`` on the default model, in a subprocess; target ≤ 120 s on 2 cores."""
    cmd = [sys.executable, "-m", "pytest", "hypotheses", "-q", "-p", "no:cacheprovider",
           "--codi-report", str(tmp_path / "report.json")]
    run = lambda: subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "CODI_THREADS": "2"})
    done = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update({"rc": done.returncode, "load": os.getloadavg()[0],
                                 "tail": done.stdout.strip().splitlines()[-1:]})
    assert done.returncode == 0, done.stdout[-2000:]
