"""Shared fixtures for ``pytest benchmarks`` (never collected by ``pytest tests`` / ``pytest hypotheses``).

Sizes come from environment variables so the same files serve a quick smoke run and the measured one:
``BENCH_MODEL`` (``gpt2-124m``, ``llama-1b-d2`` or a tiny name), ``BENCH_PROBLEMS`` (engine problems),
``BENCH_NAIVE`` (naive interventions actually timed; the naive rate is extrapolated from them),
``BENCH_THREADS`` (torch threads, default 2) and ``BENCH_DEVICE`` (``cpu`` by default, or e.g. ``cuda``:
both sides run there; not yet measured on a GPU).
"""

from __future__ import annotations

import os

import pytest
import torch

from codi_probe.loading import load_tokenizer
from codi_probe.model import CodiConfig, CodiModel, attach_tokenizer

EOS = 50256
SHAPES: dict[str, dict] = {
    "gpt2-124m": {"model_type": "gpt2", "vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12,
                  "n_head": 12, "activation_function": "gelu_new", "bos_token_id": EOS, "eos_token_id": EOS,
                  "tie_word_embeddings": True},
    # LLaMA-3.2-1B widths (hidden 2048, 32 heads / 8 kv, d_ff 8192) with 2 of its 16 layers and the
    # GPT-2 vocabulary (50257) so that the GPT-2 tokenizer fits.
    "llama-1b-d2": {"model_type": "llama", "vocab_size": 50257, "hidden_size": 2048, "intermediate_size": 8192,
                    "num_hidden_layers": 2, "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 64,
                    "max_position_embeddings": 1024, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
                    "tie_word_embeddings": True, "bos_token_id": EOS, "eos_token_id": EOS},
}


def build(name: str) -> CodiModel:
    """A seeded random fp32 CODI of one of ``SHAPES`` (or a tiny model by name)."""
    if name not in SHAPES:
        from codi_probe.loading import load_codi

        return load_codi(name)
    d = SHAPES[name].get("n_embd") or SHAPES[name]["hidden_size"]
    cfg = CodiConfig(base=SHAPES[name], prj_dim=d, lora_r=128, lora_alpha=32, eos_token_ids=(EOS,),
                     tokenizer="gpt2", name=name)
    return attach_tokenizer(CodiModel(cfg, seed=0), load_tokenizer("gpt2"))


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


class PeakRSS:
    """Peak resident memory of this process during a ``with`` block, in MB.

    On Linux the kernel's high-water mark (``VmHWM``) is reset on entry by writing ``5`` to
    ``/proc/self/clear_refs``, so ``peak_mb`` is the true peak inside the block (not the process's
    lifetime peak, which model building sets) and ``growth_mb`` is that peak minus the resident size
    at entry: the memory the measured call itself needed. Freed heap is returned to the OS first
    (``malloc_trim``), else pages freed by an earlier call would be reused without raising the mark.
    Where the reset is not allowed, both are ``None`` rather than a misleading number. On CUDA,
    ``gpu_peak_mb`` is the peak of allocated device memory inside the block."""

    def __enter__(self) -> "PeakRSS":
        self.peak_mb = self.growth_mb = self.gpu_peak_mb = None
        self._gpu = torch.cuda.is_available() and torch.cuda.is_initialized()
        if self._gpu:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        _release_free_heap()
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self._start = _status_mb("VmRSS")
        except OSError:
            self._start = None
        return self

    def __exit__(self, *exc) -> None:
        if self._gpu:
            torch.cuda.synchronize()
            self.gpu_peak_mb = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        if self._start is not None:
            self.peak_mb = round(_status_mb("VmHWM"), 1)
            self.growth_mb = round(self.peak_mb - self._start, 1)


def _release_free_heap() -> None:
    """Collect garbage and hand freed heap pages back to the OS, so that memory an earlier call freed but
    kept resident does not hide this call's allocations from the peak."""
    import gc

    from codi_probe.memory import release_free_heap

    gc.collect()
    release_free_heap()


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise OSError(f"/proc/self/status has no {field}")


@pytest.fixture(scope="session")
def model():
    torch.set_num_threads(env_int("BENCH_THREADS", 2))
    device = os.environ.get("BENCH_DEVICE", "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        pytest.exit(f"BENCH_DEVICE={device}: no CUDA device is available", returncode=2)
    return build(os.environ.get("BENCH_MODEL", "gpt2-124m")).to(device)


def questions_of(model, n: int) -> list[str]:
    """The first ``n`` GSM8K test questions of 70..90 tokens (80-token-ish)."""
    from codi_probe.data import load_gsm8k

    tok = model.tokenizer
    out = [p.question for p in load_gsm8k("test") if 70 <= len(tok(p.question)["input_ids"]) <= 90]
    return out[:n]


@pytest.fixture(scope="session")
def questions(model):
    return questions_of(model, max(env_int("BENCH_PROBLEMS", 2), 2))
