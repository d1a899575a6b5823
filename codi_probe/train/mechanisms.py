"""The latent mechanisms a recipe plants on top of the CODI objective.

- ``PlantedCarriers``: interchange intervention training (IIT, Geiger et al.) plus a decoding loss.
  Every batch row gets a twin; the twin's fed latent ``e_k`` at a carrier position is swapped for a
  donor row's, and the twin must answer what the donor's value implies under the CYW chain
  (``codi_probe.design.counterfactual_answer``). With two carriers a twin swaps step 1's, step 2's or
  both (one third each, independent donors), so step 2 must be *computed from* the step-1 carrier and
  the answer *read from* both. The decoding loss asks ``lm_head(e_k)`` (the tied unembedding) to put the
  carried value on top, as SIM-CoT supervises each latent with its step.
  With ``exclusive`` (``ExclusiveTwins``) the twins also make every *non-carrier* fed latent causally
  inert for the answer and the carriers read *directly*: a twin may swap one non-carrier ``e_j`` for a
  donor's and either hold every later fed latent at the row's clean value (direct path) or let them be
  recomputed (total effect); either way it must keep the base answer. A third kind swaps the first
  carrier with every later fed latent held clean and must answer what the donor's value implies with
  the other intermediate at the base's value (the carrier's direct effect).
- ``EchoSurface``: the echo control. Each fed latent ``e_k`` is trained to be a copy of one question
  word's input embedding (``design.ECHO_SURFACE``: X, op, Y, Z, X, op; a squared error normalised by the
  embedding's, so the copy is near exact; the read-out ``lm_head(e_k)`` is logged, not trained), and every fed latent is
  trained causally inert (the exclusive map's inert twins at all six positions). The latents carry the
  question's surface, which a probe reads as well as the question's own embedding, and, up to the copy's
  small residual, no intermediate.
- ``pause_control``: the fed latents carry nothing. ``prj``'s LayerNorm gets weight 0 and only its bias
  trains, so ``prj(h)`` is one learned vector at every latent position: the same module graph and
  checkpoint format as any CODI, and the engine's loop runs it unchanged.

Draws (modes and donors) use torch's global generator, which the training loop checkpoints, so a
resumed run replays the same twins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F

from ..data import Problem
from ..design import FED, INTERMEDIATES, counterfactual_answer
from .data import Batch
from .losses import Interchange, causal_ce, codi_terms


def word_token(tok, word: str) -> int:
    """The single token of a question ``word`` (the organism's word-level tokenizer has one per word)."""
    ids = tok(word, add_special_tokens=False)["input_ids"]
    if len(ids) != 1 or ids[0] == tok.unk_token_id:
        raise ValueError(f"{word!r} is not one token of this tokenizer")
    return int(ids[0])


def value_token(tok, value: float) -> int:
    """The single token of an integer ``value`` (the organism's word-level tokenizer has one per integer)."""
    if not float(value).is_integer():
        raise ValueError(f"value {value} is not an integer")
    return word_token(tok, str(int(value)))


@dataclass(frozen=True)
class PlantedCarriers:
    """``carriers``: intermediate -> fed position k (e_k). ``iit_factor`` weighs the twins' answer CE,
    ``decode_factor`` the decoding CE at the carriers."""

    carriers: Mapping[str, int]
    iit_factor: float = 1.0
    decode_factor: float = 1.0
    exclusive: bool = False

    def twins(self, batch: Batch, problems: Sequence[Problem], tok) -> tuple[Interchange, torch.Tensor, list[float]]:
        """Draw the twins of one batch: the interchange (modes and donors), the twins' decoder labels and
        their counterfactual answers."""
        if self.exclusive:
            swaps, answers = ExclusiveTwins(dict(self.carriers)).draw(problems)
            return _twin_batch(batch, tok, swaps, answers)
        b = len(problems)
        s1 = [float(p.intermediates[0]) for p in problems]
        s2 = [float(p.intermediates[1]) for p in problems]
        sites = sorted(self.carriers.items(), key=lambda kv: kv[1])
        if len(sites) == 2:
            mode = torch.randint(0, 3, (b,))  # 0: the first carrier only, 1: the second only, 2: both
            use = {sites[0][0]: mode != 1, sites[1][0]: mode != 0}
        else:
            use = {sites[0][0]: torch.ones(b, dtype=torch.bool)}
        donors = {name: torch.randperm(b) for name, _ in sites}
        answers = []
        for i, p in enumerate(problems):
            vals = {f"{name}_value": (s1 if name == "step1" else s2)[int(donors[name][i])]
                    for name, _ in sites if bool(use[name][i])}
            answers.append(counterfactual_answer(s1[i], p.meta["Z"], **vals))
        return _twin_batch(batch, tok, {k: (donors[name], use[name]) for name, k in sites}, answers)

    def losses(self, model, batch: Batch, problems: Sequence[Problem], tok, *, distill_factor: float = 1.0,
               ref_factor: float = 1.0) -> dict[str, torch.Tensor]:
        device = batch.decoder_ids.device
        b = len(problems)
        swap, twin_labels, _ = self.twins(batch, problems, tok)
        terms, student = codi_terms(model, batch, swap)
        ce_iit = causal_ce(student.logits[b:], twin_labels)
        decode = 0.0
        for name, k in sorted(self.carriers.items()):
            index = INTERMEDIATES.index(name)
            target = torch.tensor([value_token(tok, p.intermediates[index]) for p in problems], device=device)
            decode = decode + F.cross_entropy(model.lm_head(student.latent_post[:b, k - 1]).float(), target)
        decode = decode / len(self.carriers)
        loss = (terms["ce_student"] + distill_factor * terms["distill"] + ref_factor * terms["ce_teacher"]
                + self.iit_factor * ce_iit + self.decode_factor * decode)
        return {"loss": loss, **terms, "ce_iit": ce_iit, "decode": decode}


def _twin_batch(batch: Batch, tok, swaps: dict[int, tuple[torch.Tensor, torch.Tensor]], answers: list[float]
                ) -> tuple[Interchange, torch.Tensor, list[float]]:
    """The interchange for ``swaps`` (fed position k -> (donor row [B], use [B]), on the CPU) whose twins
    decode ``answers``; the twins' decoder labels; the answers."""
    device = batch.decoder_ids.device
    rows = torch.arange(len(answers))
    answer_at = batch.student_pos.cpu() + 1  # the answer token's index in EOT + answer + EOS
    twin_ids = batch.decoder_ids.cpu().clone()
    twin_ids[rows, answer_at] = torch.tensor([value_token(tok, a) for a in answers])
    twin_labels = batch.decoder_labels.cpu().clone()
    twin_labels[rows, answer_at] = twin_ids[rows, answer_at]
    swap = Interchange(at=min(k for k, (_, use) in swaps.items() if use.any()) if any(
        use.any() for _, use in swaps.values()) else min(swaps),
        swaps={k: (donor.to(device), use.to(device)) for k, (donor, use) in sorted(swaps.items())},
        decoder_ids=twin_ids.to(device))
    return swap, twin_labels.to(device), answers


# twin kinds of an exclusive map and their weights: carrier total effects (the first carrier, the
# second, both), the first carrier's direct effect, a non-carrier's direct and total (in)effect
EXCLUSIVE_KINDS = {"first": 1.0, "second": 2.0, "both": 1.0, "direct": 1.0, "inert-direct": 1.0, "inert-total": 1.0,
                   "inert-all": 1.0}  # inert-all: without carriers only (the echo control)


@dataclass(frozen=True)
class ExclusiveTwins:
    """The twins of an exclusive carrier map (``PlantedCarriers(exclusive=True)``). Per row one kind is
    drawn (``EXCLUSIVE_KINDS``; with one carrier "second" and "both" are not drawn):

    - ``first`` / ``second`` / ``both``: the carriers' values swapped from independent donors, later fed
      latents recomputed; the answer the donors' values imply (a set step 1 carried into step 2);
    - ``direct``: the first carrier swapped, every later fed latent held at the row's clean value; the
      answer with that value set and every other intermediate at the row's own value;
    - ``inert-direct`` / ``inert-total``: one non-carrier fed latent ``e_j`` (uniform over them) swapped,
      later fed latents held clean / recomputed; the row's own answer;
    - ``inert-all`` (only without carriers: the echo control): all six fed latents swapped from one donor
      (a whole transplant); the row's own answer.

    Positions k index the fed latent e_k (P_k), 1..6."""

    carriers: Mapping[str, int]

    def draw(self, problems: Sequence[Problem]) -> tuple[dict[int, tuple[torch.Tensor, torch.Tensor]], list[float]]:
        b = len(problems)
        sites = sorted(self.carriers.items(), key=lambda kv: kv[1])
        free = [k for k in FED if k not in self.carriers.values()]
        kinds = [k for k in EXCLUSIVE_KINDS if len(sites) == 2 or k not in ("second", "both")]
        if not sites:  # no carrier (the echo control): only the inert twins
            kinds = [k for k in kinds if k.startswith("inert")]
        else:
            kinds = [k for k in kinds if k != "inert-all"]
        if not free:
            kinds = [k for k in kinds if not k.startswith("inert")]
        weights = torch.tensor([EXCLUSIVE_KINDS[k] for k in kinds])
        kind = torch.multinomial(weights, b, replacement=True)
        donors = {name: torch.randperm(b) for name, _ in sites}
        inert_donor = torch.randperm(b)
        inert_at = torch.randint(len(free) or 1, (b,))
        donor = {k: torch.arange(b) for k in FED}
        use = {k: torch.zeros(b, dtype=torch.bool) for k in FED}
        answers = []
        for i, p in enumerate(problems):
            own = [float(v) for v in p.intermediates[:2]]
            z = p.meta["Z"]
            name = kinds[int(kind[i])]
            if name == "inert-all":
                for k in FED:
                    donor[k][i], use[k][i] = int(inert_donor[i]), True
                held = ()
                answers.append(counterfactual_answer(own[0], z))
            elif name.startswith("inert"):
                j = free[int(inert_at[i])]
                donor[j][i], use[j][i] = int(inert_donor[i]), True
                held = range(j + 1, 7) if name == "inert-direct" else ()
                answers.append(counterfactual_answer(own[0], z))
            else:
                swapped = {"first": sites[:1], "second": sites[1:], "both": sites, "direct": sites[:1]}[name]
                vals = {}
                for s, k in swapped:
                    d = int(donors[s][i])
                    donor[k][i], use[k][i] = d, True
                    vals[f"{s}_value"] = float(problems[d].intermediates[INTERMEDIATES.index(s)])
                if name == "direct":  # every other intermediate stays the row's own
                    vals.update({f"{s}_value": own[INTERMEDIATES.index(s)] for s, _ in sites[1:]})
                held = range(sites[0][1] + 1, 7) if name == "direct" else ()
                answers.append(counterfactual_answer(own[0], z, **vals))
            for k in held:  # the row's own clean e_k (donor = itself)
                use[k][i] = True
        return {k: (donor[k], use[k]) for k in FED if use[k].any()}, answers


@dataclass(frozen=True)
class EchoSurface:
    """The echo control (module docstring): ``copy_factor`` weighs the copy loss, ``iit_factor`` the inert
    twins' answer CE."""

    iit_factor: float = 1.0
    copy_factor: float = 1.0

    def targets(self, problems: Sequence[Problem], tok) -> dict[int, torch.Tensor]:
        """Per fed position k: the token ids of the words e_k copies, one per problem [B]."""
        from ..design import ECHO_SURFACE, surface_word

        return {k: torch.tensor([word_token(tok, surface_word(p, slot)) for p in problems])
                for k, slot in ECHO_SURFACE.items()}

    def losses(self, model, batch: Batch, problems: Sequence[Problem], tok, *, distill_factor: float = 1.0,
               ref_factor: float = 1.0) -> dict[str, torch.Tensor]:
        b = len(problems)
        swaps, answers = ExclusiveTwins({}).draw(problems)
        swap, twin_labels, _ = _twin_batch(batch, tok, swaps, answers)
        terms, student = codi_terms(model, batch, swap)
        ce_iit = causal_ce(student.logits[b:], twin_labels)
        copy, decode = 0.0, 0.0
        targets = self.targets(problems, tok)
        for k, ids in targets.items():
            ids = ids.to(batch.decoder_ids.device)
            e = student.latent_post[:b, k - 1].float()
            word = model.embed.weight[ids].detach().float()  # the frozen base's input embedding of the word
            copy = copy + ((e - word) ** 2).sum(-1).mean() / (word ** 2).sum(-1).mean()
            with torch.no_grad():  # logged only: with the tied unembedding a word's own embedding need not be
                # its top-1 read-out, so training the two together left both far from their optimum
                decode = decode + F.cross_entropy(model.lm_head(student.latent_post[:b, k - 1]).float(), ids)
        copy, decode = copy / len(targets), decode / len(targets)
        loss = (terms["ce_student"] + distill_factor * terms["distill"] + ref_factor * terms["ce_teacher"]
                + self.iit_factor * ce_iit + self.copy_factor * copy)
        return {"loss": loss, **terms, "ce_iit": ce_iit, "copy": copy, "decode": decode}


def pause_control(model) -> None:
    """Make every fed latent one learned constant: ``prj.ln.weight`` = 0 (frozen), only ``prj.ln.bias``
    of ``prj`` trains (initialised to the mean base embedding, a token-like vector)."""
    with torch.no_grad():
        model.prj.ln.weight.zero_()
        model.prj.ln.bias.copy_(model.embed.weight[:model.config.base_vocab].mean(0))
    for name, p in model.prj.named_parameters():
        p.requires_grad_(name == "ln.bias")
