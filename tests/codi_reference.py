"""Hand-written CODI loops that share no engine code: the oracles the engine is checked against.

Both follow codi-spec section 3 with plain HF calls on ``model.codi`` (the peft model): the prefill of
question + BOT in one call, ``h = hidden_states[-1][:, -1]`` (last layer, post final norm), ``z = prj(h)``
fed six times, then the EOT embedding and greedy decoding over ``logits[:, :V-1]`` until EOS. Only the
name of the cache argument comes from :mod:`codi_probe.compat` (it differs between transformers
versions).
"""

from __future__ import annotations

import torch

from codi_probe.compat import cache_arg, output_cache


def reference_loop(model, question: str, max_new_tokens: int = 12):
    """Batch 1 (no padding): returns ``(h_0..h_6 [7, D], greedy answer ids)``."""
    tok = model.tokenizer
    ids = tok(question.strip().replace("  ", " "))["input_ids"] + [model.config.base_vocab + 1]
    ids = torch.tensor([ids])
    emb = model.codi.get_input_embeddings()
    with torch.no_grad():
        out = model.codi(input_ids=ids, use_cache=True, output_hidden_states=True)
        hs = [out.hidden_states[-1][:, -1]]
        for _ in range(6):
            z = model.prj(hs[-1]).unsqueeze(1)
            out = model.codi(inputs_embeds=z, use_cache=True, output_hidden_states=True,
                             **cache_arg(model.codi, output_cache(out)))
            hs.append(out.hidden_states[-1][:, -1])
        cur = emb(torch.tensor([[model.config.base_vocab + 2]]))
        tokens = []
        for _ in range(max_new_tokens):
            out = model.codi(inputs_embeds=cur, use_cache=True, **cache_arg(model.codi, output_cache(out)))
            nxt = int(out.logits[0, -1, : model.lm.config.vocab_size - 1].argmax())
            tokens.append(nxt)
            if nxt in model.special.eos:
                break
            cur = emb(torch.tensor([[nxt]]))
    return torch.stack(hs, 1)[0], tokens


def official_reference(model, questions: list[str], max_new_tokens: int = 8):
    """The released evaluation, batched (``OFF:test.py``): the tokenizer left-pads the batch with PAD,
    BOT is appended with mask 1, question + BOT run in one call with that mask and default position
    ids, and every later call (latents, EOT, answers) passes **no** mask and no positions, so later
    steps attend to the left pads (codi-spec 3.6). Returns ``(h [B, 7, D], answer ids per row)``."""
    tok = model.tokenizer
    texts = [q.strip().replace("  ", " ") for q in questions]
    enc = tok(texts, return_tensors="pt", padding="longest")
    assert tok.padding_side == "left"
    bot = torch.full((len(texts), 1), model.config.base_vocab + 1)
    ids = torch.cat([enc["input_ids"], bot], 1)
    mask = torch.cat([enc["attention_mask"], torch.ones_like(bot)], 1)
    emb = model.codi.get_input_embeddings()
    with torch.no_grad():
        out = model.codi(input_ids=ids, attention_mask=mask, use_cache=True, output_hidden_states=True)
        hs = [out.hidden_states[-1][:, -1]]
        for _ in range(6):
            z = model.prj(hs[-1]).unsqueeze(1)
            out = model.codi(inputs_embeds=z, use_cache=True, output_hidden_states=True,
                             **cache_arg(model.codi, output_cache(out)))
            hs.append(out.hidden_states[-1][:, -1])
        cur = emb(torch.full((len(texts), 1), model.config.base_vocab + 2))
        tokens: list[list[int]] = [[] for _ in texts]
        done = [False] * len(texts)
        for _ in range(max_new_tokens):
            out = model.codi(inputs_embeds=cur, use_cache=True, **cache_arg(model.codi, output_cache(out)))
            nxt = out.logits[:, -1, : model.lm.config.vocab_size - 1].argmax(-1)
            for b, t in enumerate(nxt.tolist()):
                if not done[b]:
                    tokens[b].append(t)
                    done[b] = t in model.special.eos
            if all(done):
                break
            cur = emb(nxt.unsqueeze(1))
    return torch.stack(hs, 1), tokens
