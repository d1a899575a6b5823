"""Forward hooks for one engine run: recording and in-forward interventions (TransformerLens style).

Hook points are named ``blocks.{L}.hook_resid_post``, ``blocks.{L}.attn.hook_out``, ``blocks.{L}.attn.hook_z``
(the input of the attention output projection: a forward *pre*-hook) and ``blocks.{L}.mlp.hook_out``; each
maps to a site of :mod:`interventions`. The address of every call is
(site, layer, phase, positions): the engine sets ``positions`` (the canonical names of the tokens in
the current forward call) before each call, nnsight style, so the same module called once per latent
step is never confused with another step (baukit's last-call-wins bug).

:class:`HookSession` owns only the handles it installs and removes them in ``__exit__`` even when the
run raises; hooks the user had already registered stay in place.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from dataclasses import dataclass

import torch

from .positions import TRACE_POSITIONS

PART_OF_SITE = {"resid_post": "block", "attn_out": "attn", "mlp_out": "mlp", "attn_z": "attn_proj"}
HOOK_NAME = {"resid_post": "blocks.{}.hook_resid_post", "attn_out": "blocks.{}.attn.hook_out",
             "mlp_out": "blocks.{}.mlp.hook_out", "attn_z": "blocks.{}.attn.hook_z"}
PRE_HOOK_SITES = ("attn_z",)  # sites read at a module's input, not its output
_TRACE_INDEX = {p: i for i, p in enumerate(TRACE_POSITIONS)}


def question_key(token_ids) -> int:
    """A row's key for per-problem random draws: the crc32 of its question's token ids. It depends on
    the question only, never on the row's place in a batch or chunk, so a draw is reproducible
    whatever the batch composition, and two problems draw independently."""
    return zlib.crc32(",".join(map(str, token_ids)).encode())


def hook_name(site: str, layer: int) -> str:
    return HOOK_NAME[site].format(layer)


@dataclass
class CallContext:
    """What the current forward call computes: ``phase`` (prompt/latent/answer) and, per sequence index,
    the canonical position name; ``rows[b]`` is the global trace row of batch index ``b``."""

    phase: str = "prompt"
    positions: tuple[str, ...] = ()
    rows: torch.Tensor | None = None


class HookSession:
    """Install recording / intervention hooks on a :class:`~codi_probe.model.CodiModel` for one run."""

    def __init__(self, model, *, record_sites, n_rows: int, plan, row_keys: list[int],
                 record_question: bool = False):
        self.model = model
        self.row_keys = row_keys  # per global row, its question's key (question_key) for random ops
        self.ctx = CallContext()
        self.plan = plan  # {(site, layer, position): [(row, op), ...]}
        self.record_sites = tuple(record_sites)
        self.record_question = record_question
        self.n_rows = n_rows
        self.store: dict[tuple[str, int], torch.Tensor] = {}
        self.question_store: dict[int, list[torch.Tensor]] = {}
        self.handles: list = []
        self.fired: dict[str, int] = defaultdict(int)  # hook name -> number of calls (for tests)

    def _targets(self):
        sites = set(self.record_sites) | {site for (site, _, _) in self.plan}
        if self.record_question:
            sites.add("resid_post")
        for site in sorted(sites):
            for layer in range(self.model.n_layers):
                yield site, layer

    def __enter__(self) -> "HookSession":
        try:
            for site, layer in self._targets():
                module = self.model.arch.block_part(self.model.lm, layer, PART_OF_SITE[site])
                hook = self._make_hook(site, layer)
                if site in PRE_HOOK_SITES:
                    self.handles.append(module.register_forward_pre_hook(
                        lambda mod, args, hook=hook: hook(mod, None, args)))
                else:
                    self.handles.append(module.register_forward_hook(hook))
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc) -> bool:
        self.remove()
        return False

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()

    def _make_hook(self, site: str, layer: int):
        """A forward hook ``(module, args, output)``; for a pre-hook site it is called with the module's
        input tuple as ``output`` and edits its first element the same way."""
        name = hook_name(site, layer)
        record = site in self.record_sites

        def hook(module, args, output):
            self.fired[name] += 1
            hidden = output[0] if isinstance(output, tuple) else output
            ctx = self.ctx
            if ctx.phase == "prompt":
                if self.record_question and site == "resid_post":  # one entry per prefix call
                    self.question_store.setdefault(layer, []).append(hidden.detach().float().cpu())
                return None
            edited = False
            for s, pos in enumerate(ctx.positions):
                idx = _TRACE_INDEX.get(pos)
                if idx is None:
                    continue
                items = self.plan.get((site, layer, pos))
                if items:
                    if not edited:
                        hidden = hidden.clone()
                        edited = True
                    where = {int(r): b for b, r in enumerate(ctx.rows.tolist())}
                    for row, op in items:
                        b = where.get(row)
                        if b is not None:
                            hidden[b, s] = op(hidden[b, s], site=site, layer=layer, position=pos,
                                              key=self.row_keys[row])
                if record:
                    buf = self.store.get((site, layer))
                    if buf is None:
                        buf = torch.zeros(self.n_rows, len(TRACE_POSITIONS), hidden.shape[-1])
                        self.store[(site, layer)] = buf
                    buf[ctx.rows, idx] = hidden[:, s].detach().float().cpu()
            if not edited:
                return None
            return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

        return hook
