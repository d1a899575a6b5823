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


def student_forward(model, encoder_ids, encoder_mask, decoder_ids, num_latent: int | None = None) -> StudentOutput:
    """Encode ``Q + BOT`` (left-padded, masked), feed ``num_latent`` projected latents, then the decoder
    sequence ``EOT + answer`` on the cache. Position ids continue per row from its real length."""
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
    ones = torch.ones(b, 1, dtype=torch.long, device=device)
    for k in range(1, num_latent + 1):
        e = model.prj(h)
        post.append(e)
        mask = torch.cat([mask, ones], 1)
        out = model.backbone(inputs_embeds=e.unsqueeze(1), attention_mask=mask,
                             position_ids=(n_real - 1 + k).unsqueeze(1), use_cache=True, **kv)
        h = out.last_hidden_state[:, -1]
        pre.append(h)
    ld = decoder_ids.shape[1]
    mask = torch.cat([mask, torch.ones(b, ld, dtype=torch.long, device=device)], 1)
    dpos = (n_real + num_latent).unsqueeze(1) + torch.arange(ld, device=device)
    out = model.lm(inputs_embeds=model.embed(decoder_ids), attention_mask=mask, position_ids=dpos,
                   use_cache=True, output_hidden_states=True, **cache_arg(model.lm, cache))
    return StudentOutput(torch.stack(pre, 1), torch.stack(post, 1) if post else h.new_zeros(b, 0, h.shape[-1]),
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


def codi_losses(model, batch: Batch, *, distill_factor: float = 1.0, ref_factor: float = 1.0) -> dict[str, torch.Tensor]:
    """All CODI losses for one batch; ``loss`` is the total to backpropagate."""
    teacher = model.lm(input_ids=batch.teacher_ids, output_hidden_states=True)
    if _has_dropout(model):  # official: a separate no-grad pass gives the targets (dropout differs)
        with torch.no_grad():
            targets = model.lm(input_ids=batch.teacher_ids, output_hidden_states=True).hidden_states
    else:  # without dropout the two official passes are identical; reuse the states, detached
        targets = teacher.hidden_states
    ce_teacher = causal_ce(teacher.logits, batch.teacher_labels)
    student = student_forward(model, batch.encoder_ids, batch.encoder_mask, batch.decoder_ids)
    ce_student = causal_ce(student.logits, batch.decoder_labels)
    distill = distill_loss(student.hidden_states, targets, batch.student_pos, batch.teacher_pos)
    loss = ce_student + distill_factor * distill + ref_factor * ce_teacher
    return {"loss": loss, "ce_student": ce_student, "distill": distill, "ce_teacher": ce_teacher}
