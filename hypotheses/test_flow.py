"""Attention flow among the latent positions (claims.md 4.G: FLOW-01/02/03/06).

All scores use the 7x7 block P0..P6 of correctly aligned attention (queries and keys at their
absolute positions), averaged over layers and heads, one value per problem (F-12, SAN-04/05)."""

import numpy as np
import pytest

from codi_probe import stats
from codi_probe.engine import knockout
from codi_probe.engine.positions import FED_POSITIONS
from codi_probe.experiments.common import golds, run_conditions


@pytest.fixture(scope="module")
def flow(answer_attention_trace):
    return answer_attention_trace.latent_attention().mean((1, 2)).numpy()  # [n, 7, 7], mean over layers, heads


def hub_exceeds_null(a: np.ndarray, rng: np.random.Generator, draws: int = 200) -> bool:
    """Does the best source-count-normalised incoming score beat the 95th percentile of a null that
    shuffles each row's attention over its admissible earlier keys?"""
    n = a.shape[0]

    def best(m):
        scores = [m[j + 1:, j].mean() for j in range(n - 1)]  # incoming from later positions / #sources
        return max(scores)

    null = []
    for _ in range(draws):
        m = np.zeros_like(a)
        for i in range(1, n):
            m[i, :i] = rng.permutation(a[i, :i])
        null.append(best(m))
    return best(a) > np.quantile(null, 0.95)


@pytest.mark.claim(id="FLOW-01", kind="empirical",
                   statement="one latent position is an attention hub: its source-count-normalised incoming attention "
                             "beats a shuffled-key null (95th pct) in >= 80% of problems",
                   source="GS codi_attention_flow (claims.md 4.G FLOW-01): 'position 0 is a hub', 0.197 = 1.18x uniform",
                   reported=0.197)
def test_hub(flow, answer_attention_trace, codi_options, claim):
    rng = np.random.default_rng(codi_options.seed)
    hits = [hub_exceeds_null(a, rng) for a in flow]
    est = stats.proportion(sum(hits), len(hits))
    incoming = [[a[j + 1:, j].mean() for j in range(6)] for a in flow]
    verdict = ("inconclusive" if est.n < stats.MIN_PROBLEMS else "supported" if est.value >= 0.8
               else "refuted" if est.hi < 0.8 else "inconclusive")
    claim.record("share of problems with a hub above the null", est.value, ci=est.ci, n=est.n, threshold=0.8,
                 details={"mean normalised incoming attention P0..P5": np.mean(incoming, 0).tolist(),
                          "latent_attention_top_heads": top_heads(answer_attention_trace)}, verdict=verdict)


def top_heads(trace, k: int = 6) -> list[dict]:
    """The ``k`` heads with the most attention mass among P0..P6 (strictly lower triangle), with their
    problem-mean 7x7 matrices (rows = queries, columns = keys)."""
    from codi_probe.engine.positions import LATENT_POSITIONS

    per_head = trace.latent_attention().mean(0).numpy()  # [L, H, 7, 7]
    mass = np.tril(per_head, k=-1).sum((-1, -2))
    order = np.argsort(-mass, axis=None)[:k]
    out = []
    for flat in order:
        layer, head = np.unravel_index(flat, mass.shape)
        out.append({"layer": int(layer), "head": int(head), "score": float(mass[layer, head]),
                    "rows": list(LATENT_POSITIONS), "cols": list(LATENT_POSITIONS),
                    "values": per_head[layer, head].tolist()})
    return out


@pytest.mark.claim(id="FLOW-02", kind="empirical",
                   statement="no sequential flow: mean attention from P_i to P_(i-1) is below 0.3",
                   source="GS (claims.md 4.G FLOW-02): 0.038 with threshold 0.3", reported=0.038)
def test_no_sequential_flow(flow, claim):
    seq = np.array([np.mean([a[i, i - 1] for i in range(1, 7)]) for a in flow])
    est = stats.bootstrap_mean(seq)
    claim.record("mean attention P_i -> P_(i-1)", est.value, ci=est.ci, n=est.n, threshold=0.3,
                 verdict=stats.verdict(est, 0.3, alternative="less"))


@pytest.mark.claim(id="FLOW-03", kind="empirical",
                   statement="no skip connections: mean attention from the last latent P6 to P0..P2 is below 0.1",
                   source="GS (claims.md 4.G FLOW-03): 5->{0,1,2} mean 0.029 with threshold 0.1", reported=0.029)
def test_no_skip_connections(flow, claim):
    skip = flow[:, 6, :3].mean(1)
    est = stats.bootstrap_mean(skip)
    claim.record("mean attention P6 -> {P0,P1,P2}", est.value, ci=est.ci, n=est.n, threshold=0.1,
                 verdict=stats.verdict(est, 0.1, alternative="less"))


@pytest.mark.claim(id="FLOW-06", kind="empirical",
                   statement="blocking attention to the first fed latent P1 costs >= 10pp accuracy against a no-op "
                             "mask, blocking the last fed latent P6 <= 2pp",
                   source="GS attention-pattern blocking (claims.md 4.G FLOW-06): CT0 -15.6pp, CT5 0.0pp vs no-op",
                   reported={"P1": -0.156, "P6": 0.0})
def test_blocking_first_latent(codi_engine, answer_problems, claim):
    problems = list(answer_problems)
    qs = [p.question for p in problems]
    queries = (*FED_POSITIONS[1:], "EOT")  # every later query; P1 keeps its own (diagonal) attention
    conds = {"noop": [[knockout(("P1",), "P6")] for _ in qs],  # a future key: blocks nothing (SAN-02)
             "block_P1": [[knockout(queries, "P1")] for _ in qs],
             "block_P6": [[knockout(("EOT",), "P6")] for _ in qs]}
    runs = run_conditions(codi_engine, qs, conds)
    gold = golds(problems)
    noop = runs.correct("noop", gold)
    d1 = stats.mcnemar_exact(noop, runs.correct("block_P1", gold))
    d6 = stats.mcnemar_exact(noop, runs.correct("block_P6", gold))
    ok = -d1.value >= 0.10 and d1.p_value < 0.01 and -d6.value <= 0.02
    verdict = ("inconclusive" if len(qs) < stats.MIN_PROBLEMS else "supported" if ok
               else "refuted" if -d1.lo < 0.10 or -d6.value > 0.02 else "inconclusive")
    claim.record("accuracy change, block P1", d1.value, ci=d1.ci, p_value=d1.p_value, n=len(qs), threshold=-0.10,
                 statistics={"accuracy change, block P6": d6.value, "no-op accuracy": float(noop.mean()),
                             "no-op equals baseline": bool((noop == runs.correct("baseline", gold)).all())},
                 verdict=verdict)
