"""The probe and its controls: balanced accuracy against scikit-learn's metric, held-out groups against a
random split on a wording confound, the shuffle control, the control task, and the PCA variant."""

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from codi_probe.experiments.probes import balanced_from_means, balanced_rows, probe


def test_balanced_rows_give_sklearns_balanced_accuracy():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 90)
    pred = np.where(rng.random(90) < 0.7, y, rng.integers(0, 3, 90))
    ours = balanced_from_means(balanced_rows(pred == y, y).mean(0))
    assert ours == pytest.approx(balanced_accuracy_score(y, pred))


def test_held_out_templates_see_through_wording_a_random_split_does_not():
    rng = np.random.default_rng(1)
    template = np.repeat(np.arange(10), 20)
    x = np.eye(10)[template] * 6 + rng.normal(size=(200, 10))  # the features only name the template
    y = (template < 5).astype(int)  # the label is the template's
    r = probe(x, y, template, seed=0)
    assert r.task_random_split > 0.95 and r.balanced_accuracy < 0.6
    assert max(r.shuffled) < 0.7 and len(r.shuffled) == 2


def test_a_real_signal_is_read_and_is_selective():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 200)
    x = rng.normal(size=(200, 20))
    x[:, 0] += 3 * y
    r = probe(x, y, np.arange(200), types=np.arange(200) // 2, seed=0)
    assert r.balanced_accuracy > 0.85 and r.selectivity > 0.3 and r.chance == 0.5
    assert probe(x, y, np.arange(200), components=5, seed=0, shuffles=0).balanced_accuracy > 0.5


def test_one_line_errors():
    with pytest.raises(ValueError, match="2 label classes"):
        probe(np.zeros((4, 2)), [1, 1, 1, 1], [0, 1, 2, 3])
    with pytest.raises(ValueError, match="must agree"):
        probe(np.zeros((4, 2)), [0, 1, 0], [0, 1, 2, 3])
