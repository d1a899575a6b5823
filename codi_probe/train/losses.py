"""The CODI training objective (codi-spec 4.3) and the student loop it differentiates through.

``total = ce_student + distill_factor * distill + ref_factor * ce_teacher``, where ``distill`` is the
mean over the L+1 hidden-state entries (entry 0 = embeddings, entry L = post-final-norm) of
``SmoothL1(student[s_pos], teacher[t_pos].detach()) / teacher[t_pos].std()``.

The student loop feeds ``e_k = prj(h_{k-1})`` for k = 1..6 exactly as ``CodiEngine`` does in its
``exact`` padding mode: the left pads are masked and every row gets its own position ids (the official
trainer instead lets latents attend to the pads, ``fix_attn_mask=False``; with exact padding a batched
row equals the same question run alone, which is the engine's default).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .data import Batch


@dataclass
class StudentOutput:
    latent_pre: torch.Tensor  # [B, 7, D]: h_0 (BOT) .. h_6, last layer, post final norm
    latent_post: torch.Tensor  # [B, 6, D]: the fed e_1..e_6
    logits: torch.Tensor  # [B, Ld, V] decoder logits
    hidden_states: tuple[torch.Tensor, ...]  # L+1 entries over the decoder tokens


@dataclass
class Interchange:
    """Twin rows for interchange intervention training (IIT).

    After the fed steps before ``at`` (shared), every row ``i`` of the batch gets a twin (row ``B + i``).
    At fed step ``k`` in ``swaps`` the twin's latent is replaced where ``use[i]`` by the *clean* row
    ``donor[i]``'s ``e_k`` of the same step; the twins then decode ``decoder_ids`` (the counterfactual
    answers). Positions: ``k`` indexes the fed latent ``e_k`` (P_k), 1..6."""

    at: int
    swaps: dict[int, tuple[torch.Tensor, torch.Tensor]]  # k -> (donor [B] long, use [B] bool)
    decoder_ids: torch.Tensor  # [B, Ld] the twins' EOT + counterfactual answer + EOS


def student_forward(model, encoder_ids, encoder_mask, decoder_ids, num_latent: int | None = None,
                    interchange: Interchange | None = None) -> StudentOutput:
    """Encode ``Q + BOT`` (left-padded, masked), feed ``num_latent`` projected latents, then the decoder
    sequence ``EOT + answer`` on the cache. Position ids continue per row from its real length.
    With ``interchange`` the output holds 2B rows: the B clean rows, then their twins."""
    from transformers.cache_utils import DynamicCache

    from ..compat import cache_arg

    num_latent = model.config.num_latent if num_latent is None else num_latent
    device = encoder_ids.device
    b = encoder_ids.shape[0]
    mask = encoder_mask.long()
    pos = (mask.cumsum(1) - 1).clamp(min=0)
    n_real = mask.sum(1)  # includes BOT; BOT sits at position n_real - 1
    cache = DynamicCache()
    kv = cache_arg(model.backbone, cache)
    out = model.backbone(inputs_embeds=model.embed(encoder_ids), attention_mask=mask, position_ids=pos,
                         use_cache=True, **kv)
    h = out.last_hidden_state[:, -1]
    pre, post = [h], []
    for k in range(1, num_latent + 1):
        if interchange is not None and k == interchange.at:  # the twins branch off here
            twice = torch.cat([torch.arange(b, device=device)] * 2)
            cache.batch_select_indices(twice)
            h, mask, n_real = h[twice], mask[twice], n_real[twice]
            pre = [p[twice] for p in pre]
            post = [p[twice] for p in post]
        e = model.prj(h)
        if interchange is not None and k in interchange.swaps:
            donor, use = interchange.swaps[k]
            twin = torch.where(use.unsqueeze(-1), e[:b][donor], e[b:])
            e = torch.cat([e[:b], twin])
        post.append(e)
        mask = torch.cat([mask, torch.ones(mask.shape[0], 1, dtype=torch.long, device=device)], 1)
        out = model.backbone(inputs_embeds=e.unsqueeze(1), attention_mask=mask,
                             position_ids=(n_real - 1 + k).unsqueeze(1), use_cache=True, **kv)
        h = out.last_hidden_state[:, -1]
        pre.append(h)
    if interchange is not None:
        decoder_ids = torch.cat([decoder_ids, interchange.decoder_ids])
    rows, ld = decoder_ids.shape
    mask = torch.cat([mask, torch.ones(rows, ld, dtype=torch.long, device=device)], 1)
    dpos = (n_real + num_latent).unsqueeze(1) + torch.arange(ld, device=device)
    out = model.lm(inputs_embeds=model.embed(decoder_ids), attention_mask=mask, position_ids=dpos,
                   use_cache=True, output_hidden_states=True, **cache_arg(model.lm, cache))
    return StudentOutput(torch.stack(pre, 1), torch.stack(post, 1) if post else h.new_zeros(rows, 0, h.shape[-1]),
                         out.logits, tuple(out.hidden_states))


def distill_loss(student_states, teacher_states, student_pos, teacher_pos) -> torch.Tensor:
    """Mean over entries of SmoothL1(student, teacher.detach()) / std(teacher) at the given positions.
    ``std`` is unbiased over all B x D selected teacher elements of that entry (official ``.std()``)."""
    if len(student_states) != len(teacher_states):
        raise ValueError(f"{len(student_states)} student vs {len(teacher_states)} teacher hidden-state entries")
    rows = torch.arange(student_pos.shape[0], device=student_pos.device)
    total = 0.0
    for s, t in zip(student_states, teacher_states):
        s_sel = s[rows, student_pos]
        t_sel = t[rows, teacher_pos].detach()
        total = total + F.smooth_l1_loss(s_sel, t_sel) / t_sel.std()
    return total / len(student_states)


def causal_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``CE(logits[:, :-1], labels[:, 1:])`` with ignore_index -100 (the official shift)."""
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), labels[:, 1:].reshape(-1),
                           ignore_index=-100)


