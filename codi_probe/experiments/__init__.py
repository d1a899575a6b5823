"""Claim experiments: each function runs one measurement design on problems and returns per-problem
arrays; the claims in ``hypotheses/`` turn them into statistics and verdicts."""
