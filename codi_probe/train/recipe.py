"""The tiny CODI model organism: a two-stage recipe on the CYW template family.

Stage 1 pretrains a 4-layer, 128-wide GPT-2-shaped base from scratch on the teacher's explicit-CoT text
(full training, no LoRA). Stage 2 freezes that base and trains CODI (LoRA + ``prj``) with the official
losses (teacher CE + student CE + distillation), as the paper does on a pretrained GPT-2.
"""

from __future__ import annotations

import json
import shutil
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
RECIPES = ("codi", "planted", "pause", "echo")
RECIPE_NAMES = {"codi": ORGANISM, "planted": "codi-tiny-planted", "pause": "codi-tiny-pause",
                "echo": "codi-tiny-echo"}
DEFAULT_CARRIERS = "step1=P2,step2=P4"


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
    mechanism: str = "codi"  # codi (not planted) | planted (IIT carriers) | pause (constant fed latents)
    #   | echo (fed latents copy question words, all inert)
    carriers: str = ""  # planted only: e.g. "step1=P2,step2=P4"
    base_from: str | None = None  # a shipped organism whose frozen stage-1 base is reused (stage 1 skipped)
    iit_factor: float = 1.0
    decode_factor: float = 1.0
    exclusive: bool = False  # planted only: non-carrier fed latents trained inert (mechanisms.ExclusiveTwins)

    def design(self):
        from ..design import Design, parse_carriers

        if self.exclusive and self.mechanism != "planted":
            raise ValueError(f"--exclusive applies to the planted recipe, not {self.mechanism!r}")
        if self.mechanism == "planted":
            how = "interchange intervention training + a decoding loss at each carrier (recipe 'planted')"
            if self.exclusive:
                how += "; non-carrier fed latents trained inert, carriers read directly (--exclusive)"
            return Design("planted", parse_carriers(self.carriers), how, self.exclusive)
        if self.mechanism == "pause":
            return Design("pause", how="prj.ln weight fixed at 0: every fed latent is prj.ln.bias (recipe 'pause')")
        if self.mechanism == "echo":
            return Design("echo", how="each fed latent trained to copy one question word's embedding (X op Y Z X op) "
                                      "and to be causally inert (recipe 'echo')")
        return Design("not planted", how="the CODI objective only (recipe 'codi')")


