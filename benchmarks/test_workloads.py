"""The four issue-9 workloads: engine vs the naive reference, with the FLOP-bound ratio.

Run explicitly: ``pytest benchmarks -p no:cacheprovider --benchmark-disable-gc`` (see README.md).
Each engine workload is timed once (they are seconds to minutes long); the naive loop is timed on
``BENCH_NAIVE`` of the same interventions, asserted to agree with the engine on them, and its rate
extrapolated. ``extra_info`` holds interventions/s, the measured and FLOP-bound ratios, their
quotient, the peak resident memory of each side (:class:`~benchmarks.conftest.PeakRSS`) and the
1-minute load average before and after.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from codi_probe.engine import CodiEngine, Intervention, Patch, Record
from codi_probe.engine.positions import FED_POSITIONS, LATENT_POSITIONS, live_positions
from codi_probe.experiments.common import NO_RECORD
from codi_probe.experiments.corruption import gs_methods

from . import flops
from .conftest import SHAPES, PeakRSS, env_int
from .naive import naive_generate, naive_latent_attention, naive_score

NEW_TOKENS = 8
# The floors hold for the measured shapes (gpt2-124m, llama-1b-d2), not for the tiny smoke models.
FLOORS = os.environ.get("BENCH_MODEL", "gpt2-124m") in SHAPES
MEAN_FIRST = float(np.mean([int(p[1:]) for p in FED_POSITIONS]))  # shared steps per row (P1..P6)


def _timed(fn):
    """``(result, seconds, PeakRSS)`` of one call."""
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - t0
    return out, seconds, mem


def _report(benchmark, n_engine, t_engine, mem_engine, n_naive, t_naive, mem_naive, flop_naive, flop_engine,
            load0):
    """``flop_naive``/``flop_engine``: FLOPs of one intervention on each side (``flops.py``); their
    quotient is the FLOP-bound ratio, and each side's GFLOP/s shows how far from the machine's rate
    it runs (batch-1 calls are bound by reading the weights, not by arithmetic)."""
    eng, nai = n_engine / t_engine, n_naive / t_naive
    flop_ratio = flop_naive / flop_engine
    info = {"engine_rows": n_engine, "engine_ips": round(eng, 2), "naive_timed": n_naive,
            "naive_ips": round(nai, 3), "ratio": round(eng / nai, 2), "flop_ratio": round(flop_ratio, 2),
            "of_flop_bound": round(eng / nai / flop_ratio, 2),
            "engine_gflop_s": round(eng * flop_engine / 1e9, 1), "naive_gflop_s": round(nai * flop_naive / 1e9, 1),
            "engine_peak_mb": mem_engine.peak_mb, "engine_peak_growth_mb": mem_engine.growth_mb,
            "naive_peak_mb": mem_naive.peak_mb, "naive_peak_growth_mb": mem_naive.growth_mb,
            "engine_gpu_peak_mb": mem_engine.gpu_peak_mb, "naive_gpu_peak_mb": mem_naive.gpu_peak_mb,
            "load_before": round(load0, 2), "load_after": round(os.getloadavg()[0], 2),
            "threads": torch.get_num_threads()}
    benchmark.extra_info.update(info)
    print(info)
    return info


def _picks(n_rows: int) -> list[int]:
    """Rows the naive loop runs (``BENCH_NAIVE`` of them, spread over the grid)."""
    n = env_int("BENCH_NAIVE", 7)
    return list(range(0, n_rows, max(1, n_rows // n)))[:n]


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
    # the record of corruption_grid's runs: answers and latents, no per-layer sites (NO_RECORD)
    run = lambda: engine.run(questions, variants, record=NO_RECORD, max_new_tokens=NEW_TOKENS)
    load0 = os.getloadavg()[0]
    trace, t_eng, mem = _timed(lambda: benchmark.pedantic(run, rounds=1, iterations=1))
    picks = _picks(len(variants))

    def naive():
        return [naive_generate(model, questions[variants[r][0]], (layer, variants[r][1][0].positions[0],
                                                                  variants[r][1][0].op), NEW_TOKENS) for r in picks]

    outs, t_naive, mem_naive = _timed(naive)
    for r, (ids, hs) in zip(picks, outs):
        assert ids == trace.answer_ids[r], f"row {r}: naive {ids} != engine {trace.answer_ids[r]}"
        assert float((hs - trace.latent_pre[r]).abs().max()) <= 1e-4
    shape, t = flops.Shape.of(model), int(np.mean(_lengths(model, questions)))
    info = _report(benchmark, len(variants), t_eng, mem, len(picks), t_naive, mem_naive,
                   flops.naive(shape, t, NEW_TOKENS), flops.engine(shape, t, NEW_TOKENS, len(variants) // n, MEAN_FIRST),
                   load0)
    if FLOORS:
        assert info["ratio"] >= 6 and info["of_flop_bound"] >= 0.75, info


def test_prefix_kv_memory(benchmark, model):
    """Peak memory against rows for both KV layouts: the CCTA grid (as in ``test_ccta_generation``) at
    ``BENCH_MEMORY_N`` problems (default 4,8,16,24), ``kv="shared"`` (the default) and ``kv="per_row"``
    (every row holds its question's prefix), each layout's run timed once. The two must agree: the
    same greedy answers and latents within 1e-4."""
    from .conftest import questions_of

    sizes = [int(x) for x in os.environ.get("BENCH_MEMORY_N", "4,8,16,24").split(",")]
    table = []

    def grid(n):
        qs = questions_of(model, n)
        engine = CodiEngine(model)
        clean = engine.run(qs, record=Record(sites=("resid_post",), logits=False), max_new_tokens=NEW_TOKENS)
        methods = gs_methods(clean, n)
        layer = model.n_layers // 2
        return qs, [(i, [Intervention("resid_post", (p,), make(i, p), layer=layer)])
                    for i in range(n) for make in methods.values() for p in FED_POSITIONS]

    def measure():
        for n in sizes:
            qs, variants = grid(n)
            out = {}
            for kv in ("shared", "per_row"):
                engine = CodiEngine(model, kv=kv)
                trace, seconds, mem = _timed(lambda: engine.run(qs, variants, record=NO_RECORD,
                                                                max_new_tokens=NEW_TOKENS))
                out[kv] = trace
                table.append({"n": n, "rows": len(variants), "kv": kv, "ips": round(len(variants) / seconds, 2),
                              "peak_growth_mb": mem.growth_mb, "gpu_peak_mb": mem.gpu_peak_mb})
                print(table[-1])
            assert out["shared"].answer_ids == out["per_row"].answer_ids
            assert float((out["shared"].latent_pre - out["per_row"].latent_pre).abs().max()) <= 1e-4
            del out

    benchmark.pedantic(measure, rounds=1, iterations=1)
    benchmark.extra_info["memory_by_rows"] = table


def test_patching_sweep_teacher_forced(benchmark, model, questions):
    """Clean→corrupted patching of every block × P1..P6 (less the last block at P6, which the engine refuses:
    it feeds nothing), logit difference at a teacher-forced readout."""
    engine = CodiEngine(model)
    n = len(questions)
    corrupted = questions[1:] + questions[:1]
    clean = engine.run(questions, record=Record(sites=("resid_post",), logits=False), max_new_tokens=NEW_TOKENS)
    base = engine.run(corrupted, record=Record(logits=False), max_new_tokens=NEW_TOKENS)
    readout = 2
    variants, targets = [], []
    for i in range(n):
        for layer in range(model.n_layers):
            for p in live_positions(layer, FED_POSITIONS, model.n_layers):  # the last block at P6 feeds nothing
                variants.append((i, [Intervention("resid_post", (p,), Patch(clean, i), layer=layer)]))
                targets.append(base.answer_ids[i])
    run = lambda: engine.run(corrupted, variants, teacher_force=targets, readout=[readout] * len(variants))
    load0 = os.getloadavg()[0]
    trace, t_eng, mem = _timed(lambda: benchmark.pedantic(run, rounds=1, iterations=1))
    good = [clean.answer_ids[i][readout] for i in range(n)]
    bad = [base.answer_ids[i][readout] for i in range(n)]
    ld = lambda r, logits: float(logits[good[variants[r][0]]] - logits[bad[variants[r][0]]])
    picks = _picks(len(variants))

    def naive():
        return [naive_score(model, corrupted[variants[r][0]], targets[r], readout,
                            (variants[r][1][0].layer, variants[r][1][0].positions[0], variants[r][1][0].op))
                for r in picks]

    outs, t_naive, mem_naive = _timed(naive)
    for r, logits in zip(picks, outs):
        assert abs(ld(r, logits) - ld(r, trace.answer_logits[r][0])) <= 1e-4
    shape, t = flops.Shape.of(model), int(np.mean(_lengths(model, corrupted)))
    info = _report(benchmark, len(variants), t_eng, mem, len(picks), t_naive, mem_naive,
                   flops.naive(shape, t, readout + 1),
                   flops.engine(shape, t, readout + 1, len(variants) // n, MEAN_FIRST, answer_logits=1), load0)
    if FLOORS:
        assert info["ratio"] >= 10, info


def test_latent_attention(benchmark, model, questions):
    """6×6 (7×7 with P0) latent attention for every layer and head of N problems; the naive side reads
    it with ``output_attentions=True`` at batch 1. One problem counts as one intervention."""
    engine = CodiEngine(model)
    run = lambda: engine.run(questions, record=Record(sites=(), attention=True, logits=False),
                             max_new_tokens=1).latent_attention()
    load0 = os.getloadavg()[0]
    att, t_eng, mem = _timed(lambda: benchmark.pedantic(run, rounds=1, iterations=1))
    assert att.shape[1:] == (model.n_layers, model.n_heads, len(LATENT_POSITIONS), len(LATENT_POSITIONS))
    picks = _picks(len(questions))
    outs, t_naive, mem_naive = _timed(lambda: [naive_latent_attention(model, questions[i]) for i in picks])
    for i, naive_att in zip(picks, outs):
        assert float((naive_att - att[i]).abs().max()) <= 1e-5, f"problem {i}: attention differs"
    shape, t = flops.Shape.of(model), int(np.mean(_lengths(model, questions)))
    _report(benchmark, len(questions), t_eng, mem, len(picks), t_naive, mem_naive, flops.naive(shape, t, 0),
            flops.engine(shape, t, 1, 1), load0)


HYPOTHESES_BUDGET_S = {None: 120, "tiny-random-gpt2": 90, "tiny-random-llama": 90}  # wall, 2 cores, alone


@pytest.mark.parametrize("model", list(HYPOTHESES_BUDGET_S), ids=lambda m: m or "default")
def test_hypotheses_wall_time(benchmark, tmp_path, model):
    """``pytest hypotheses`` in a subprocess on the default model (≤ 120 s on 2 cores) and on each tiny
    random model (≤ 90 s: issue 32 item 13, the catalogue's answer budget on random weights)."""
    cmd = [sys.executable, "-m", "pytest", "hypotheses", "-q", "-p", "no:cacheprovider",
           "--codi-report", str(tmp_path / "report.json"), *(["--codi-model", model] if model else [])]
    run = lambda: subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "CODI_THREADS": "2"})
    t0 = time.perf_counter()
    done = benchmark.pedantic(run, rounds=1, iterations=1)
    wall = time.perf_counter() - t0
    budget = HYPOTHESES_BUDGET_S[model]
    benchmark.extra_info.update({"model": model or "default", "rc": done.returncode, "wall_s": round(wall, 1),
                                 "budget_s": budget, "load": os.getloadavg()[0],
                                 "tail": done.stdout.strip().splitlines()[-1:]})
    assert done.returncode == 0, done.stdout[-2000:]
    assert wall <= budget, f"pytest hypotheses on {model or 'the default model'} took {wall:.1f} s (budget: {budget} s on 2 cores)"
