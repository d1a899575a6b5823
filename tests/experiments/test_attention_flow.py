"""FLOW-01's per-position hub score and null: a hub must be the same named position across problems."""

import numpy as np

from codi_probe.experiments.attention_flow import hub_hits, incoming


def lower_uniform(n: int, k: int = 7) -> np.ndarray:
    a = np.zeros((n, k, k))
    for i in range(1, k):
        a[:, i, :i] = 1.0 / i
    return a


def test_incoming_is_normalised_by_the_number_of_sources():
    a = lower_uniform(1)
    scores = incoming(a)[0]
    assert scores.shape == (6,)
    assert scores[5] == a[0, 6, 5]  # P5 has one source (P6)


def test_a_planted_hub_is_found_at_its_position_and_nowhere_else():
    rng = np.random.default_rng(0)
    a = lower_uniform(40) + rng.uniform(0, 0.01, size=(40, 7, 7))
    a[:, 3:, 2] += 0.5  # every later query attends to P2
    hits = hub_hits(np.tril(a, -1), rng)
    assert hits[:, 2].mean() == 1.0 and hits[:, [0, 1, 3, 4, 5]].mean() < 0.2


def test_hubs_at_different_positions_are_not_one_hub():
    """The old score took the best position of each problem: a hub at a different position in every
    problem counted as 'a hub in 100% of problems'. Per position, none reaches 80%."""
    rng = np.random.default_rng(1)
    a = lower_uniform(60) + rng.uniform(0, 0.01, size=(60, 7, 7))
    for i in range(60):
        j = i % 5
        a[i, j + 1:, j] += 0.5
    hits = hub_hits(np.tril(a, -1), rng)
    assert hits.any(1).mean() > 0.9 and hits.mean(0).max() < 0.3


def test_same_masks_finds_one_mask_under_two_names():
    from codi_probe.engine import knockout
    from codi_probe.experiments.attention_flow import blocked_cells, same_masks

    conds = {"hub_to_ct0": [[knockout(("P1", "P2"), "P0")]], "position_0": [[knockout(("P2", "P1"), ("P0",))]],
             "other": [[knockout(("P1",), "P0")]]}
    assert same_masks(conds) == [("hub_to_ct0", "position_0")]  # the seeds' two names for one mask
    assert blocked_cells([knockout(("P1",), ("P0", "Q"))]) == {("P1", "P0"), ("P1", "Q")}
    assert same_masks({k: v for k, v in conds.items() if k != "position_0"}) == []
