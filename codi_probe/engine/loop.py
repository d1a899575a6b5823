"""The CODI latent loop (codi-spec.md section 3), batched, traced and intervenable.

One run: the question prefix runs once per distinct question (a left-padded batch, at most
``PREFIX_TOKENS`` question tokens per call); every row (question × intervention variant) then branches
from its question's prefix and all rows run together. Latent steps before a row's first intervened
position are shared: one trunk row per question (its row whose first intervention comes last) runs
from P0, and every other row joins the batch at its first intervened step with the trunk's state and
records (rows without interventions join after the last latent step). Keys and values (``kv``): with
``"shared"`` (``"auto"`` when a question has several rows) the prefix and the trunk's latent columns are
stored once per question and a row stores only what it computes (:mod:`.shared_kv`); with ``"per_row"``
every row holds a copy of its question's prefix and of the trunk's columns before its join:

    prompt: the question, then the loop variant's tokens after it (codi_probe.variants; bcywinski: eos)
    P0: feed the BOT embedding                      → h_0 (last-layer, post-final-norm)
    P1..P6: feed e_k = prj(h_{k-1})                 → h_k        (exactly 6 fed latents)
    EOT: feed the EOT embedding, then greedy decoding over logits[:, :V-1] (only EOT excluded),
         stopping per row at EOS; or teacher-force given answer tokens in one pass.

Padding modes: ``exact`` (default) passes an attention mask and per-row position ids at every step,
so a batched row equals the same question run alone. ``official`` reproduces the released
evaluation: positions are cache positions (pads counted) and the mask is dropped after the BOT
token, so latents and answers attend to the left pads (codi-spec 3.6).

No lm_head is computed for latent steps; logits exist only at answer steps.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Sequence

import torch

from ..compat import cache_arg
from ..memory import release_free_heap
from .hooks import HookSession, question_key
from .interventions import Intervention
from .kvcache import RowBufferCache
from .positions import LATENT_POSITIONS, NUM_LATENT, TRACE_POSITIONS, is_dead_cell, position_index
from .shared_kv import IMPLEMENTATION as SHARED_IMPLEMENTATION
from .shared_kv import SharedPrefix, SuffixCache, active_prefix
from .shared_kv import register as register_shared_prefix
from .trace import Trace

PADDING_MODES = ("exact", "official")
# Where the question prefix's keys and values live: "shared" (once per question, read through
# shared_kv.shared_prefix_attention) or "per_row" (every row holds a copy, read by the model's own
# attention kernel: the earlier design, and the comparison for the tests and the memory benchmark).
# "auto" (the default): shared when some question has several rows, per_row when each has one (a run
# of clean rows has nothing to share, and the fused kernel is faster on small models).
KV_LAYOUTS = ("auto", "shared", "per_row")
GREEDY_CHUNK = 256  # rows per lm_head call when only the greedy token is kept
PREFIX_TOKENS = 1024  # question tokens per forward call of the prefix


@dataclass(frozen=True)
class Record:
    """What a run stores. ``sites``: module sites recorded at every layer for P0..P6, EOT.
    ``attention``: attention probabilities (switches the model to eager attention for the run; exact
    padding only, since in official padding eager attention would change the pad rows later steps read).
    ``question``: block outputs at the question tokens too. ``logits``: answer-step logits."""

    sites: tuple[str, ...] = ("resid_post",)
    attention: bool = False
    question: bool = False
    logits: bool = True


Variant = tuple[int, Sequence[Intervention]]
STEP_BAR_DELAY = 2.0  # seconds: a run's step bar (``run(progress=...)``) appears only on runs that take longer


def normalize_question(text: str) -> str:
    """The official preprocessing: strip, then replace double spaces by single ones."""
    return text.strip().replace("  ", " ")


class CodiEngine:
    """Runs the exact CODI loop on a :class:`~codi_probe.model.CodiModel`.

    ``answer_budget``: the most answer tokens any greedy run generates (a run's ``max_new_tokens`` above it
    is lowered to it; teacher-forced scoring is unaffected); ``None``: as each run asks. For models that
    never emit EOS, whose every answer runs to the full length (the random tiny models: ``codi_probe.tiny``)."""

    def __init__(self, model, *, padding: str = "exact", num_latent: int = NUM_LATENT, share_trunk: bool = True,
                 kv: str = "auto", skip_thinking: bool = False,
                 answer_budget: int | None = None):
        """``skip_thinking`` (with ``num_latent=0`` only): no BOT either, the prompt is followed by EOT
        directly (CYW's ``skip_thinking``: prompt + EOS + EOT), for clean rows without recorded attention;
        ``P0`` then holds zeros in the trace."""
        if padding not in PADDING_MODES:
            raise ValueError(f"unknown padding mode {padding!r}: use one of {', '.join(PADDING_MODES)}")
        if kv not in KV_LAYOUTS:
            raise ValueError(f"unknown kv layout {kv!r}: use one of {', '.join(KV_LAYOUTS)}")
        if not 0 <= num_latent <= NUM_LATENT:
            raise ValueError(f"num_latent must be in 0..{NUM_LATENT}, got {num_latent}")
        if answer_budget is not None and (isinstance(answer_budget, bool) or not isinstance(answer_budget, int)
                                          or answer_budget < 1):
            raise ValueError(f"answer_budget must be a positive integer or None, got {answer_budget!r}")
        if model.tokenizer is None:
            raise ValueError("the model has no tokenizer attached: load it with load_codi(..., tokenizer=DIR)")
        if skip_thinking and num_latent != 0:
            raise ValueError(f"skip_thinking feeds no BOT and no latent: it needs num_latent=0, got {num_latent}")
        self.model = model
        self.padding = padding
        self.num_latent = num_latent
        self.skip_thinking = skip_thinking
        self.share_trunk = share_trunk  # False: every row runs every latent step (the reference path)
        self.kv = kv
        self.answer_budget = answer_budget
        if kv != "per_row":
            register_shared_prefix()

    def with_latents(self, num_latent: int, *, skip_thinking: bool = False) -> "CodiEngine":
        """This engine (same model, padding, trunk sharing, KV layout and answer budget) feeding
        ``num_latent`` latents before EOT (0: BOT then EOT; 0 with ``skip_thinking``: no BOT either)."""
        return CodiEngine(self.model, padding=self.padding, num_latent=num_latent, share_trunk=self.share_trunk,
                          kv=self.kv, skip_thinking=skip_thinking, answer_budget=self.answer_budget)

    # ------------------------------------------------------------------ helpers
    def encode(self, questions: Sequence[str]) -> list[list[int]]:
        """The prompt ids of each question, as the model's loop variant feeds them before the BOT step:
        the question (normalised or as given) with the tokenizer's own special tokens, then the variant's
        ``after_question`` tokens (the bcywinski variant: ``eos``)."""
        tok = self.model.tokenizer
        loop = self.model.variant
        after = [self._role_id(role) for role in loop.after_question]
        return [tok(normalize_question(q) if loop.normalize_question else q, add_special_tokens=True)["input_ids"]
                + after for q in questions]

    def _role_id(self, role: str) -> int:
        if role == "eos":
            return self.model.special.eos[0]
        raise ValueError(f"loop variant {self.model.variant.name}: unknown prompt token role {role!r}")

    def _embed_ids(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.embed(ids.to(self.model.device))

    def _project(self, h: torch.Tensor) -> torch.Tensor:
        """``prj`` in its own dtype (fp32 in the official mix), returned in the base dtype."""
        prj = self.model.prj
        dtype = prj[1].weight.dtype
        return prj(h.to(dtype)).to(self.model.base_dtype)

    def _forward(self, embeds, *, mask, pos_ids, cache, attention: bool):
        backbone = self.model.backbone
        out = backbone(inputs_embeds=embeds, attention_mask=mask, position_ids=pos_ids, use_cache=True,
                       output_attentions=attention, **cache_arg(backbone, cache))
        return out.last_hidden_state, (out.attentions if attention else None)

    def logits(self, final: torch.Tensor) -> torch.Tensor:
        """lm_head on post-final-norm states."""
        return self.model.lm_head(final)

    def _greedy(self, final: torch.Tensor, vocab_cut: int) -> torch.Tensor:
        """``[B]`` greedy next tokens of ``final`` ``[B, D]`` over ``logits[:, :vocab_cut]``, with the lm_head
        on ``GREEDY_CHUNK`` rows at a time: the full ``[B, V]`` logits of a 1,000-row sweep would take
        200 MB (GPT-2's vocabulary, fp32) only to be reduced to one id per row."""
        return torch.cat([self.logits(final[i: i + GREEDY_CHUNK])[:, :vocab_cut].argmax(-1)
                          for i in range(0, len(final), GREEDY_CHUNK)])

    # --------------------------------------------------------------------- run
    @torch.no_grad()
    def run(self, questions: Sequence[str], variants: Sequence[Variant] | None = None, *,
            record: Record = Record(), max_new_tokens: int = 32,
            teacher_force: Sequence[Sequence[int]] | None = None,
            readout: Sequence[int] | None = None, progress: str | None = None) -> Trace:
        """Run every row of ``variants`` (``(question_index, interventions)``; default one clean row per
        question). With ``teacher_force`` (one token-id list per row, the answer continuation after
        EOT) the answer is scored in one pass instead of generated; ``readout`` (one index per row)
        then keeps only the logits at that index (``answer_logits[r]`` is ``[1, V]``), which is what a
        large sweep needs: full-vocabulary logits for every row and step do not fit in memory.
        ``progress``: a label; the run then counts its forward steps (the question prefix, P0..P_n, the
        answer tokens) on a :func:`codi_probe.progress.bar` with the time left, drawn where a front end shows
        bars (the pytest plugin on a watched terminal) once the run has taken ``STEP_BAR_DELAY`` seconds."""
        if not questions:
            raise ValueError("no questions given")
        variants = [(i, ()) for i in range(len(questions))] if variants is None else list(variants)
        if not variants:
            raise ValueError("no rows to run: variants is empty")
        if teacher_force is not None and len(teacher_force) != len(variants):
            raise ValueError(f"teacher_force has {len(teacher_force)} rows, expected {len(variants)}")
        if readout is not None and (teacher_force is None or len(readout) != len(variants)):
            raise ValueError("readout needs teacher_force and one index per row")
        if self.answer_budget is not None:
            max_new_tokens = min(max_new_tokens, self.answer_budget)
        if record.attention and self.padding == "official":
            raise ValueError(
                "Record(attention=True) with padding='official' is refused: reading attention needs eager "
                "attention, which treats the fully masked left-pad rows differently from sdpa, and official "
                "padding lets every later step attend to those pad rows, so recording would change the run; "
                "record attention with padding='exact'")
        if self.skip_thinking and (any(ivs for _, ivs in variants) or record.attention):
            raise ValueError("skip_thinking runs clean rows only: no interventions and no recorded attention "
                             "(their key columns assume a BOT step)")
        plan, latent_plan, knockouts = self._plan(variants, len(questions))
        model = self.model
        device = model.device
        n_rows = len(variants)
        row_q = torch.tensor([q for q, _ in variants])

        q_ids = self.encode(questions)
        t_len = max(len(x) for x in q_ids)
        if t_len == 0:
            raise ValueError("an empty question has no tokens")
        n_answer = max(map(len, teacher_force)) if teacher_force is not None else max_new_tokens
        self._check_length(q_ids, t_len, n_answer if readout is None else max(k + 1 for k in readout))
        pad = model.special.pad
        ids = torch.full((len(q_ids), t_len), pad, dtype=torch.long)
        qmask = torch.zeros((len(q_ids), t_len), dtype=torch.long)
        for i, x in enumerate(q_ids):
            if x:
                ids[i, t_len - len(x):] = torch.tensor(x)
                qmask[i, t_len - len(x):] = 1
        n_pad = (t_len - qmask.sum(1)).tolist()
        n_real = qmask.sum(1)
        if self.padding == "exact":
            qpos = (qmask.cumsum(1) - 1).clamp(min=0)
        else:
            qpos = torch.arange(t_len).expand(len(q_ids), -1)

        trace = Trace(questions=list(questions), row_question=row_q.tolist(),
                      interventions=[tuple(v) for _, v in variants], prefix_len=t_len,
                      n_pad=[n_pad[q] for q in row_q.tolist()], question_ids=q_ids, padding=self.padding,
                      num_latent=self.num_latent)
        attn_impl = getattr(model.lm.config, "_attn_implementation", "sdpa")
        q_keys = [question_key(x) for x in q_ids]  # per question, then indexed per row
        was_training = model.training
        model.eval()  # a model left in train mode would apply dropout inside the loop
        shares = self.kv == "shared" or (self.kv == "auto" and n_rows > len(set(row_q.tolist())))
        if record.attention and not shares:
            model.set_attention("eager")
        session = HookSession(model, record_sites=record.sites, n_rows=n_rows, plan=plan,
                              record_question=record.question,
                              row_keys=[q_keys[q] for q in row_q.tolist()])
        steps = None
        if progress:
            from ..progress import bar

            n_steps = 1 + self.num_latent + 1 + (1 if teacher_force is not None else max_new_tokens)
            steps = bar(n_steps, f"{progress} ({n_rows} rows)", "step", delay=STEP_BAR_DELAY)
        try:
            with session:
                session.ctx.phase = "prompt"
                prefix = self._prefix(ids, qmask, qpos, self.num_latent + 1 if shares else 0)
                if steps is not None:
                    steps.update(1)
                join, trunk = self._join_plan(variants, row_q)
                start = [r for r in range(n_rows) if join[r] == 0 or trunk[r] == r]
                shared, cache = self._row_cache(prefix, row_q[start], n_rows, self.num_latent + 1 + n_answer, shares)
                del prefix
                release_free_heap()  # the prefix calls' temporaries, before the rows' caches grow
                if record.question:
                    trace.question_resid = torch.stack(
                        [torch.cat(session.question_store[l])[row_q] for l in range(model.n_layers)], 1)
                with active_prefix(shared, cache) if shared is not None else nullcontext():
                    self._latent_and_answer(trace, session, cache, qmask[row_q], n_real[row_q], latent_plan,
                                            knockouts, record, max_new_tokens, teacher_force, readout,
                                            (torch.tensor(start), join, trunk), (shared, row_q.to(device)), steps)
        finally:
            if steps is not None:
                steps.close()
            if getattr(model.lm.config, "_attn_implementation", "sdpa") != attn_impl:
                model.set_attention(attn_impl)
            model.train(was_training)
        trace.sites = session.store
        return trace

    def _prefix(self, ids: torch.Tensor, qmask: torch.Tensor, qpos: torch.Tensor, room: int):
        """The question prefix's keys and values, ``[(keys, values)]`` per layer, each ``[Q, Hkv, T + room, d]``
        with the prefix in columns ``0..T-1`` (``room`` columns left for the shared trunk latents).

        Runs ``PREFIX_TOKENS // T`` questions per call, each written straight into the buffers: one call
        over hundreds of questions would hold ``Q·T·d_ff`` activations per MLP temporary, and the
        allocator keeps much of that resident afterwards (a question's prefix does not depend on the
        other questions of its call)."""
        from transformers.cache_utils import DynamicCache

        device = self.model.device
        n_q, t_len = ids.shape
        step = max(1, PREFIX_TOKENS // t_len)
        bufs: list[tuple[torch.Tensor, torch.Tensor]] = []
        for i in range(0, n_q, step):
            cache = DynamicCache()
            self._forward(self._embed_ids(ids[i: i + step]), mask=qmask[i: i + step].to(device),
                          pos_ids=qpos[i: i + step].to(device), cache=cache, attention=False)
            for layer, part in enumerate(cache.layers):
                if not i:
                    new = lambda x: x.new_zeros(n_q, x.shape[1], t_len + room, x.shape[3]) if room else \
                        x.new_empty(n_q, x.shape[1], t_len, x.shape[3])
                    bufs.append((new(part.keys), new(part.values)))
                bufs[layer][0][i: i + step, :, :t_len] = part.keys
                bufs[layer][1][i: i + step, :, :t_len] = part.values
            del cache
        return bufs

    def _row_cache(self, prefix, start_q: torch.Tensor, n_rows: int, suffix_len: int, shares: bool):
        """``(shared, cache)`` for the latent and answer steps, whose first rows are questions ``start_q``;
        ``suffix_len``: the tokens fed after the question (BOT, the latents, EOT, the answer tokens but the last).
        ``shares`` (``kv="shared"``, or ``"auto"`` with several rows for a question): the prefix cache's keys
        and values once per question with room for the trunks' latent columns (:class:`SharedPrefix`) and a
        cache of each row's own columns (:class:`SuffixCache`); the model attends through the shared-prefix implementation until the run ends. Otherwise ``shared`` is
        None and every row's cache starts with a copy of its question's prefix."""
        if not shares:
            rows, t_len = start_q.to(self.model.device), prefix[0][0].shape[2]
            return None, RowBufferCache([(k.index_select(0, rows), v.index_select(0, rows)) for k, v in prefix],
                                        capacity=n_rows, max_len=t_len + suffix_len)
        n_lat = self.num_latent + 1
        shared = SharedPrefix([k for k, _ in prefix], [v for _, v in prefix], prefix[0][0].shape[2] - n_lat, n_lat)
        cache = SuffixCache(shared, len(start_q), n_rows, suffix_len - n_lat)
        self.model.set_attention(SHARED_IMPLEMENTATION)
        return shared, cache

    def _check_length(self, q_ids, t_len: int, n_answer: int) -> None:
        """A one-line error when the tokens fed exceed the position limit: the question (``t_len``: the
        longest question's tokens), BOT, the latents, EOT and the answer tokens but the last (``n_answer``
        answer tokens are read, generated or teacher-forced; the last is never fed back)."""
        limit = self.model.max_positions
        if limit is None:
            return
        need = t_len + 1 + self.num_latent + 1 + max(0, n_answer - 1)
        if need > limit:
            longest = max(range(len(q_ids)), key=lambda i: len(q_ids[i]))
            raise ValueError(
                f"question {longest} has {len(q_ids[longest])} tokens; with BOT, {self.num_latent} latents, EOT "
                f"and {n_answer} answer tokens (the last never fed) the run needs {need} positions, but the model has {limit}: "
                f"shorten the question or lower max_new_tokens")

    # ------------------------------------------------------------------- plan
    def _plan(self, variants, n_questions):
        plan: dict = {}
        latent_plan: dict = {}
        knockouts: list = []
        for row, (q, ivs) in enumerate(variants):
            if not 0 <= q < n_questions:
                raise ValueError(f"row {row}: question index {q} out of range 0..{n_questions - 1}")
            for iv in ivs:
                if not isinstance(iv, Intervention):
                    raise TypeError(f"row {row}: expected an Intervention, got {type(iv).__name__}")
                iv.check_layer(self.model.n_layers)
                if iv.site == "attn_knockout":
                    for pos in (*iv.positions, *(k for k in iv.keys if k != "Q")):
                        self._check_position(pos, f"row {row}: attn_knockout")
                    knockouts.append((row, iv))
                    continue
                for pos in iv.positions:
                    self._check_position(pos, f"row {row}: {iv.site}")
                    if iv.layer is not None and is_dead_cell(iv.layer, pos, self.model.n_layers, self.num_latent):
                        raise ValueError(
                            f"row {row}: {iv.site} at the last block ({iv.layer}) at {pos} is a no-op by construction: "
                            f"it can only change h_{self.num_latent}, which feeds no later step "
                            f"(e_{self.num_latent + 1} is never fed); leave this cell out of the grid")
                self._check_op(row, iv)
                for pos in iv.positions:
                    target = latent_plan if iv.layer is None else plan
                    key = (iv.site, pos) if iv.layer is None else (iv.site, iv.layer, pos)
                    target.setdefault(key, []).append((row, iv.op))
        return plan, latent_plan, knockouts

    def site_width(self, site: str) -> int:
        """Dims of one activation vector at ``site``: ``d_model``, or at ``attn_z`` the heads' outputs
        concatenated (``n_heads x head_dim``)."""
        if site != "attn_z":
            return self.model.d_model
        cfg = self.model.lm.config
        return self.model.n_heads * int(getattr(cfg, "head_dim", None) or self.model.d_model // self.model.n_heads)

    def _check_op(self, row: int, iv: Intervention) -> None:
        """The op's arguments against the site (widths, source rows, recorded sites), before any forward
        pass: one ValueError naming the row, the op, the site and what was expected."""
        try:
            iv.op.check(site=iv.site, layer=iv.layer, positions=iv.positions, width=self.site_width(iv.site))
        except ValueError as e:
            where = iv.site if iv.layer is None else f"{iv.site} layer {iv.layer}"
            raise ValueError(f"row {row}: {type(iv.op).__name__} at {where} ({', '.join(iv.positions)}): {e}") from None

    def _check_position(self, pos: str, what: str) -> None:
        if pos != "EOT" and position_index(pos) > self.num_latent:
            raise ValueError(f"{what}: position {pos} does not exist with num_latent={self.num_latent}")

    def _join_plan(self, variants, row_q) -> tuple[list[int], list[int]]:
        """Per row, the first latent step its interventions touch (``NUM_LATENT + 1`` for none, or only
        EOT and later), and the trunk row of its question (the row whose first step comes last)."""
        if not self.share_trunk:
            return [0] * len(variants), list(range(len(variants)))
        late = len(TRACE_POSITIONS) - 1
        join = [min((iv.first_step() for iv in ivs), default=late + 1) for _, ivs in variants]
        best: dict[int, int] = {}
        for r, q in enumerate(row_q.tolist()):
            if q not in best or join[r] > join[best[q]]:
                best[q] = r
        return join, [best[q] for q in row_q.tolist()]

    def _apply_latent(self, latent_plan, site, pos, x, active, keys):
        """Apply latent-site ops to ``x`` [B, D], batch index b holding global row ``active[b]`` (``keys[row]``:
        the row's question key, which seeds per-problem random draws)."""
        items = latent_plan.get((site, pos))
        if not items:
            return x
        x = x.clone()
        where = {int(r): b for b, r in enumerate(active.tolist())}
        for row, op in items:
            if row in where:
                x[where[row]] = op(x[where[row]], site=site, layer=None, position=pos, key=keys[row])
        return x

    # ------------------------------------------------------------- the loop
    def _latent_and_answer(self, trace, session, cache, qmask, n_real, latent_plan, knockouts, record,
                           max_new_tokens, teacher_force, readout, sharing, prefix, steps=None):
        model = self.model
        device = model.device
        n_rows, t_len = qmask.shape
        all_rows = torch.arange(n_rows)
        d = model.d_model
        inputs = torch.zeros(n_rows, len(TRACE_POSITIONS), d)
        latent_pre = torch.zeros(n_rows, self.num_latent + 1, d)
        latent_post = torch.zeros(n_rows, self.num_latent, d)
        # answer queries: EOT, then A0.. (teacher-forced targets, or up to max_new_tokens generated)
        n_answer = max((len(t) for t in teacher_force), default=1) if teacher_force is not None else max_new_tokens
        n_q = len(TRACE_POSITIONS) - 1 + n_answer
        k_max = t_len + len(TRACE_POSITIONS) - 1 + n_answer
        attn_buf = (torch.zeros(n_rows, model.n_layers, model.n_heads, n_q, k_max)
                    if record.attention else None)
        mask_cols = [qmask]  # exact-mode mask grows by one column per fed token

        def step(embeds, names, phase, rows=all_rows):
            """One forward call of ``len(names)`` tokens for the active ``rows``."""
            s = embeds.shape[1]
            past = sum(m.shape[1] for m in mask_cols)
            session.ctx.phase, session.ctx.positions, session.ctx.rows = phase, tuple(names), rows
            step_index = [position_index(n) if n in TRACE_POSITIONS else None for n in names]
            mask = torch.cat(mask_cols + [torch.ones(n_rows, s, dtype=torch.long)], 1)[rows]
            ko = self._knockout_mask(knockouts, names, rows, trace, past + s)
            if self.padding == "exact":
                pos = (n_real[rows] + (past - t_len)).unsqueeze(1) + torch.arange(s)
                use_mask = mask if ko is None else mask * ko
            else:
                pos = (torch.full((len(rows),), past) .unsqueeze(1) + torch.arange(s))
                official_mask = mask if names == ["P0"] else torch.ones_like(mask)
                use_mask = (official_mask if ko is None else official_mask * ko) if (
                    names == ["P0"] or ko is not None) else None
            if shared is not None:  # the shared-prefix attention reads the mask; the model gets none
                at = torch.full((n_rows,), -1, dtype=torch.long)
                at[rows] = torch.arange(len(rows))
                trunk_b = torch.where(trunk_of_q >= 0, at[trunk_of_q.clamp(min=0)], -1)
                shared.set_call(row_q[rows.to(device)], own_from[rows].to(device), trunk_b.to(device),
                                None if use_mask is None else use_mask.to(device))
                use_mask = None
            final, attns = self._forward(embeds, mask=None if use_mask is None else use_mask.to(device),
                                         pos_ids=pos.to(device), cache=cache, attention=record.attention)
            mask_cols.append(torch.ones(n_rows, s, dtype=torch.long))
            if attn_buf is not None:
                for q_i, idx in enumerate(step_index):
                    col = idx if idx is not None else len(TRACE_POSITIONS) + int(names[q_i][1:])
                    if col >= n_q:
                        continue  # the last generated token is never fed back
                    for layer, a in enumerate(attns):
                        attn_buf[rows, layer, :, col, : a.shape[-1]] = a[:, :, q_i].float().cpu()
            if steps is not None:
                steps.update(1)
            return final

        active, join, trunk = sharing
        shared, row_q = prefix
        if shared is not None:
            # the first latent column each row computes itself (0: it runs from P0), and each question's trunk row
            starts = set(active.tolist())
            own_from = torch.tensor([0 if r in starts else min(join[r], self.num_latent + 1) for r in range(n_rows)])
            trunk_of_q = torch.full((shared.keys[0].shape[0],), -1, dtype=torch.long)
            for r in range(n_rows):
                trunk_of_q[int(row_q[r])] = trunk[r]

        def admit(k, active, h):
            """Rows whose first intervened step is ``k`` join: copy the trunk's cache rows, state and
            records of steps < k (``latent_post`` holds one step less)."""
            new = [r for r in range(n_rows) if (join[r] == k or (k > self.num_latent and join[r] > k))
                   and trunk[r] != r and (join[r] != 0)]
            if not new:
                return active, h
            at = {int(r): b for b, r in enumerate(active.tolist())}
            src = torch.tensor([at[trunk[r]] for r in new])
            cache.append_rows(src.to(device))
            dst, par = torch.tensor(new), torch.tensor([trunk[r] for r in new])
            for buf in [latent_pre, inputs, *session.store.values()]:
                buf[dst, :k] = buf[par, :k]
            if attn_buf is not None:  # query columns of P0..P_{k-1}
                attn_buf[dst, :, :, :k] = attn_buf[par, :, :, :k]
            latent_post[dst, : k - 1] = latent_post[par, : k - 1]
            return torch.cat([active, dst]), torch.cat([h, h[src.to(h.device)]])

        # P0: the BOT token (skip_thinking: none, EOT follows the prompt)
        h = None
        if not self.skip_thinking:
            bot = self._embed_ids(torch.full((n_rows, 1), model.special.bot))
            inputs[:, 0] = bot[:, 0].float().cpu()
            h = step(bot[active.to(device)], ["P0"], "latent", active)[:, -1]
            latent_pre[active, 0] = h.float().cpu()
        for k in range(1, self.num_latent + 1):
            pos = f"P{k}"
            active, h = admit(k, active, h)
            h_in = self._apply_latent(latent_plan, "latent_pre_prj", pos, h, active, session.row_keys)
            e = self._project(h_in)
            e = self._apply_latent(latent_plan, "latent_post_prj", pos, e, active, session.row_keys)
            latent_post[active, k - 1] = e.float().cpu()
            inputs[active, k] = e.float().cpu()
            h = step(e.unsqueeze(1), [pos], "latent", active)[:, -1]
            latent_pre[active, k] = h.float().cpu()
        active, h = admit(self.num_latent + 1, active, h)
        release_free_heap()  # the latent steps' temporaries, before the answer columns are written
        # the answer phase keeps the cache's batch order (``active``) instead of copying it back to row order
        trace.latent_pre, trace.latent_post = latent_pre, latent_post
        eot = self._embed_ids(torch.full((n_rows, 1), model.special.eot))
        inputs[:, len(TRACE_POSITIONS) - 1] = eot[:, 0].float().cpu()
        trace.inputs = inputs
        if teacher_force is not None:
            self._teacher_force(trace, step, eot, teacher_force, readout, active)
        else:
            self._generate(trace, step, eot, cache, record, max_new_tokens, active)
        if attn_buf is not None:
            used = t_len + len(TRACE_POSITIONS) - 1 + max(len(x) for x in trace.answer_ids)
            trace.attn = attn_buf[..., : used - t_len, :used].clone() if used < k_max else attn_buf

    def _knockout_mask(self, knockouts, names, rows, trace, width):
        """A ``[len(rows), width]`` 0/1 mask blocking knocked-out keys for queries in this call."""
        if not knockouts:
            return None
        here = set(names) if names[0] != "EOT" else {"EOT"}
        if names[0].startswith("A"):
            here = {"EOT"}  # answer steps belong to the EOT query group
        ko = None
        where = {int(r): b for b, r in enumerate(rows.tolist())}
        for row, iv in knockouts:
            b = where.get(row)
            if b is None or not here & set(iv.positions):
                continue
            if ko is None:
                ko = torch.ones(len(rows), width, dtype=torch.long)
            for key in iv.keys:
                if key == "Q":
                    ko[b, trace.n_pad[row]: trace.prefix_len] = 0
                elif trace.key_column(key) < width:  # a key that does not exist yet is unseen anyway
                    ko[b, trace.key_column(key)] = 0
        return ko

    def _teacher_force(self, trace, step, eot, targets, readout, order):
        """Score ``targets`` in one call; the batch runs in the cache's row ``order``."""
        model = self.model
        n_rows = eot.shape[0]
        if readout is not None:
            if any(not 0 <= k < len(t) for k, t in zip(readout, targets)):
                raise ValueError("every readout index must point into its row's targets")
            fed = [list(t)[: k + 1] for k, t in zip(readout, targets)]  # nothing after the readout is read
        else:
            fed = [list(t) for t in targets]
        longest = max(len(t) for t in fed)
        if longest == 0:
            raise ValueError("teacher_force targets are empty")
        feed = torch.full((n_rows, longest - 1), model.special.pad, dtype=torch.long)
        for r, t in enumerate(fed):
            if len(t) > 1:
                feed[r, : len(t) - 1] = torch.tensor(t[:-1])
        embeds = torch.cat([eot, self._embed_ids(feed)], 1) if longest > 1 else eot
        names = ["EOT"] + [f"A{j}" for j in range(longest - 1)]
        final = step(embeds[order.to(embeds.device)], names, "answer", order)
        final = final[torch.argsort(order).to(final.device)]  # back to row order
        trace.answer_ids = [list(t) for t in targets]
        if readout is None:
            logprobs, kept = [], []
            for r, t in enumerate(fed):  # row by row: [rows, steps, V] logits may not fit in memory
                logits = self.logits(final[r, : len(t)]).float().cpu()
                logprobs.append(torch.log_softmax(logits, -1)[torch.arange(len(t)), torch.tensor(t)])
                kept.append(logits)
        else:  # lm_head only at the readout index of each row
            at = torch.tensor(list(readout), device=final.device)
            logits = self.logits(final[torch.arange(n_rows, device=final.device), at]).float().cpu()
            kept = [logits[r: r + 1] for r in range(n_rows)]
            tok = torch.tensor([fed[r][-1] for r in range(n_rows)])
            logprobs = list(torch.log_softmax(logits, -1)[torch.arange(n_rows), tok].unsqueeze(1))
            trace.meta["readout"] = list(readout)
        trace.answer_logits = kept
        trace.meta["target_logprobs"] = logprobs
        trace.answer_text = [self.decode(t) for t in trace.answer_ids]
        trace.answer = [_parse(x) for x in trace.answer_text]

    def _generate(self, trace, step, eot, cache, record, max_new_tokens, order):
        """Greedy decoding; batch index ``b`` holds row ``active[b]``, starting from the cache's ``order``."""
        model = self.model
        n_rows = eot.shape[0]
        stop = set(model.special.eos)
        vocab_cut = model.vocab_size - 1  # official slice: exclude only EOT (the last id)
        active = order.clone()
        out_ids: list[list[int]] = [[] for _ in range(n_rows)]
        out_logits: list[list[torch.Tensor]] = [[] for _ in range(n_rows)]
        cur = eot[order.to(eot.device)]
        names = ["EOT"]
        for j in range(max_new_tokens):
            final = step(cur, names, "answer", active)
            if record.logits:
                logits = self.logits(final[:, -1])
                nxt = logits[:, :vocab_cut].argmax(-1)
                for b, r in enumerate(active.tolist()):
                    out_logits[r].append(logits[b].float().cpu())
                del logits
            else:
                nxt = self._greedy(final[:, -1], vocab_cut)
            del final
            keep = []
            for b, r in enumerate(active.tolist()):
                tok = int(nxt[b])
                out_ids[r].append(tok)
                if tok not in stop:
                    keep.append(b)
            if not keep:
                break
            if len(keep) < len(active):
                idx = torch.tensor(keep)
                cache.batch_select_indices(idx.to(model.device))
                active, nxt = active[idx], nxt[idx]
            cur = self._embed_ids(nxt.unsqueeze(1))
            names = [f"A{j}"]
        trace.answer_ids = out_ids
        trace.answer_logits = [torch.stack(x) if x else torch.zeros(0, model.vocab_size) for x in out_logits]
        trace.answer_text = [self.decode(x) for x in out_ids]
        trace.answer = [_parse(x) for x in trace.answer_text]

    def decode(self, ids: Sequence[int]) -> str:
        tok = self.model.tokenizer
        return tok.decode([i for i in ids if i < len(tok)], skip_special_tokens=True)

    # ---------------------------------------------------------- read-outs
    @torch.no_grad()
    def logit_lens(self, trace: Trace, layer: int, position: str) -> torch.Tensor:
        """``[R, V]`` logits of block ``layer``'s output at ``position``: final norm applied exactly once.

        For the last block this equals ``lm_head(h_k)`` with ``h_k = trace.latent_pre[:, k]``."""
        if not 0 <= layer < self.model.n_layers:
            raise ValueError(f"layer {layer} out of range: the model has blocks 0..{self.model.n_layers - 1}")
        x = trace.resid(layer)[:, position_index(position)].to(self.model.device, self.model.base_dtype)
        return self.logits(self.model.final_norm(x)).float().cpu()

    @torch.no_grad()
    def replay(self, trace: Trace, *, attention: bool = False):
        """Recompute the whole sequence (question, BOT, e_1..e_6, EOT) in one forward without a cache,
        feeding the trace's recorded inputs. Returns ``(final [R, n+2, D], attn or None)`` over P0..P_n, EOT
        (n = num_latent) where ``attn`` is ``[R, L, H, T+n+2, T+n+2]``. Exact padding only (the official mode's mask cannot be expressed)."""
        if trace.padding != "exact":
            raise ValueError("replay needs a trace made with padding='exact'")
        model = self.model
        rows = torch.tensor(trace.row_question)
        t_len = trace.prefix_len
        pad = model.special.pad
        ids = torch.full((len(rows), t_len), pad, dtype=torch.long)
        fed = [*range(trace.num_latent + 1), len(TRACE_POSITIONS) - 1]  # P0..P_n, EOT
        mask = torch.zeros((len(rows), t_len + len(fed)), dtype=torch.long)
        for r, q in enumerate(rows.tolist()):
            x = trace.question_ids[q]
            ids[r, t_len - len(x):] = torch.tensor(x)
            mask[r, t_len - len(x):] = 1
        mask[:, t_len:] = 1
        embeds = torch.cat([self._embed_ids(ids), trace.inputs[:, fed].to(model.device, model.base_dtype)], 1)
        pos = (mask.cumsum(1) - 1).clamp(min=0)
        impl = getattr(model.lm.config, "_attn_implementation", "sdpa")
        if attention:
            model.set_attention("eager")
        try:
            out = model.backbone(inputs_embeds=embeds, attention_mask=mask.to(model.device),
                                 position_ids=pos.to(model.device), use_cache=False,
                                 output_attentions=attention)
        finally:
            if attention:
                model.set_attention(impl)
        final = out.last_hidden_state[:, t_len:].float().cpu()
        attn = torch.stack([a.float().cpu() for a in out.attentions], 1) if attention else None
        return final, attn


def _parse(text: str):
    from ..data.answers import extract_answer

    return extract_answer(text)


__all__ = ["CodiEngine", "Record", "PADDING_MODES", "KV_LAYOUTS", "LATENT_POSITIONS", "normalize_question"]