def make_recipe(name: str = "codi", **overrides) -> Recipe:
    """The recipe ``name`` with its defaults: ``planted`` and ``pause`` reuse ``codi-tiny-arith``'s stage-1
    base (same data split, tokenizer and base; only the latent mechanism differs)."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r} (use {', '.join(RECIPES)})")
    base = {} if name == "codi" else {"base_from": ORGANISM}
    if name == "planted":
        base["carriers"] = DEFAULT_CARRIERS
    recipe = replace(Recipe(), name=RECIPE_NAMES[name], mechanism=name, **base)
    recipe = replace(recipe, **{k: v for k, v in overrides.items() if v is not None})
    if recipe.carriers and name != "planted":
        raise ValueError(f"--carriers applies to the planted recipe, not {name!r}")
    recipe.design()  # validates the carrier map
    return recipe


def _tokenizer_ref(recipe: Recipe, tok_dir: Path, out: Path) -> str:
    """The organism's fixtures tokenizer name when the shipped one is identical (every recipe builds the
    same one from the same split), else a copy beside the model."""
    shipped = fixtures_dir() / "tokenizers" / ORGANISM
    if (shipped / "tokenizer.json").is_file() and tokenizer_vocab(shipped) == tokenizer_vocab(tok_dir):
        return ORGANISM
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

    torch.set_num_threads(min(2, torch.get_num_threads()))
    out = Path(out_dir)
    work = Path(work_dir) if work_dir is not None else out / "work"
    work.mkdir(parents=True, exist_ok=True)
    split = organism_split(recipe.data_seed, recipe.n_heldout_combos, recipe.train_max_x)
    tok_dir = build_tokenizer(list(split.train) + list(split.heldout), work / "tokenizer")
    tok = AutoTokenizer.from_pretrained(str(tok_dir), padding_side="left", local_files_only=True)
    v, eos = len(tok), tok.eos_token_id
    examples = encode_examples(tok, list(split.train), eos, recipe.cot_style, recipe.include_last_cot)

    # ---- stage 1: pretrain the base on explicit-CoT text (or reuse a shipped organism's)
    base_cfg = gpt2_base_config(v, eos, n_layer=recipe.n_layer, n_embd=recipe.n_embd, n_head=recipe.n_head,
                                dropout=recipe.pretrain_dropout)
    device = device or default_device()
    design = recipe.design()
    if recipe.base_from is not None:
        return _finish(recipe, out, work, split, tok, tok_dir, examples, base_cfg, device, design,
                       None, 0.0, progress=progress, evaluate=evaluate)
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

    train_loop(base, lm_loss, len(examples), s1, work / "stage1", desc="stage 1 (base)", progress=progress)
    return _finish(recipe, out, work, split, tok, tok_dir, examples, base_cfg, device, design,
                   base.cpu(), _stage_seconds(work / "stage1"), progress=progress, evaluate=evaluate)


def _stage_seconds(stage_dir: Path) -> float:
    """A stage's training time: the log's cumulative ``elapsed_s`` (summed over resumed calls)."""
    log = read_log(stage_dir)
    return float(log[-1]["elapsed_s"]) if log else 0.0


def _stage2_model(recipe: Recipe, config: CodiConfig, base, device: str):
    """The CODI model stage 2 trains: around the freshly pretrained ``base``, or around the frozen base
    of the shipped organism ``recipe.base_from`` (every non-LoRA, non-prj tensor copied, PAD/BOT/EOT rows
    included), with LoRA and ``prj`` freshly initialised from ``recipe.seed``."""
    if base is not None:
        return codi_from_base(config, base, seed=recipe.seed).to(device)
    from ..loading import load_codi
    from ..model import CodiModel

    shipped = load_codi(recipe.base_from)
    if shipped.config.base != config.base:
        raise ValueError(f"--recipe {recipe.mechanism}: {recipe.base_from}'s base config differs from the recipe's")
    model = CodiModel(config, seed=recipe.seed)
    src = dict(shipped.named_parameters())
    with torch.no_grad():
        for name, p in model.named_parameters():
            frozen = ".lora_" not in name and not name.startswith("prj.")
            if frozen:
                p.copy_(src[name])
            p.requires_grad_(not frozen)
    return model.to(device)


def _finish(recipe: Recipe, out: Path, work: Path, split, tok, tok_dir: Path, examples, base_cfg: dict, device: str,
            design, base, stage1_s: float, *, progress: bool, evaluate: bool) -> dict:
    """Stage 2 (CODI with the recipe's mechanism) on the frozen base, save, measure."""
    from transformers import AutoTokenizer

    from ..checkpoint import save_checkpoint

    codi_base = dict(base_cfg, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    eos = tok.eos_token_id
    config = CodiConfig(base=codi_base, prj_dim=recipe.prj_dim, lora_r=recipe.lora_r, lora_alpha=recipe.lora_alpha,
                        lora_dropout=0.0, eos_token_ids=(eos,), tokenizer=str(tok_dir), name=recipe.name,
                        problems="cyw", design=None if recipe.mechanism == "codi" else design.to_json())
    model = _stage2_model(recipe, config, base, device)
    special = model.special
    s2 = LoopConfig(steps=recipe.codi_steps, batch_size=recipe.batch_size, lr=recipe.codi_lr, seed=recipe.seed + 1,
                    checkpoint_every=recipe.checkpoint_every)
    if recipe.mechanism == "pause":
        from .mechanisms import pause_control

        pause_control(model)
    planted = None
    if recipe.mechanism == "planted":
        from .mechanisms import PlantedCarriers

        planted = PlantedCarriers(dict(design.carriers), recipe.iit_factor, recipe.decode_factor, recipe.exclusive)
    if recipe.mechanism == "echo":
        from .mechanisms import EchoSurface

        planted = EchoSurface(recipe.iit_factor, recipe.decode_factor)
    train_problems = list(split.train)

    def codi_loss(rows):
        batch = collate([examples[i] for i in rows], pad=special.pad, bot=special.bot, eot=special.eot).to(device)
        if planted is not None:
            return planted.losses(model, batch, [train_problems[i] for i in rows], tok,
                                  distill_factor=recipe.distill_factor, ref_factor=recipe.ref_factor)
        return codi_losses(model, batch, distill_factor=recipe.distill_factor, ref_factor=recipe.ref_factor)

    train_loop(model, codi_loss, len(examples), s2, work / "stage2", desc="stage 2 (CODI)", progress=progress)
    stage2_s = _stage_seconds(work / "stage2")

    out.mkdir(parents=True, exist_ok=True)
    model.config = replace(config, tokenizer=_tokenizer_ref(recipe, tok_dir, out))
    save_checkpoint(model, out, base_weights=recipe.base_from)  # a delta over the shared frozen base
    train_s = stage1_s + stage2_s  # training only (evaluation and loading excluded)
    info = {"recipe": asdict(recipe), "design": design.to_json(), "train_examples": len(examples),
            "heldout_problems": len(split.heldout), "vocab_size": len(tok),
            "timing_s": {"stage1": round(stage1_s, 1), "stage2": round(stage2_s, 1), "total": round(train_s, 1)},
            "final_losses": {"stage1": _tail(read_log(work / "stage1")), "stage2": _tail(read_log(work / "stage2"))},
            "torch_threads": torch.get_num_threads(), "device": device, "params": model.param_counts()}
    if evaluate:
        from .evaluate import measure_bars

        attach_tokenizer(model, AutoTokenizer.from_pretrained(str(tok_dir), padding_side="left",
                                                              local_files_only=True))
        info["bars"] = measure_bars(model, list(split.heldout))
        info["linear_probe"] = linear_probe_summary(model, split)
        if recipe.mechanism != "codi":
            from .evaluate import measure_design

            info["design_evidence"] = measure_design(model, list(split.train)[::4], list(split.heldout), design)
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
