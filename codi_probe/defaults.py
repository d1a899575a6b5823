"""Torch-free defaults, importable by the pytest plugin before any model code loads."""

# The model `pytest hypotheses` runs on when --codi-model is not given (the trained organism in
# fixtures/models/codi-tiny-arith): a name under
# fixtures/models/, a tiny model name, or a path.
DEFAULT_MODEL = "codi-tiny-arith"
# The seeded random models built by codi_probe.tiny (TINY_CONFIGS holds their configs; a test keeps
# the two in step). Torch-free, so the plugin can name them before torch is imported.
TINY_MODELS = ("tiny-random-gpt2", "tiny-random-llama")
# The dtype vocabulary of the CLI (--dtype) and the plugin (--codi-dtype): one list, torch-free.
# fp32/bf16/fp16: everything in that dtype (bf16 is the released evaluation's numerics); mixed: the
# official storage layout (bf16 base, fp32 LoRA and prj); native: the checkpoint file's own dtypes.
PRECISIONS = ("fp32", "bf16", "fp16", "mixed")
DTYPE_CHOICES = (*PRECISIONS, "native")
