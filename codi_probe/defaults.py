"""Torch-free defaults, importable by the pytest plugin before any model code loads."""

# The model `pytest hypotheses` runs on when --codi-model is not given: a name under
# fixtures/models/, a tiny model name, or a path.
DEFAULT_MODEL = "tiny-random-gpt2"
