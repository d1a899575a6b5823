"""The tiny CODI model organism: a two-stage recipe on the CYW template family.

Stage 1 pretrains a 4-layer, 128-wide GPT-2-shaped base from scratch on the teacher's explicit-CoT text
(full training, no LoRA). Stage 2 freezes that base and trains CODI (LoRA + ``prj``) with the official
losses (teacher CE + student CE + distillation), as the paper does on a pretrained GPT-2.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from ..data.loaders import fixtures_dir
from ..model import CodiConfig, attach_tokenizer
from .build import build_base_lm, codi_from_base, gpt2_base_config
from .data import (build_tokenizer, collate, encode_examples, lm_batch, organism_split, tokenizer_vocab)
from .loop import LoopConfig, read_log, train_loop
from .losses import codi_losses

ORGANISM = "codi-tiny-arith"


@dataclass(frozen=True)
class Recipe:
    name: str = ORGANISM
    seed: int = 11
    data_seed: int = 42  # CYW combination order; the first n_heldout_combos are held out
    n_heldout_combos: int = 50
    train_max_x: int = 9  # training also holds X in 9..train_max_x (never held out), see organism_split
    cot_style: str = "numbers"
    include_last_cot: bool = False
    n_layer: int = 4
    n_embd: int = 128
    n_head: int = 4
    pretrain_steps: int = 2000
    pretrain_lr: float = 2e-3
    pretrain_dropout: float = 0.1
    codi_steps: int = 1500
    codi_lr: float = 2e-3
    batch_size: int = 64
    lora_r: int = 32
    lora_alpha: int = 32
    prj_dim: int = 128
    distill_factor: float = 1.0
    ref_factor: float = 1.0
    checkpoint_every: int = 250


def _tokenizer_ref(recipe: Recipe, tok_dir: Path, out: Path) -> str:
    """The fixtures tokenizer name when the shipped one is identical, else a copy beside the model."""
    shipped = fixtures_dir() / "tokenizers" / recipe.name
    if (shipped / "tokenizer.json").is_file() and tokenizer_vocab(shipped) == tokenizer_vocab(tok_dir):
        return recipe.name
    dest = out / "tokenizer"
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(tok_dir, dest)
    return str(dest.resolve())


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def train_organism(out_dir: str | Path, work_dir: str | Path | None = None, recipe: Recipe = Recipe(), *,
                   progress: bool = True, evaluate: bool = True, device: str | None = None) -> dict:
    """Run the whole recipe (resumable: re-running with the same ``work_dir`` continues), save the CODI
    checkpoint to ``out_dir`` (``pytorch_model.bin`` + ``codi_config.json``) and, with ``evaluate``,
    measure the bars on the held-out problems into ``out_dir/metrics.json``. Returns the metrics.
    ``device``: ``cpu`` or ``cuda`` (default: CUDA when present); training runs in fp32 either way."""
    from transformers import AutoTokenizer

    from ..checkpoint import save_checkpoint

    torch.set_num_threads(min(2, torch.get_num_threads()))
    out = Path(out_dir)
    work = Path(work_dir) if work_dir is not None else out / "work"
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    split = organism_split(recipe.data_seed, recipe.n_heldout_combos, recipe.train_max_x)
    tok_dir = build_tokenizer(list(split.train) + list(split.heldout), work / "tokenizer")
    tok = AutoTokenizer.from_pretrained(str(tok_dir), padding_side="left", local_files_only=True)
    v, eos = len(tok), tok.eos_token_id
    examples = encode_examples(tok, list(split.train), eos, recipe.cot_style, recipe.include_last_cot)

    # ---- stage 1: pretrain the base on explicit-CoT text
    base_cfg = gpt2_base_config(v, eos, n_layer=recipe.n_layer, n_embd=recipe.n_embd, n_head=recipe.n_head,
                                dropout=recipe.pretrain_dropout)
    device = device or default_device()
    base = build_base_lm(base_cfg, recipe.seed).to(device)
    s1 = LoopConfig(steps=recipe.pretrain_steps, batch_size=recipe.batch_size, lr=recipe.pretrain_lr,
                    seed=recipe.seed, checkpoint_every=recipe.checkpoint_every)

    def lm_loss(rows):
        ids, labels = lm_batch([examples[i] for i in rows], pad=eos)
        ids, labels = ids.to(device), labels.to(device)
        logits = base(input_ids=ids).logits
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, v), labels[:, 1:].reshape(-1),
                                                 ignore_index=-100)
        return {"loss": loss}

    t1 = time.time()
    train_loop(base, lm_loss, len(examples), s1, work / "stage1", desc="stage 1 (base)", progress=progress)
    stage1_s = time.time() - t1

    # ---- stage 2: CODI (LoRA + prj) on the frozen base
    codi_base = dict(base_cfg, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    config = CodiConfig(base=codi_base, prj_dim=recipe.prj_dim, lora_r=recipe.lora_r, lora_alpha=recipe.lora_alpha,
                        lora_dropout=0.0, eos_token_ids=(eos,), tokenizer=str(tok_dir), name=recipe.name,
                        problems="cyw")
    model = codi_from_base(config, base.cpu(), seed=recipe.seed).to(device)
    special = model.special
    s2 = LoopConfig(steps=recipe.codi_steps, batch_size=recipe.batch_size, lr=recipe.codi_lr, seed=recipe.seed + 1,
                    checkpoint_every=recipe.checkpoint_every)

    def codi_loss(rows):
        batch = collate([examples[i] for i in rows], pad=special.pad, bot=special.bot, eot=special.eot).to(device)
        return codi_losses(model, batch, distill_factor=recipe.distill_factor, ref_factor=recipe.ref_factor)

    t2 = time.time()
    train_loop(model, codi_loss, len(examples), s2, work / "stage2", desc="stage 2 (CODI)", progress=progress)
    stage2_s = time.time() - t2

    out.mkdir(parents=True, exist_ok=True)
    model.config = replace(config, tokenizer=_tokenizer_ref(recipe, tok_dir, out))
    save_checkpoint(model, out)
    train_s = time.time() - t_start
    info = {"recipe": asdict(recipe), "train_examples": len(examples),
            "heldout_problems": len(split.heldout), "vocab_size": v,
            "timing_s": {"stage1": round(stage1_s, 1), "stage2": round(stage2_s, 1), "total": round(train_s, 1)},
            "final_losses": {"stage1": _tail(read_log(work / "stage1")), "stage2": _tail(read_log(work / "stage2"))},
            "torch_threads": torch.get_num_threads(), "device": device, "params": model.param_counts()}
    if evaluate:
        from .evaluate import measure_bars

        attach_tokenizer(model, AutoTokenizer.from_pretrained(str(tok_dir), padding_side="left",
                                                              local_files_only=True))
        info["bars"] = measure_bars(model, list(split.heldout))
        info["linear_probe"] = linear_probe_summary(model, split)
    (out / "metrics.json").write_text(json.dumps(info, indent=2))
    return info


def _tail(records: list[dict], n: int = 50) -> dict:
    if not records:
        return {}
    tail = records[-n:]
    keys = [k for k in tail[-1] if k not in ("step", "lr", "grad_norm", "elapsed_s")]
    return {k: round(sum(r[k] for r in tail) / len(tail), 5) for k in keys}


def linear_probe_summary(model, split) -> dict:
    from .evaluate import linear_probe

    return linear_probe(model, list(split.train)[::4], list(split.heldout))
