"""A tiny checkpoint in the bcywinski layout and a hand-written CYW loop: the oracle for the variant.

Nothing here uses codi-probe's model, loader or engine. The checkpoint is built from plain transformers
and peft modules in the layout of the CYW repository's checkpoints (codi-spec 7, gregkocher/codi
``src/model.py``):
- ``pytorch_model.bin``: the whole wrapper's state dict, keys ``codi.base_model.model.*`` (peft's
  ``base_layer``/``lora_A.default``/``lora_B.default`` on the 7 LLaMA modules) plus ``prj.1``/``prj.3``/
  ``prj.ln``, every tensor bf16, the tied embedding and lm_head one storage under two keys;
- the tokenizer beside it: the base tokenizer (here GPT-2's, V = 50257) plus ``[PAD]`` and the additional
  special tokens ``<|bocot|>``/``<|eocot|>``, so their ids are V, V+1, V+2; the base resized to
  ``len(tokenizer)`` without mean resizing;
- no config.json (the base config lives in a separate directory, as ``--base``), LoRA alpha 32 (not
  stored), and a ``training_args.bin`` pickle that creates a marker file if anyone unpickles it.

The ``<|eocot|>`` embedding row is scaled up (tied, so its logit too): greedy decoding over every id
then emits ``<|eocot|>`` forever, which is the community loaders' decoding mistake this suite must
not make (the control must change the outputs).

:func:`cyw_loop` follows the CYW ``generate`` (greedy, ``remove_eos=False``): the question tokenised
plainly, then ``eos`` and ``<|bocot|>`` in one prefill; P0 = ``hidden_states[-1][:, -1]`` projected; six
latents fed as ``prj(h)``; EOT = the ``<|eocot|>`` embedding; greedy over ``logits[:, :len(tok)-1]``;
stop after the tokenizer's eos. Its keyword arguments plant the known loader mistakes.
"""

from __future__ import annotations

import builtins
import pickle
from pathlib import Path

import torch
import torch.nn as nn

from codi_probe.compat import cache_arg, output_cache

LLAMA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj", "gate_proj"]
TINY_LLAMA = {"model_type": "llama", "vocab_size": 50257, "hidden_size": 64, "intermediate_size": 128,
              "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
              "max_position_embeddings": 512, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
              "tie_word_embeddings": True, "bos_token_id": 50256, "eos_token_id": 50256}
ALPHA = 32
RANK = 8
EOCOT_SCALE = 1.5  # about 10x the other rows: enough to win every step, not to saturate the softmax
MARKER = "UNPICKLED"


