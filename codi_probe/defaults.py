"""Torch-free defaults, importable by the pytest plugin before any model code loads."""

# The model `pytest hypotheses` runs on when --codi-model is not given (the trained organism in
# fixtures/models/codi-tiny-arith): a name under
# fixtures/models/, a tiny model name, or a path.
DEFAULT_MODEL = "codi-tiny-arith"
