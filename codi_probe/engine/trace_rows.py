"""A clean trace (one row per question, no interventions) as per-problem tensors, and back.

The unit a :class:`~codi_probe.engine.cache.TraceCache` stores, so that a clean run can be computed in
chunks of questions (by several processes) and assembled into the trace one batched run would give.
Column conventions follow :class:`~codi_probe.engine.trace.Trace`: key columns are absolute, with each
question's left pads first, so a row is stored without its pads and re-padded to the assembled
prefix length (a chunk's prefix length is its own longest question).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch

from .trace import Trace


def problem_tensors(trace: Trace) -> list[dict[str, torch.Tensor]]:
    """One dict per row. Refuses traces with interventions or teacher-forced scores (``meta``)."""
    if any(trace.interventions) or trace.row_question != list(range(len(trace.questions))):
        raise ValueError("only a clean trace (one row per question, in order, no interventions) is stored per problem")
    if trace.meta:
        raise ValueError(f"a trace with {sorted(trace.meta)} in meta (teacher-forced) is not stored per problem")
    out = []
    for r in range(trace.n_rows):
        pad = trace.n_pad[r]
        t: dict[str, torch.Tensor] = {
            "question_ids": torch.tensor(trace.question_ids[r], dtype=torch.long),
            "answer_ids": torch.tensor(trace.answer_ids[r], dtype=torch.long),
            "inputs": trace.inputs[r], "latent_pre": trace.latent_pre[r], "latent_post": trace.latent_post[r]}
        for (site, layer), values in trace.sites.items():
            t[f"site.{site}.{layer}"] = values[r]
        if trace.attn is not None:
            t["attn"] = trace.attn[r, :, :, :, pad:]  # [L, H, queries, question tokens + suffix]
        if trace.question_resid is not None:
            t["question_resid"] = trace.question_resid[r, :, pad:]
        if trace.answer_logits:
            t["answer_logits"] = trace.answer_logits[r]
        out.append(t)
    return out


def from_problem_tensors(engine, questions: Sequence[str], rows: Sequence[Mapping[str, torch.Tensor]]) -> Trace:
    """The trace of ``questions`` from their :func:`problem_tensors` (``engine``: padding, latents, decoding)."""
    from .loop import _parse

    q_ids = [r["question_ids"].tolist() for r in rows]
    t_len = max(map(len, q_ids))
    n_pad = [t_len - len(x) for x in q_ids]
    trace = Trace(questions=list(questions), row_question=list(range(len(rows))), interventions=[()] * len(rows),
                  prefix_len=t_len, n_pad=n_pad, question_ids=q_ids, padding=engine.padding,
                  num_latent=engine.num_latent)
    for name in ("inputs", "latent_pre", "latent_post"):
        setattr(trace, name, torch.stack([r[name] for r in rows]))
    for key in (k for k in rows[0] if k.startswith("site.")):
        _, site, layer = key.split(".")
        trace.sites[(site, int(layer))] = torch.stack([r[key] for r in rows])
    if "attn" in rows[0]:
        suffix = max(r["attn"].shape[-1] - len(x) for r, x in zip(rows, q_ids))
        n_l, n_h, n_q = rows[0]["attn"].shape[0], rows[0]["attn"].shape[1], max(r["attn"].shape[2] for r in rows)
        trace.attn = torch.zeros(len(rows), n_l, n_h, n_q, t_len + suffix)
        for i, r in enumerate(rows):
            a = r["attn"]
            trace.attn[i, :, :, : a.shape[2], n_pad[i]: n_pad[i] + a.shape[-1]] = a
    if "question_resid" in rows[0]:
        first = rows[0]["question_resid"]
        trace.question_resid = torch.zeros(len(rows), first.shape[0], t_len, first.shape[-1])
        for i, r in enumerate(rows):
            trace.question_resid[i, :, n_pad[i]:] = r["question_resid"]
    trace.answer_ids = [r["answer_ids"].tolist() for r in rows]
    trace.answer_logits = [r["answer_logits"] for r in rows] if "answer_logits" in rows[0] else []
    trace.answer_text = [engine.decode(x) for x in trace.answer_ids]
    trace.answer = [_parse(x) for x in trace.answer_text]
    return trace


__all__ = ["from_problem_tensors", "problem_tensors"]
