"""The CODI module: an HF causal LM wrapped with peft LoRA, plus the ``prj`` MLP.

The module graph mirrors the official ``CODI`` class (codi-spec.md section 1.2) so that
``CodiModel.state_dict()`` has exactly the official key names: ``codi.base_model.model.*`` for the
LoRA-wrapped base and ``prj.1.*``, ``prj.3.*``, ``prj.ln.*`` for the projection.

Special ids are appended after the base vocabulary V (codi-spec 1.3): PAD = V, BOT = V+1, EOT = V+2; a loop
variant whose ids come from its tokenizer (:mod:`codi_probe.variants`) stores them in ``CodiConfig.special_ids``.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn as nn

from .arch import ArchSpec, arch_for_model_type
from .defaults import DTYPE_CHOICES, PRECISIONS
from .variants import LoopVariant, variant

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
NUM_LATENT = 6  # the released checkpoints feed six latents (codi-spec 3.3)


@dataclass(frozen=True)
class SpecialIds:
    """Model-side token ids. ``eos`` may hold several stop ids (LLaMA Instruct: 128009, 128001)."""

    pad: int
    bot: int
    eot: int
    eos: tuple[int, ...]

    @classmethod
    def for_vocab(cls, base_vocab: int, eos: tuple[int, ...]) -> "SpecialIds":
        return cls(pad=base_vocab, bot=base_vocab + 1, eot=base_vocab + 2, eos=tuple(eos))


@dataclass(frozen=True)
class CodiConfig:
    """Everything needed to rebuild the module graph; stored beside saved checkpoints."""

    base: dict[str, Any]  # HF config dict of the base, with its *original* vocab_size
    prj_dim: int
    lora_r: int = 128
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    num_latent: int = NUM_LATENT
    eos_token_ids: tuple[int, ...] = ()
    tokenizer: str | None = None  # a fixtures-relative name or a path, when known
    name: str = "codi"
    answer_format: str = "The answer is: {}"  # what the model was trained to emit after EOT
    problems: str | None = None  # the problem family the model was trained on (None: GSM8K-style)
    design: dict[str, Any] | None = None  # what the latents do by construction (codi_probe.design.Design)
    variant: str = "official"  # the loop variant (codi_probe.variants): "official" or "bcywinski"
    special_ids: tuple[int, int, int] | None = None  # (PAD, BOT, EOT) from the tokenizer; None: V, V+1, V+2
    vocab_size: int | None = None  # the resized vocabulary (len(tokenizer)); None: V + 3
    # a delta file (codi_probe.checkpoint.save_checkpoint(base_weights=...)): the tensors it leaves out are
    # this shipped model's, {"name": fixtures model name, "sha256": its weights file's sha256}
    base_weights: dict[str, str] | None = None

    @property
    def model_type(self) -> str:
        return self.base["model_type"]

    @property
    def base_vocab(self) -> int:
        return int(self.base["vocab_size"])

    @property
    def resized_vocab(self) -> int:
        """Rows of the embedding after resizing: ``vocab_size`` when set (the variant's tokenizer), else V + 3."""
        return int(self.vocab_size) if self.vocab_size is not None else self.base_vocab + 3

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["eos_token_ids"] = list(self.eos_token_ids)
        if self.special_ids is not None:
            out["special_ids"] = list(self.special_ids)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "CodiConfig":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown CodiConfig fields: {sorted(unknown)}")
        data = dict(data)
        data["eos_token_ids"] = tuple(data.get("eos_token_ids", ()))
        if data.get("special_ids") is not None:
            data["special_ids"] = tuple(int(i) for i in data["special_ids"])
        return cls(**data)


def _hf_config(base: dict[str, Any]):
    from transformers import AutoConfig

    cfg = dict(base)
    model_type = cfg.pop("model_type")
    cfg.pop("architectures", None)
    return AutoConfig.for_model(model_type, **cfg)


def build_prj(dim: int, prj_dim: int) -> nn.Sequential:
    """``Dropout(0) → Linear(dim,prj_dim) → GELU(erf) → Linear(prj_dim,dim)`` then ``ln`` (eps 1e-5)."""
    prj = nn.Sequential(nn.Dropout(0.0), nn.Linear(dim, prj_dim), nn.GELU(), nn.Linear(prj_dim, dim))
    prj.add_module("ln", nn.LayerNorm(dim, eps=1e-5))
    return prj


def check_precision(mode: str, *, native: bool = False) -> None:
    """A one-line error for a precision name that is not one of :data:`PRECISIONS` (or ``native``)."""
    if mode == "official":
        raise ValueError("dtype 'official' was ambiguous and is gone: use 'bf16' for the released evaluation's "
                         "numerics (all bf16) or 'mixed' for the storage layout (bf16 base, fp32 LoRA and prj)")
    allowed = DTYPE_CHOICES if native else PRECISIONS
    if mode not in allowed:
        raise ValueError(f"unknown dtype {mode!r}: use one of {', '.join(allowed)}")


class CodiModel(nn.Module):
    """CODI = ``codi`` (PeftModel around an HF causal LM) + ``prj``.

    Conventions used throughout codi-probe: blocks are 0-indexed; HF ``hidden_states[i+1]`` is the
    output of block ``i`` for ``i < n_layers-1``; ``hidden_states[n_layers]`` is the final-norm of the
    last block's output (what ``prj`` reads and what the official logit lens decodes).
    """

    def __init__(self, config: CodiConfig, *, skip_init: bool = False, seed: int | None = None):
        super().__init__()
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM

        self.config = config
        self.arch: ArchSpec = arch_for_model_type(config.model_type)
        hf_cfg = _hf_config(config.base)
        if seed is not None:
            torch.manual_seed(seed)
        ctx = _no_init() if skip_init else _nullcontext()
        with ctx:
            lm = AutoModelForCausalLM.from_config(hf_cfg, attn_implementation="sdpa")
            with _quiet_build_notices():
                lm.resize_token_embeddings(config.resized_vocab, mean_resizing=not skip_init)
            lora = LoraConfig(
                task_type="CAUSAL_LM",
                inference_mode=False,
                r=config.lora_r,
                lora_alpha=config.lora_alpha,
                lora_dropout=config.lora_dropout,
                target_modules=list(self.arch.lora_targets),
                init_lora_weights=True,
                fan_in_fan_out=self.arch.name == "gpt2",  # GPT-2's Conv1D stores (in, out): what peft sets anyway
            )
            with _quiet_build_notices():
                self.codi = get_peft_model(lm, lora)
            self.prj = build_prj(hf_cfg.hidden_size, config.prj_dim)
        eos = config.eos_token_ids or _as_tuple(hf_cfg.eos_token_id)
        if config.special_ids is None:
            self.special = SpecialIds.for_vocab(config.base_vocab, eos)
        else:
            pad, bot, eot = config.special_ids
            self.special = SpecialIds(pad=pad, bot=bot, eot=eot, eos=tuple(eos))
        self.variant: LoopVariant = variant(config.variant)
        self.tokenizer = None  # attached by codi_probe.loading
        self.source: dict[str, Any] = {"name": config.name}
        self.eval()

    # ----------------------------------------------------------------- parts
    @property
    def lm(self) -> nn.Module:
        """The HF causal LM inside the peft wrapper (LoRA layers injected in place)."""
        return self.codi.get_base_model()

    @property
    def backbone(self) -> nn.Module:
        return self.arch.get(self.lm, self.arch.backbone)

    @property
    def embed(self) -> nn.Embedding:
        return self.arch.get(self.lm, self.arch.embed)

    @property
    def final_norm(self) -> nn.Module:
        return self.arch.get(self.lm, self.arch.final_norm)

    @property
    def lm_head(self) -> nn.Linear:
        return self.arch.get(self.lm, self.arch.lm_head)

    @property
    def blocks(self) -> nn.ModuleList:
        return self.arch.blocks(self.lm)

    @property
    def n_layers(self) -> int:
        return len(self.blocks)

    @property
    def d_model(self) -> int:
        return self.embed.weight.shape[1]

    @property
    def n_heads(self) -> int:
        return int(self.lm.config.num_attention_heads)

    @property
    def max_positions(self) -> int | None:
        """The position limit of the base (GPT-2 ``n_positions``, LLaMA ``max_position_embeddings``)."""
        cfg = self.lm.config
        limit = getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", None)
        return int(limit) if limit else None

    @property
    def vocab_size(self) -> int:
        """Resized vocabulary (base + 3, or ``len(tokenizer)`` for a tokenizer-sized variant)."""
        return self.embed.weight.shape[0]

    @property
    def base_dtype(self) -> torch.dtype:
        return self.embed.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.embed.weight.device

    # --------------------------------------------------------------- dtypes
    def set_precision(self, mode: str) -> "CodiModel":
        """``fp32``/``bf16``/``fp16``: everything in that dtype. ``bf16`` is the released evaluation's
        numerics (the official test script casts the whole model to bf16). ``mixed``: the training and
        storage layout of the official checkpoints — base in bf16, LoRA adapters and ``prj`` in fp32."""
        check_precision(mode)
        if mode in DTYPES:
            return self.to(DTYPES[mode])
        self.to(torch.bfloat16)
        for name, p in self.named_parameters():
            if ".lora_" in name or name.startswith("prj."):
                p.data = p.data.float()
        return self

    def dtype_mix(self) -> dict[str, int]:
        """Number of state-dict tensors per dtype, e.g. ``{"bfloat16": 149, "float32": 102}``."""
        counts: dict[str, int] = {}
        for t in self.state_dict().values():
            key = str(t.dtype).removeprefix("torch.")
            counts[key] = counts.get(key, 0) + 1
        return counts

    def set_attention(self, implementation: str) -> None:
        """``sdpa`` (the official default) or ``eager`` (needed to read attention weights)."""
        self.lm.set_attn_implementation(implementation)

    # ----------------------------------------------------------- accounting
    def param_counts(self) -> dict[str, int]:
        """Unique parameters split into base / LoRA / prj (tied embedding counted once)."""
        seen: set[int] = set()
        counts = {"base": 0, "lora": 0, "prj": 0}
        for name, p in self.named_parameters(remove_duplicate=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            part = "prj" if name.startswith("prj.") else "lora" if ".lora_" in name else "base"
            counts[part] += p.numel()
        counts["total"] = sum(counts.values())
        return counts

    def weights_sha256(self) -> str:
        """sha256 over (key, dtype, shape, bytes) of the state dict in key order."""
        h = hashlib.sha256()
        for key, t in self.state_dict().items():
            t = t.detach().cpu().contiguous()
            h.update(f"{key}|{t.dtype}|{tuple(t.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        return h.hexdigest()

    def fingerprint(self) -> dict[str, Any]:
        """JSON-serialisable identity of the model, for reports."""
        return {
            "name": self.source.get("name", self.config.name),
            "path": self.source.get("path"),
            "file_sha256": self.source.get("file_sha256"),
            "hub": self.source.get("hub"),  # {role: {repo_id, revision, commit}} of the Hub ids loaded, or None
            "sha256": self.weights_sha256(),
            "architecture": self.arch.name,
            "model_type": self.config.model_type,
            "n_layers": self.n_layers,
            "d_model": self.d_model,
            "n_heads": self.n_heads,
            "prj_dim": self.config.prj_dim,
            "lora_r": self.config.lora_r,
            "lora_alpha": self.config.lora_alpha,
            "lora_alpha_assumed": bool(self.source.get("lora_alpha_assumed", False)),
            "num_latent": self.config.num_latent,
            "variant": self.config.variant,
            "assumed": dict(self.source.get("assumed", {})),
            "params": self.param_counts(),
            "dtype": str(self.base_dtype).removeprefix("torch."),
            "dtype_mix": self.dtype_mix(),
            "special_ids": {"pad": self.special.pad, "bot": self.special.bot, "eot": self.special.eot,
                            "eos": list(self.special.eos)},
        }


def _as_tuple(x) -> tuple[int, ...]:
    if x is None:
        return ()
    return tuple(x) if isinstance(x, (list, tuple)) else (int(x),)


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


class _DropNotice:
    """A logging filter that drops transformers' mean-resizing notice (an expected step of every CODI build)."""

    def filter(self, record) -> bool:
        return "mean_resizing" not in record.getMessage()


class _quiet_build_notices:
    """Silence the library notices that building a CODI triggers by design, and only those: transformers'
    mean-resizing notice and the ``is_gradient_checkpointing`` deprecation some peft versions trip on
    (codi-probe never enables gradient checkpointing). Every other warning passes."""

    def __enter__(self):
        import logging
        import warnings

        self._logger = logging.getLogger("transformers.modeling_utils")
        self._filter = _DropNotice()
        self._logger.addFilter(self._filter)
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.* is deprecated", category=FutureWarning)
        return self

    def __exit__(self, *exc):
        self._warnings.__exit__(*exc)
        self._logger.removeFilter(self._filter)
        return False


def _no_init():
    """Skip random init when every tensor is about to be overwritten from a checkpoint."""
    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # transformers < 5
        from transformers.modeling_utils import no_init_weights
    return no_init_weights()


def attach_tokenizer(model: CodiModel, tokenizer) -> CodiModel:
    """Attach a tokenizer, adding ``[PAD]`` as id V exactly as the official scripts do."""
    if tokenizer.pad_token_id is None:
        tokenizer.add_special_tokens({"pad_token": "[PAD]"})
    if tokenizer.pad_token_id != model.special.pad:
        raise ValueError(
            f"tokenizer pad id {tokenizer.pad_token_id} != model PAD id {model.special.pad}: "
            "the tokenizer does not belong to this base (its vocabulary size differs)"
        )
    for role, text in (("bot", model.variant.bot_token), ("eot", model.variant.eot_token)):
        if text is not None and tokenizer.convert_tokens_to_ids(text) != getattr(model.special, role):
            raise ValueError(f"tokenizer maps {text} to {tokenizer.convert_tokens_to_ids(text)}, but the model's "
                             f"{role.upper()} id is {getattr(model.special, role)}: not this checkpoint's tokenizer")
    model.tokenizer = tokenizer
    return model


__all__ = ["CodiConfig", "CodiModel", "SpecialIds", "DTYPES", "NUM_LATENT", "attach_tokenizer", "build_prj"]