class _Trap:
    """Unpickling this creates ``MARKER`` beside it: proof that someone read ``training_args.bin``."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (builtins.open, (self.path, "w"))


def cyw_tokenizer(gpt2_dir: Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(gpt2_dir), local_files_only=True)
    tok.add_special_tokens({"pad_token": "[PAD]"})
    tok.add_special_tokens({"additional_special_tokens": ["<|bocot|>", "<|eocot|>"]})
    return tok


def cyw_modules(base_dir: Path, n_tokens: int, *, alpha: int = ALPHA, ln_at_index_4: bool = False, seed: int = 0):
    """The wrapper's parts, as the CYW class builds them: a peft LLaMA and ``prj``. ``ln_at_index_4``
    builds the projection with its LayerNorm at index 4 (VAB's layout), whose keys the file does not have."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(seed)
    config = AutoConfig.from_pretrained(str(base_dir), local_files_only=True)
    lm = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
    lm.resize_token_embeddings(n_tokens, mean_resizing=False)
    codi = get_peft_model(lm, LoraConfig(task_type="CAUSAL_LM", r=RANK, lora_alpha=alpha, lora_dropout=0.1,
                                         target_modules=LLAMA_TARGETS, init_lora_weights=True))
    d = config.hidden_size
    prj = nn.Sequential(nn.Dropout(0.0), nn.Linear(d, d), nn.GELU(), nn.Linear(d, d))
    if ln_at_index_4:
        prj.append(nn.LayerNorm(d))
    else:
        prj.add_module("ln", nn.LayerNorm(d))
    codi.eval()
    prj.eval()
    return codi, prj


def build_checkpoint(root: Path, gpt2_dir: Path, *, n_layers: int | None = None) -> tuple[Path, Path]:
    """Write ``root/base`` (config.json only) and ``root/ckpt`` (bcywinski layout); return both.
    ``n_layers`` overrides the base's 4 blocks (shallow models: the last block is a grid's layer)."""
    from transformers import AutoConfig

    base_dir, ckpt = root / "base", root / "ckpt"
    base_dir.mkdir(parents=True, exist_ok=True)
    ckpt.mkdir(parents=True, exist_ok=True)
    cfg = dict(TINY_LLAMA) if n_layers is None else {**TINY_LLAMA, "num_hidden_layers": n_layers}
    AutoConfig.for_model(cfg.pop("model_type"), **cfg).save_pretrained(str(base_dir))
    tok = cyw_tokenizer(gpt2_dir)
    tok.save_pretrained(str(ckpt))
    codi, prj = cyw_modules(base_dir, len(tok))
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, p in sorted([*codi.named_parameters(), *(("prj." + n, q) for n, q in prj.named_parameters())]):
            if ".lora_B." in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
            elif "norm" in name or ".ln." in name:
                p.add_(torch.randn(p.shape, generator=gen) * 0.3)
        emb = codi.get_input_embeddings().weight
        eocot = tok.convert_tokens_to_ids("<|eocot|>")
        emb[eocot] = emb[eocot] / emb[eocot].norm() * EOCOT_SCALE
    codi.to(torch.bfloat16)
    prj.to(torch.bfloat16)
    state = {f"codi.{k}": v for k, v in codi.state_dict().items()}
    state.update({f"prj.{k}": v for k, v in prj.state_dict().items()})
    torch.save(state, ckpt / "pytorch_model.bin")
    with open(ckpt / "training_args.bin", "wb") as f:
        pickle.dump(_Trap(str(ckpt / MARKER)), f)
    return ckpt, base_dir


def load_reference(ckpt: Path, base_dir: Path, *, alpha: int = ALPHA, ln_at_index_4: bool = False,
                   dtype: torch.dtype = torch.float32):
    """The CYW parts with the file's weights (``strict`` unless the LayerNorm sits at index 4, as in the
    loaders that load with ``strict=False``), cast to ``dtype``; returns ``(codi, prj, tokenizer)``."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(ckpt), local_files_only=True)
    codi, prj = cyw_modules(base_dir, len(tok), alpha=alpha, ln_at_index_4=ln_at_index_4)
    state = torch.load(ckpt / "pytorch_model.bin", map_location="cpu", weights_only=True)
    codi.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("codi.")}, strict=True)
    result = prj.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("prj.")},
                                 strict=not ln_at_index_4)
    assert not ln_at_index_4 or result.missing_keys == ["4.weight", "4.bias"]
    codi.to(dtype)
    prj.to(dtype)
    return codi, prj, tok


@torch.no_grad()
def cyw_loop(codi, prj, tok, question: str, *, num_latent: int = 6, use_prj: bool = True, full_vocab: bool = False,
             eos_in_prompt: bool = True, max_new_tokens: int = 10) -> CywRun:
    """Batch 1: the logit-lens top-1 at P0..P_n, the greedy answer ids (eos kept), h_0..h_n and the logits
    behind each choice (as :class:`CywRun`; it unpacks as ``(lens, answer, h)``)."""
    eos = tok.eos_token_id
    prompt = tok(question)["input_ids"] + ([eos] if eos_in_prompt else []) + [tok.convert_tokens_to_ids("<|bocot|>")]
    head = codi.get_output_embeddings()
    embed = codi.get_input_embeddings()
    dtype = embed.weight.dtype
    out = codi(input_ids=torch.tensor([prompt]), use_cache=True, output_hidden_states=True)
    hs = [out.hidden_states[-1][:, -1]]
    for _ in range(num_latent):
        z = (prj(hs[-1]) if use_prj else hs[-1]).to(dtype)
        out = codi(inputs_embeds=z.unsqueeze(1), use_cache=True, output_hidden_states=True,
                   **cache_arg(codi, output_cache(out)))
        hs.append(out.hidden_states[-1][:, -1])
    lens_logits = torch.cat([head(h) for h in hs]).float()
    cur = embed(torch.tensor([[tok.convert_tokens_to_ids("<|eocot|>")]]))
    cut = None if full_vocab else len(tok) - 1
    answer: list[int] = []
    answer_logits = []
    for _ in range(max_new_tokens):
        out = codi(inputs_embeds=cur, use_cache=True, **cache_arg(codi, output_cache(out)))
        answer_logits.append(out.logits[0, -1, :cut].float())
        nxt = int(answer_logits[-1].argmax())
        answer.append(nxt)
        if nxt == eos:
            break
        cur = embed(torch.tensor([[nxt]]))
    return CywRun(lens_logits.argmax(-1).tolist(), answer, torch.cat(hs).float(), lens_logits, torch.stack(answer_logits))


class CywRun(tuple):
    """``(lens, answer, h)`` plus ``lens_logits`` [n+1, V] and ``answer_logits`` [steps, V'] for the tie rule."""

    def __new__(cls, lens, answer, h, lens_logits, answer_logits):
        run = super().__new__(cls, (lens, answer, h))
        run.lens_logits, run.answer_logits = lens_logits, answer_logits
        return run
