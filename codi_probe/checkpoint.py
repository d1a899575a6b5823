"""Reading, validating and writing CODI checkpoints in the official format (codi-spec.md section 2).

A checkpoint is one flat state dict: ``pytorch_model.bin`` (a plain ``torch.save``, read here with
``weights_only=True`` only) or ``model.safetensors``. Loading is strict: every missing, unexpected or
shape-mismatched key is a :class:`CheckpointError` that names the keys and the likely cause.

A *delta* file is codi-probe's own, for organisms trained on a shipped model's frozen base: it holds only
the tensors that differ from that model's (LoRA, prj), and the sidecar names the model and the sha256 of
its weights file (``CodiConfig.base_weights``); ``merge_base_weights`` fills the rest back in before the
strict check. The official code cannot read a delta file.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from dataclasses import replace
from pathlib import Path

import torch

from .arch import arch_for_keys
from .atomic import atomic_write, torch_save_atomic, write_text_atomic
from .model import CodiConfig, CodiModel

CHECKPOINT_NAMES = ("model.safetensors", "pytorch_model.bin")  # official load order (codi-spec 2.1)
SIDECAR = "codi_config.json"  # codi-probe's own rebuild recipe; official files have none
BCYWINSKI_TOKENS = ("<|bocot|>", "<|eocot|>")


class CheckpointError(ValueError):
    """A checkpoint cannot be used; the message is one line naming the file and the problem."""


def resolve_file(path: str | os.PathLike) -> Path:
    """A checkpoint file, or a directory holding one (safetensors first, as the official loader)."""
    p = Path(path)
    if p.is_dir():
        for name in CHECKPOINT_NAMES:
            if (p / name).is_file():
                return p / name
        raise CheckpointError(f"{p}: no checkpoint in directory (expected one of {', '.join(CHECKPOINT_NAMES)})")
    if not p.exists():
        raise CheckpointError(f"{p}: no such checkpoint file")
    return p


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a flat state dict on CPU. Never unpickles anything but tensors (``weights_only=True``)."""
    p = resolve_file(path)
    if p.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            sd = load_file(str(p), device="cpu")
        except (SafetensorError, OSError, RuntimeError, ValueError) as e:
            raise CheckpointError(f"{p}: not a readable safetensors file ({_first_line(e)})") from None
    else:
        try:
            sd = torch.load(p, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            msg = _first_line(e)
            if "weights only" in msg.lower() or "weights_only" in msg.lower():
                raise CheckpointError(
                    f"{p}: refused: the pickle holds a non-tensor object, and codi-probe only loads "
                    f"with weights_only=True ({_weights_only_detail(e)})"
                ) from None
            raise CheckpointError(f"{p}: not a readable torch checkpoint ({msg})") from None
        except (RuntimeError, EOFError, OSError, ValueError, AttributeError) as e:
            raise CheckpointError(f"{p}: truncated or not a torch checkpoint ({_first_line(e)})") from None
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{p}: expected a flat dict of tensors (a CODI state_dict), got {type(sd).__name__}")
    return sd


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def _weights_only_detail(e: BaseException) -> str:
    for line in str(e).splitlines():
        if "Unsupported global" in line or "Unsupported operand" in line:
            return line.strip().removeprefix("WeightsUnpickler error: ")
    return _first_line(e)


def detect_bcywinski(path: str | os.PathLike, sd: dict[str, torch.Tensor]) -> str | None:
    """Return why ``path`` looks like the bcywinski variant (codi-spec section 7), or None. A checkpoint with
    codi-probe's sidecar is not asked: the sidecar names its variant (``loading._detect_variant``)."""
    p = Path(path)
    folder = p if p.is_dir() else p.parent
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"):
        f = folder / name
        if f.is_file() and any(tok in f.read_text(errors="ignore") for tok in BCYWINSKI_TOKENS):
            return f"its tokenizer ({name}) defines {'/'.join(BCYWINSKI_TOKENS)}"
    prj = [t for k, t in sd.items() if k.startswith("prj.")]
    lora = [t for k, t in sd.items() if ".lora_" in k]
    if prj and lora and all(t.dtype == torch.bfloat16 for t in prj + lora):
        return "its prj and LoRA tensors are bf16 (official checkpoints store them in fp32)"
    return None


def validate_state_dict(model: CodiModel, sd: dict[str, torch.Tensor], origin: str) -> None:
    """Raise one :class:`CheckpointError` listing every key problem with its likely cause."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    tied_pair = {_prefixed(model, model.arch.embed), _prefixed(model, model.arch.lm_head)}
    missing = [k for k in expected if k not in sd]
    if set(missing) <= tied_pair and len(missing) < 2:
        missing = []  # safetensors drops one of two tied tensors; the other one ties them back
    unexpected = [k for k in sd if k not in expected]
    mismatched = [f"{k} {list(sd[k].shape)}!={list(expected[k])}" for k in sd
                  if k in expected and tuple(sd[k].shape) != expected[k]]
    if not (missing or unexpected or mismatched):
        return
    parts = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)):
        if keys:
            shown = ", ".join(keys[:4]) + (f" (+{len(keys) - 4} more)" if len(keys) > 4 else "")
            parts.append(f"{len(keys)} {label}: {shown}")
    raise CheckpointError(f"{origin}: does not fit this CODI model; likely cause: "
                          f"{_likely_cause(model, sd, missing, unexpected, mismatched)}; " + "; ".join(parts))


def _prefixed(model: CodiModel, path: str) -> str:
    return f"codi.base_model.model.{path}.weight"


def _likely_cause(model: CodiModel, sd, missing, unexpected, mismatched) -> str:
    file_arch = arch_for_keys(sd.keys())
    if file_arch is None:
        return "not a CODI checkpoint (no codi.base_model.model.* decoder keys)"
    if file_arch.name != model.arch.name:
        return f"wrong base: the file is a {file_arch.name} CODI but the base config is {model.arch.name}"
    if any(m.startswith("prj.") for m in mismatched):
        got = sd.get("prj.1.weight")
        return (f"wrong prj_dim: the file has prj.1.weight {list(got.shape)}, the model was built with "
                f"prj_dim={model.config.prj_dim}")
    if any(".lora_" in m for m in mismatched):
        return "wrong LoRA rank r"
    if any(".lora_" in k for k in missing) and not any(".lora_" in k for k in sd):
        return "the file has no LoRA adapters (a merged or plain base model?)"
    if mismatched:
        return "wrong base: tensor shapes differ from the base config (width, depth or vocabulary)"
    if missing and all(".layers." in k or ".h." in k for k in missing):
        return "wrong base: the base config has more layers than the file"
    if unexpected and all(".layers." in k or ".h." in k for k in unexpected):
        return "wrong base: the file has more layers than the base config"
    if unexpected and all(".lora_" in k for k in unexpected):
        return "LoRA on other modules than the official targets (the bcywinski/VAB 'all-linear' variant?)"
    return "checkpoint and model graph differ"


def _shipped_weights(name: str) -> Path:
    from .data.loaders import fixtures_dir

    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise CheckpointError(f"base_weights names {name!r}, not a shipped model")
    return resolve_file(fixtures_dir() / "models" / name)


def merge_base_weights(sd: dict[str, torch.Tensor], sidecar: CodiConfig | None, origin: str) -> dict[str, torch.Tensor]:
    """A delta file's tensors over its shipped base's (module docstring); any other file as it is. The base's
    weights file must have the sha256 the sidecar records."""
    ref = sidecar.base_weights if sidecar is not None else None
    if not ref:
        return sd
    if not isinstance(ref, dict) or not isinstance(ref.get("name"), str) or not isinstance(ref.get("sha256"), str):
        raise CheckpointError(f"{origin}: malformed base_weights in its {SIDECAR} (expected "
                              f'{{"name": a shipped model, "sha256": its weights file\'s}}, got {ref!r})')
    try:
        base_file = _shipped_weights(ref["name"])
    except CheckpointError as e:
        raise CheckpointError(f"{origin}: a delta whose base is missing ({e})") from None
    if file_sha256(base_file) != ref.get("sha256"):
        raise CheckpointError(f"{origin}: a delta over {ref.get('name')}, whose weights file {base_file} is not the "
                              f"one it was saved against (sha256 differs)")
    return read_state_dict(base_file) | sd


def load_state_into(model: CodiModel, sd: dict[str, torch.Tensor], origin: str) -> None:
    """Strictly validate, then copy every tensor into ``model`` keeping the module dtypes.

    As in the official load, the embedding and lm_head are one Parameter, and the lm_head tensor wins.
    """
    validate_state_dict(model, sd, origin)
    result = model.load_state_dict(sd, strict=False)
    assert not result.unexpected_keys, result.unexpected_keys
    head_key = _prefixed(model, model.arch.lm_head)
    if head_key in sd:  # explicit, so the rule does not depend on load_state_dict's module order
        with torch.no_grad():
            model.lm_head.weight.copy_(sd[head_key])


def save_checkpoint(model: CodiModel, path: str | os.PathLike, *, sidecar: bool = True,
                    base_weights: str | None = None) -> Path:
    """Write the official format (``.bin`` or ``.safetensors`` by suffix, or a directory → .bin).

    ``lm_head.weight`` is stored as its own tensor, as in the released GPT-2 file, so that the file is
    loadable by both the official code and safetensors. Writes are atomic (temp file, then rename).
    A ``codi_config.json`` sidecar records what the official format leaves out (base config, LoRA
    alpha, tokenizer, loop variant); the official code ignores it. A variant whose tokenizer defines its
    special tokens (bcywinski) gets that tokenizer saved beside the weights, so the round trip keeps it.
    ``base_weights`` (a shipped model's name): write a delta file, only the tensors that differ from that
    model's, and record it in the sidecar (module docstring).
    """
    p = Path(path)
    if p.suffix not in (".bin", ".safetensors"):
        p.mkdir(parents=True, exist_ok=True)
        p = p / "pytorch_model.bin"
    p.parent.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    head_key = _prefixed(model, model.arch.lm_head)
    sd[head_key] = sd[head_key].clone()
    sd = {k: v.contiguous() for k, v in sd.items()}
    config = model.config
    if base_weights is not None:
        if not sidecar:
            raise CheckpointError(f"{p}: a delta file needs its sidecar (it names the base weights)")
        base_file = _shipped_weights(base_weights)
        base_sd = read_state_dict(base_file)
        sd = {k: v for k, v in sd.items() if not (k in base_sd and base_sd[k].dtype == v.dtype
                                                   and base_sd[k].shape == v.shape and torch.equal(base_sd[k], v))}
        config = replace(config, base_weights={"name": base_weights, "sha256": file_sha256(base_file)})
    if p.suffix == ".safetensors":
        from safetensors.torch import save_file

        atomic_write(p, lambda tmp: save_file(sd, str(tmp)))
    else:
        torch_save_atomic(p, sd)
    if model.variant.tokenizer == "checkpoint":  # the variant's tokenizer defines BOT/EOT: it travels along
        if model.tokenizer is None:
            raise CheckpointError(f"{p}: the {model.variant.name} variant keeps its tokenizer beside the weights, "
                                  f"and this model has none attached")
        model.tokenizer.save_pretrained(str(p.parent))
        config = replace(config, tokenizer=None)
    if sidecar:
        text = json.dumps(config.to_json(), indent=2, sort_keys=True)
        write_text_atomic(p.parent / SIDECAR, text)
    return p


def read_sidecar(path: str | os.PathLike) -> CodiConfig | None:
    p = Path(path)
    f = (p if p.is_dir() else p.parent) / SIDECAR
    if not f.is_file():
        return None
    try:
        return CodiConfig.from_json(json.loads(f.read_text()))
    except (json.JSONDecodeError, ValueError, TypeError) as e:
        raise CheckpointError(f"{f}: malformed {SIDECAR} ({_first_line(e)})") from None
