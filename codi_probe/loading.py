"""``load_codi``: the one way to get a ready CODI model from a name, a checkpoint path or a Hub id.

A spec is read in this order: a built-in random model name, an existing local path, a shipped model name,
then a Hugging Face Hub id ``owner/name[@revision]``, resolved to its cached snapshot folder by
:mod:`codi_probe.hub` (only the files the loop variant needs).

Resolution of the base config for a checkpoint (first match wins):
1. ``base=`` a local HF directory with ``config.json``, a bundled name (``gpt2``,
   ``meta-llama/Llama-3.2-1B-Instruct``: always the bundled config, offline), or a Hub id (its config.json);
2. the ``codi_config.json`` sidecar that codi-probe writes beside the checkpoints it saves;
3. the bundled config whose family and shapes match the file's keys (the released zen-E files).
LoRA rank and ``prj_dim`` are read from the file's shapes unless given. LoRA alpha is not stored in the
file: it comes from ``lora_alpha=``, else the sidecar, else it is *assumed* to be the official 32, and
``model.source["lora_alpha_assumed"]`` says so (``info``, ``run --json`` and the report show it).
The tokenizer comes from ``tokenizer=``, else from the ``base`` directory when it holds tokenizer
files (as HF model directories do), else the one the sidecar or the base family names.

The loop variant (:mod:`codi_probe.variants`) is detected: the bcywinski checkpoints (a tokenizer with
``<|bocot|>``/``<|eocot|>`` in the checkpoint directory, every tensor bf16, no config.json) load as the
``bcywinski`` variant, their tokenizer and special ids from the checkpoint directory (a tokenizer in
``base`` does not replace it; ``tokenizer=`` does). ``model.source["assumed"]`` lists every value the
loader assumed (variant, LoRA alpha, six latents, base config, prj layout) with its reason.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from importlib import resources
from pathlib import Path

from .checkpoint import (CHECKPOINT_NAMES, SIDECAR, CheckpointError, detect_bcywinski, file_sha256, load_state_into,
                         merge_base_weights, read_sidecar,
                         read_state_dict, resolve_file)
from .arch import arch_for_keys
from .defaults import DEFAULT_MODEL
from .hub import HubError, HubSnapshot, parse_hub_id, resolve
from .data.loaders import fixtures_dir
from .model import CodiConfig, CodiModel, attach_tokenizer, check_precision
from .variants import BCYWINSKI, OFFICIAL, LoopVariant, variant
from .tiny import TINY_CONFIGS, build_tiny

BUNDLED_CONFIGS = {
    "gpt2": "gpt2.json",
    "meta-llama/Llama-3.2-1B-Instruct": "llama-3.2-1b-instruct.json",
}
LLAMA_INSTRUCT_EOS = (128009, 128001)  # codi-spec 6.1: stop on <|eot_id|>, also <|end_of_text|>


def load_tokenizer(spec: str | os.PathLike):
    """A tokenizer from a local directory, a fixtures name (``gpt2``) or a Hub id (its tokenizer files only,
    through :mod:`codi_probe.hub`); transformers itself never touches the Hub."""
    from transformers import AutoTokenizer

    path = Path(spec)
    if not path.is_dir():
        path = fixtures_dir() / "tokenizers" / str(spec)
    if not path.is_dir() and parse_hub_id(str(spec)) is not None:
        path = hub_dir(str(spec), "tokenizer")[0]
    if not path.is_dir():
        raise FileNotFoundError(f"tokenizer {spec!r}: not a local directory, a fixtures tokenizer nor a Hub id")
    return AutoTokenizer.from_pretrained(str(path), padding_side="left", local_files_only=True)


def hub_dir(spec: str, role: str) -> tuple[Path, HubSnapshot]:
    """The cached snapshot folder of the Hub id ``spec`` holding the files ``role`` needs, and its snapshot."""
    ref = parse_hub_id(spec)
    if ref is None:
        raise HubError(f"{spec!r}: not a Hub id (owner/name or owner/name@revision)")
    snap = resolve(ref, role)
    return snap.path, snap


def local_base(base: str | os.PathLike | None) -> tuple[str | os.PathLike | None, HubSnapshot | None]:
    """``base`` as the loader reads it: a local path or a bundled name as given (a bundled name always means
    its bundled config, offline), a Hub id as its cached snapshot folder (config and tokenizer files only)."""
    if base is None or Path(base).exists() or str(base) in BUNDLED_CONFIGS or parse_hub_id(str(base)) is None:
        return base, None
    return hub_dir(str(base), "base")


def bundled_base_config(name: str) -> dict:
    if name not in BUNDLED_CONFIGS:
        raise CheckpointError(f"base {name!r}: not a local directory, a bundled config nor a Hub id "
                              f"(bundled: {', '.join(BUNDLED_CONFIGS)})")
    text = resources.files("codi_probe").joinpath("configs", BUNDLED_CONFIGS[name]).read_text()
    return json.loads(text)


def _base_config(base: str | os.PathLike) -> dict:
    path = Path(base)
    if (path / "config.json").is_file():
        return json.loads((path / "config.json").read_text())
    return bundled_base_config(str(base))


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")


def has_tokenizer(folder: str | os.PathLike | None) -> bool:
    """True when ``folder`` is a directory holding tokenizer files."""
    return folder is not None and Path(folder).is_dir() and any((Path(folder) / f).is_file() for f in TOKENIZER_FILES)


def _infer_config(sd, origin: str, base, prj_dim, lora_alpha, sidecar: CodiConfig | None,
                  loop: LoopVariant) -> CodiConfig:
    if base is not None:
        base_cfg = _base_config(base)
    elif sidecar is not None:
        base_cfg = sidecar.base
    else:
        arch = arch_for_keys(sd.keys())
        if arch is None:
            raise CheckpointError(f"{origin}: not a CODI checkpoint (no codi.base_model.model.* decoder keys)")
        base_cfg = bundled_base_config(_bundled_name(arch))
    lora_a = next((t for k, t in sd.items() if ".lora_A." in k), None)
    prj1 = sd.get("prj.1.weight")
    eos = tuple(sidecar.eos_token_ids) if sidecar else ()
    if not eos and base_cfg.get("model_type") == "llama" and base_cfg.get("vocab_size") == 128256:
        eos = LLAMA_INSTRUCT_EOS
    cfg = CodiConfig(
        base=base_cfg,
        prj_dim=int(prj_dim or (prj1.shape[0] if prj1 is not None else base_cfg.get("n_embd") or
                                base_cfg.get("hidden_size"))),
        lora_r=int(lora_a.shape[0]) if lora_a is not None else (sidecar.lora_r if sidecar else 128),
        lora_alpha=int(lora_alpha if lora_alpha is not None else (sidecar.lora_alpha if sidecar else loop.lora_alpha)),
        eos_token_ids=eos,
        tokenizer=sidecar.tokenizer if sidecar else ("gpt2" if base_cfg.get("model_type") == "gpt2" else None),
        name=_display_name(Path(origin)),
        answer_format=loop.answer_format,
        variant=loop.name,
    )
    if sidecar is not None:  # what the official format cannot hold comes from codi-probe's own sidecar
        cfg = replace(cfg, answer_format=sidecar.answer_format, problems=sidecar.problems,
                      **({"name": sidecar.name} if base is None and prj_dim is None else {}))
    return cfg


def _bundled_name(arch) -> str:
    return "gpt2" if arch.name == "gpt2" else "meta-llama/Llama-3.2-1B-Instruct"


def _detect_variant(path, sd, sidecar: CodiConfig | None) -> tuple[LoopVariant, str]:
    """The checkpoint's loop variant and why: the sidecar's word, else the bcywinski signs, else official."""
    if sidecar is not None:
        return variant(sidecar.variant), f"{SIDECAR} says so"
    why = detect_bcywinski(path, sd)
    return (BCYWINSKI, why) if why else (OFFICIAL, "no bcywinski sign (tokenizer or all-bf16 prj and LoRA)")


def _tokenizer_ids(cfg: CodiConfig, loop: LoopVariant, tok_dir: Path, sd, origin: str):
    """PAD/BOT/EOT, the stop id and the resized vocabulary from the variant's own tokenizer (in ``tok_dir``).
    Returns ``(config, tokenizer)``: the tokenizer is attached once the model is built, not loaded again."""
    if not has_tokenizer(tok_dir):
        raise CheckpointError(f"{origin}: the {loop.name} variant reads its special ids from the tokenizer in the "
                              f"checkpoint directory, and {tok_dir} has none (expected tokenizer.json or "
                              f"tokenizer_config.json defining {loop.bot_token}/{loop.eot_token})")
    try:
        tok = load_tokenizer(tok_dir)
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise CheckpointError(f"{origin}: the {loop.name} variant's tokenizer in {tok_dir} does not load "
                              f"({type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''})") from None
    ids = {"[PAD]": tok.pad_token_id, loop.bot_token: tok.convert_tokens_to_ids(loop.bot_token),
           loop.eot_token: tok.convert_tokens_to_ids(loop.eot_token)}
    missing = [text for text, i in ids.items() if i is None or i == tok.unk_token_id]
    if missing or tok.eos_token_id is None:
        raise CheckpointError(f"{origin}: the tokenizer in {tok_dir} does not define "
                              f"{', '.join(missing or ['an eos token'])}, which the {loop.name} variant needs")
    arch = arch_for_keys(sd.keys())
    embed = sd.get(f"codi.base_model.model.{arch.embed}.weight") if arch else None
    rows = embed.shape[0] if embed is not None else None
    if loop.resize == "tokenizer" and rows is not None and rows != len(tok):
        raise CheckpointError(f"{origin}: the embedding has {rows} rows but the checkpoint's tokenizer has "
                              f"{len(tok)} tokens; the {loop.name} variant resizes to len(tokenizer)")
    pad, bot, eot = ids.values()
    return replace(cfg, special_ids=(int(pad), int(bot), int(eot)), vocab_size=len(tok),
                   eos_token_ids=(int(tok.eos_token_id),), tokenizer=str(tok_dir)), tok


def _display_name(file: Path) -> str:
    return file.parent.name if file.name in CHECKPOINT_NAMES else file.stem


def load_checkpoint(path: str | os.PathLike, *, base: str | os.PathLike | None = None,
                    prj_dim: int | None = None, lora_alpha: int | None = None,
                    tokenizer: str | os.PathLike | None = None) -> CodiModel:
    """Build the module graph for ``path`` and load it strictly (tensors keep the file's dtypes).

    The loop variant (:mod:`codi_probe.variants`) comes from the sidecar, else from the bcywinski signs
    (a tokenizer defining ``<|bocot|>``/``<|eocot|>``, or prj and LoRA all bf16). A variant whose special
    ids come from its tokenizer reads them from ``tokenizer`` when given, else from the checkpoint
    directory. Only the weights file is read: a ``training_args.bin`` beside it is never opened."""
    check_lora_alpha(lora_alpha)
    base = local_base(base)[0]
    file = resolve_file(path)
    sidecar = read_sidecar(str(file))
    sd = merge_base_weights(read_state_dict(file), sidecar, str(file))
    loop, why = _detect_variant(path, sd, sidecar)
    cfg = _infer_config(sd, str(file), base, prj_dim, lora_alpha, sidecar, loop)
    tok = None
    if loop.special_ids == "tokenizer":
        cfg, tok = _tokenizer_ids(cfg, loop, Path(tokenizer) if tokenizer is not None else file.parent, sd, str(file))
    try:
        model = CodiModel(cfg, skip_init=True)
    except (ValueError, TypeError, KeyError) as e:
        raise CheckpointError(f"{file}: cannot build the base model ({type(e).__name__}: {e})") from None
    _match_dtypes(model, sd)
    load_state_into(model, sd, str(file))
    model.source = {"name": cfg.name, "path": str(file), "file_sha256": file_sha256(file),
                    "lora_alpha_assumed": lora_alpha is None and sidecar is None,
                    **({"base_weights": dict(sidecar.base_weights)} if sidecar and sidecar.base_weights else {}),
                    "assumed": _assumed(cfg, loop, why, sd, base, lora_alpha, sidecar)}
    if tok is not None:  # the variant's own tokenizer, already read for its special ids
        attach_tokenizer(model, tok)
    return model


def _assumed(cfg: CodiConfig, loop: LoopVariant, why: str, sd, base, lora_alpha, sidecar) -> dict[str, str]:
    """Every value the loader did not read from the file, the sidecar or the user, and why it holds."""
    if sidecar is not None:
        return {}
    out = {"variant": f"{loop.name} ({why})"}
    if lora_alpha is None:
        out["lora_alpha"] = f"{cfg.lora_alpha} (not stored in the file; pass --lora-alpha if it was trained with another)"
    out["num_latent"] = f"{cfg.num_latent} (not stored; the released checkpoints feed six latents)"
    if base is None:
        arch = arch_for_keys(sd.keys())
        out["base_config"] = (f"bundled {_bundled_name(arch)} (no config.json ships with the checkpoint; "
                              f"--base DIR for another)" if arch else "unknown")
    out["prj"] = (f"Dropout, Linear({cfg.base.get('hidden_size') or cfg.base.get('n_embd')}->{cfg.prj_dim}), GELU, "
                  f"Linear, LayerNorm 'ln' (prj_dim from the file's prj.1.weight)")
    return out


def _match_dtypes(model: CodiModel, sd) -> None:
    """Give each parameter its file dtype, so that an unconverted load is bit-exact (the bf16/fp32 mix)."""
    params = dict(model.named_parameters(remove_duplicate=False))
    for key, tensor in sd.items():
        p = params.get(key)
        if p is not None and p.dtype != tensor.dtype and tensor.is_floating_point():
            p.data = p.data.to(tensor.dtype)


def load_codi(spec: str | os.PathLike | None = None, *, base: str | os.PathLike | None = None,
              tokenizer: str | os.PathLike | None = None, dtype: str = "fp32", device: str = "cpu",
              prj_dim: int | None = None, lora_alpha: int | None = None) -> CodiModel:
    """Load a CODI model by name (``tiny-random-gpt2``, ``tiny-random-llama``, a shipped model, default), path
    or Hugging Face Hub id (``owner/name`` or ``owner/name@revision``, :mod:`codi_probe.hub`).

    A spec is read in this order: a built-in model name, an existing local path, a shipped model name, a Hub
    id. ``base`` and ``tokenizer`` take a local path, a bundled base name (its bundled config, offline) or a
    Hub id too.
    ``lora_alpha`` must be a positive integer when given. ``dtype``: ``fp32`` (CPU default), ``bf16`` (the
    released evaluation's numerics: all bf16), ``fp16``, ``mixed`` (the official storage layout: bf16 base,
    fp32 LoRA and prj), or ``native`` (keep the file's own dtypes). The tokenizer comes from ``tokenizer``,
    else the ``base`` directory when it holds tokenizer files, else the one the model names (the GPT-2
    tokenizer ships in fixtures), else the Hub repository of a bundled base name (LLaMA's).
    ``model.source["hub"]`` records the repository id, revision and resolved commit of each Hub spec.
    """
    check_precision(dtype, native=True)
    check_lora_alpha(lora_alpha)
    spec = str(spec or DEFAULT_MODEL)
    shipped = fixtures_dir() / "models" / spec
    hub: dict[str, dict[str, str]] = {}
    base, base_snap = local_base(base)
    if base_snap is not None:
        hub["base"] = base_snap.to_json()
    if tokenizer is not None and not Path(tokenizer).exists() and str(tokenizer) not in fixtures_tokenizers() \
            and parse_hub_id(str(tokenizer)) is not None:
        tokenizer, snap = hub_dir(str(tokenizer), "tokenizer")
        hub["tokenizer"] = snap.to_json()
    if spec in TINY_CONFIGS:
        if lora_alpha is not None:
            raise ValueError(f"{spec}: a built-in random model has its own LoRA alpha; lora_alpha applies to checkpoints")
        model = build_tiny(spec)
        model.source = {"name": spec, "path": None, "file_sha256": None, "lora_alpha_assumed": False}
    elif shipped.is_dir() and not Path(spec).exists():
        model = load_checkpoint(shipped, base=base, prj_dim=prj_dim, lora_alpha=lora_alpha, tokenizer=tokenizer)
    elif Path(spec).exists():
        model = load_checkpoint(spec, base=base, prj_dim=prj_dim, lora_alpha=lora_alpha, tokenizer=tokenizer)
    elif parse_hub_id(spec) is not None:
        folder, snap = hub_dir(spec, "model")
        model = load_checkpoint(folder, base=base, prj_dim=prj_dim, lora_alpha=lora_alpha, tokenizer=tokenizer)
        model.source["name"] = snap.repo_id
        hub["model"] = snap.to_json()
    else:
        names = [*TINY_CONFIGS, *shipped_models()]
        raise CheckpointError(f"{spec}: no such checkpoint path, model name (names: {', '.join(names)}) "
                              f"nor Hub id (owner/name[@revision])")
    if hub:
        model.source["hub"] = hub
    if dtype != "native":
        model.set_precision(dtype)
    model.to(device)
    tok = tokenizer or (base if has_tokenizer(base) else None) or model.config.tokenizer
    if model.tokenizer is None and tok is None:
        tok = _bundled_base_tokenizer(model, base, hub)
    if model.tokenizer is None and tok is not None:  # a variant's own tokenizer is attached by load_checkpoint
        attach_tokenizer(model, load_tokenizer(tok))
    return model


def _bundled_base_tokenizer(model: CodiModel, base, hub: dict) -> Path | None:
    """The tokenizer of a bundled base (given, or assumed for a released file) from its own Hub repository
    (``meta-llama/Llama-3.2-1B-Instruct``: gated, so cached or with access); ``None`` when the Hub cannot
    give it, and the model loads without a tokenizer as before (``--tokenizer DIR`` gives one)."""
    name = str(base) if base is not None and str(base) in BUNDLED_CONFIGS else None
    if base is None and "base_config" in model.source.get("assumed", {}):
        name = _bundled_name(model.arch)
    if name is None or name in fixtures_tokenizers():
        return None
    try:
        folder, snap = hub_dir(name, "tokenizer")
    except HubError:
        return None
    hub["tokenizer"] = snap.to_json()
    model.source["hub"] = hub
    return folder


def fixtures_tokenizers() -> list[str]:
    """Names of the tokenizers shipped under ``fixtures/tokenizers/``."""
    root = fixtures_dir() / "tokenizers"
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def check_lora_alpha(lora_alpha: int | None, name: str = "lora_alpha") -> None:
    """``None`` (read from the sidecar, else assumed) or a positive integer; 0 is an error, never replaced.
    ``name`` is what the message calls it (the CLI's ``--lora-alpha``)."""
    if lora_alpha is None:
        return
    whole = isinstance(lora_alpha, int) or (isinstance(lora_alpha, float) and lora_alpha.is_integer())
    if isinstance(lora_alpha, bool) or not whole or not lora_alpha > 0:
        raise ValueError(f"{name} {lora_alpha!r}: must be a positive integer (the LoRA scale is alpha / r)")


def shipped_models() -> list[str]:
    """Names of the trained models shipped under ``fixtures/models/``."""
    root = fixtures_dir() / "models"
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