def _has_dropout(model: nn.Module) -> bool:
    return model.training and any(isinstance(m, nn.Dropout) and m.p > 0 for m in model.modules())


def codi_terms(model, batch: Batch, interchange: Interchange | None = None
               ) -> tuple[dict[str, torch.Tensor], StudentOutput]:
    """The three CODI loss terms on the batch's clean rows, and the student output (with the twins'
    rows after the clean ones when ``interchange`` is given)."""
    teacher = model.lm(input_ids=batch.teacher_ids, output_hidden_states=True)
    if _has_dropout(model):  # official: a separate no-grad pass gives the targets (dropout differs)
        with torch.no_grad():
            targets = model.lm(input_ids=batch.teacher_ids, output_hidden_states=True).hidden_states
    else:  # without dropout the two official passes are identical; reuse the states, detached
        targets = teacher.hidden_states
    ce_teacher = causal_ce(teacher.logits, batch.teacher_labels)
    student = student_forward(model, batch.encoder_ids, batch.encoder_mask, batch.decoder_ids,
                              interchange=interchange)
    b = batch.decoder_ids.shape[0]
    ce_student = causal_ce(student.logits[:b], batch.decoder_labels)
    distill = distill_loss([s[:b] for s in student.hidden_states], targets, batch.student_pos, batch.teacher_pos)
    return {"ce_student": ce_student, "distill": distill, "ce_teacher": ce_teacher}, student


def codi_losses(model, batch: Batch, *, distill_factor: float = 1.0, ref_factor: float = 1.0) -> dict[str, torch.Tensor]:
    """All CODI losses for one batch; ``loss`` is the total to backpropagate."""
    terms, _ = codi_terms(model, batch)
    loss = terms["ce_student"] + distill_factor * terms["distill"] + ref_factor * terms["ce_teacher"]
    return {"loss": loss, **terms}
