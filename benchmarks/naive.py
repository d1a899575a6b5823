"""The naive reference: what the published scripts did, one intervention per full re-run.

Batch 1, plain HF calls on ``model.codi`` with ``use_cache=True, output_hidden_states=True`` (so the
lm_head runs on every prefix token and every latent step, as the official loop does), ``prj(h)`` fed
six times, then greedy decoding over ``logits[:, :V-1]`` until EOS. An intervention is one forward
hook on ``blocks[layer]`` that rewrites the output at one canonical position. Nothing is shared
between interventions: every call re-runs the question prefix.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Sequence

import torch

from codi_probe.compat import cache_arg, output_cache
from codi_probe.engine.hooks import question_key
from codi_probe.engine.interventions import Op
from codi_probe.engine.loop import normalize_question
from codi_probe.engine.positions import NUM_LATENT


def _ids(model, ids) -> torch.Tensor:
    """A ``[1, n]`` id tensor on the model's device."""
    return torch.tensor([list(ids)], device=model.device)


NaiveEdit = tuple[int, str, Op]  # (block index, position "P0".."P6" or "EOT", op) on resid_post


@contextmanager
def _edit_hook(model, edit: NaiveEdit | None, where: dict):
    """A forward hook on ``blocks[layer]`` applying ``op`` to the last token when ``where['pos']`` matches."""
    if edit is None:
        yield
        return
    layer, position, op = edit

    def hook(module, args, output):
        if where["pos"] != position:
            return output
        key = question_key(where["ids"])
        hidden = output[0] if isinstance(output, tuple) else output
        hidden = hidden.clone()
        hidden[0, -1] = op(hidden[0, -1], site="resid_post", layer=layer, position=position, key=key)
        return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

    handle = model.blocks[layer].register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def _latents(model, question: str, where: dict, attentions: bool = False):
    """Prefix, BOT and the six fed latents; returns ``(past_key_values, h_0..h_6 [7, D], attn)`` where
    ``attn`` (with ``attentions``, every call made with ``output_attentions=True``) holds each of the 7
    latent steps' per-layer attentions, else is empty."""
    tok = model.tokenizer
    where["ids"] = tok(normalize_question(question), add_special_tokens=True)["input_ids"]
    ids = _ids(model, where["ids"])
    call = lambda **kw: model.codi(use_cache=True, output_hidden_states=True, output_attentions=attentions, **kw)
    where["pos"] = "Q"
    out = call(input_ids=ids)
    where["pos"] = "P0"
    out = call(inputs_embeds=model.embed(_ids(model, [model.special.bot])), **cache_arg(model.codi, output_cache(out)))
    hs, attn = [out.hidden_states[-1][:, -1]], [out.attentions] if attentions else []
    for k in range(1, NUM_LATENT + 1):
        where["pos"] = f"P{k}"
        e = model.prj(hs[-1]).unsqueeze(1)
        out = call(inputs_embeds=e, **cache_arg(model.codi, output_cache(out)))
        hs.append(out.hidden_states[-1][:, -1])
        if attentions:
            attn.append(out.attentions)
    return output_cache(out), torch.cat(hs), attn


@torch.no_grad()
def naive_generate(model, question: str, edit: NaiveEdit | None = None,
                   max_new_tokens: int = 8) -> tuple[list[int], torch.Tensor]:
    """Greedy answer ids and the latents ``h_0..h_6`` for one question under at most one edit."""
    where: dict = {}
    with _edit_hook(model, edit, where):
        past, hs, _ = _latents(model, question, where)
        cur = model.embed(_ids(model, [model.special.eot]))
        where["pos"] = "EOT"
        ids: list[int] = []
        cut = model.vocab_size - 1
        for j in range(max_new_tokens):
            out = model.codi(inputs_embeds=cur, use_cache=True, output_hidden_states=True, **cache_arg(model.codi, past))
            past = output_cache(out)
            nxt = int(out.logits[0, -1, :cut].argmax())
            ids.append(nxt)
            if nxt in model.special.eos:
                break
            cur = model.embed(_ids(model, [nxt]))
            where["pos"] = f"A{j}"
    return ids, hs.float().cpu()


@torch.no_grad()
def naive_score(model, question: str, targets: Sequence[int], readout: int,
                edit: NaiveEdit | None = None) -> torch.Tensor:
    """Teacher-forced ``[V]`` logits at answer index ``readout`` (EOT, then ``targets[:readout]`` fed)."""
    where: dict = {}
    with _edit_hook(model, edit, where):
        past, _, _ = _latents(model, question, where)
        where["pos"] = "EOT"
        embeds = model.embed(_ids(model, [model.special.eot, *targets[:readout]]))
        out = model.codi(inputs_embeds=embeds, use_cache=True, output_hidden_states=True, **cache_arg(model.codi, past))
    return out.logits[0, readout].float().cpu()


@torch.no_grad()
def naive_latent_attention(model, question: str) -> torch.Tensor:
    """``[L, H, 7, 7]`` attention among P0..P6 (query row, key column) for one question, the way the
    seed scripts read it: batch 1, eager attention, ``output_attentions=True`` on every call, and the
    lm_head run on every prefix token and latent step."""
    previous = getattr(model.lm.config, "_attn_implementation", "sdpa")
    model.set_attention("eager")
    try:
        _, _, steps = _latents(model, question, {}, attentions=True)
    finally:
        model.set_attention(previous)
    rows = []
    for k, layers in enumerate(steps):  # query P_k; its keys P0..P_k are the last k + 1 columns
        att = torch.stack([a[0, :, -1, -(k + 1):].float().cpu() for a in layers])  # [L, H, k + 1]
        row = torch.zeros(att.shape[0], att.shape[1], NUM_LATENT + 1)
        row[..., : k + 1] = att
        rows.append(row)
    return torch.stack(rows, dim=2)
