"""ACC-03 of ``hypotheses/test_iterations.py`` counts 0 iterations as claims.md 4.A states (CYW's skip-thinking:
prompt then EOT, no BOT): the claim's fixture is run on a stand-in engine that records how it was built."""

from __future__ import annotations

from types import SimpleNamespace

from codi_probe.hypotheses import test_iterations as iterations


def test_acc03_zero_iterations_is_skip_thinking():
    """The claim's k = 0 engine is derived from the session engine with ``skip_thinking`` (so it keeps that
    engine's model, padding and answer budget)."""
    built = []

    class Engine:
        def with_latents(self, num_latent, **options):
            built.append({"num_latent": num_latent, **options})
            return self

        def run(self, questions, **_):
            return SimpleNamespace(answer=[7.0 if "seven" in q else 1.0 for q in questions])

    problems = [SimpleNamespace(question="seven", answer=7.0), SimpleNamespace(question="two", answer=2.0)]
    early = {k: [1.0, 1.0] for k in range(7)}  # the early exits: EOT after k latents (k = 0: BOT then EOT)
    got = iterations.cyw_iteration_accuracy.__wrapped__(Engine(), early, problems)
    assert built == [{"num_latent": 0, "skip_thinking": True}]
    assert got[0] == [1.0, 0.0] and all(got[k] == early[k] for k in range(1, 7))
