"""Planted truths: the verdicts a model's design decides, each with the reason it decides it.

``planted_truths(design)`` maps claim ids (full ids such as ``CARRY-PATCH[step1@P2]``) to a ``Truth``:
the verdicts the design allows and ``why``. A claim the design does not decide is absent; the derived
expectation profile records it (``default = "record"``, why: the design decides nothing). ``content``
marks claims about what the fed latents carry: on the pause control none of them may come out
supported (the validity table's false-supported floor).

The rules (sites as in ``codi_probe.design``: ``P_k`` is the fed latent ``e_k``):

- planted carrier ``s`` at ``P_k``: ``CARRY-DECODE[s@Pk]`` and ``CARRY-PATCH[s@Pk]`` are supported
  (the decoding loss puts the value in ``e_k``; the interchange loss makes a donor's ``e_k`` move the
  answer to the donor-implied one). Without ``exclusive`` nothing else is decided: a copy of a value
  may or may not sit elsewhere, and since training always recomputed the later fed latents, not even
  the carriers' direct effect (``CARRY-DIRECT``) is fixed (on codi-tiny-planted a step-2 patch at e_4
  moves 0.65 of answers with e_5, e_6 recomputed and 0.42 with them held).
- an ``exclusive`` planted map (``mechanisms.ExclusiveTwins``) also fixes every site's direct and
  total effect: ``CARRY-DIRECT`` and ``CARRY-PATCH`` are supported at the carriers (the "direct" and
  carrier twins) and refuted at every other (intermediate, P_k) site: a non-carrier ``e_j`` is trained
  inert (its twins keep the base answer, later latents held or recomputed), and the *other*
  intermediate's carrier is read as that intermediate, so a patch there gives the implied answer only
  by coincidence. ``CARRY-DECODE`` is decided at the carriers only (decodability elsewhere is not
  trained either way). ``NEW-08`` (every fed latent set to its mean over problems keeps accuracy) cannot
  be supported: the carriers' values are what the answer follows.
- the published claims an exclusive map decides (``_exclusive_published``). A group mean of real fed
  latents (the mean ``e_k`` of the problems sharing a value) is read as that value at a carrier and
  ignored at a non-carrier, the convention ``CARRY-PATCH`` already rests on: the decoding loss is a linear
  read-out, whose top-1 the mean of same-top-1 vectors keeps, and the twins fix the answer for every real
  ``e_k``; that the network reads the mean as its members is an assumption shared with ``CARRY-PATCH``,
  not a trained fact. Positions are the claims' own: PATCH-01 and PATCH-02 overwrite the fed latent ``e_k`` at ``P_k``.

  - ``PATCH-01[Pk]`` (same-group mean keeps accuracy, TOST +-5pp, *and* a different group's mean drops it
    by > 30pp) needs n >= 500 (``EQUIVALENCE_MIN_N``), so at the quick tier (100 problems) it is
    inconclusive everywhere and the design decides constraints only: at a non-carrier **never supported**
    (the different-group mean at an inert ``e_k`` moves no answer: inconclusive below the minimum n,
    refuted above it); at a carrier **never refuted** (the same group's mean carries the same value; a
    different group's carries another value for most groups, and the carrier twins make the answer follow
    it: inconclusive below the minimum n, supported above it).
  - ``PATCH-02[Pk]`` (the mean of the step-2 = s' group moves the answer to step1 + s' in > 30% and > 10x
    a random direction, cross-template at least half as often) is **never supported** at every position
    but the step-2 carrier: an inert ``e_k`` keeps the base answer (its first prediction fails), and the
    step-1 carrier is read as a step-1 value carried into step 2, whose implied answer equals step1 + s'
    only by coincidence. These are constraints, not definite refutations, because PATCH-02 has no
    positive truth to pair them with: at the step-2 carrier the first and third predictions are fixed by
    the carrier twins, but the second (moved more than 10x a norm-matched random direction) depends on
    how the network reads a random vector, which no design fixes (on codi-tiny-planted 5% of random
    directions at e_4 gave the implied answer, a ratio of 13 that n = 100 cannot separate from 10; on
    the exclusive M-CYW organism 0.81 against 0.05 at n = 100, inconclusive after Holm).
  - ``PATCH-06`` (a donor's six fed latents give the donor's answer for < 5%) is **refuted** where both
    intermediates have a carrier: the transplant sets both carriers to the donor's values, the "both"
    twins make the answer follow them (step1' + step2' = the donor's answer), and every other fed latent
    is trained inert (assumed: the twins make the non-carriers inert one at a time, never all four swapped
    together with the carriers). (On the pause control it is supported: the claim has both signs.)
  - Not decided, each because its intervention is one no twin made: ``IMP-01`` and the other
    importance and ablation claims (``IMP-02``/``03``/``05``/``09``/``11``; zero, Gaussian noise,
    another problem's or another position's *residual* at relative depth 0.5: corrupting the residual at
    ``P_k`` changes its output ``h_k``, which feeds ``e_(k+1)``, so the position just before a carrier is
    not inert, and it changes what later positions read at ``P_k``'s upper layers; but how the network
    reads a zeroed, noised or transplanted residual is not trained, so neither the most important
    position nor any position's effect is fixed); ``LENS-02`` and the other lens claims (the lens reads
    ``lm_head(final_norm(h_k))``, the decoding loss ``lm_head(e_k) = lm_head(prj(h_(k-1)))``: a different read-out);
    ``ACC-04`` (zero and mean fed latents and skip thinking: untrained inputs); ``LAY-08`` (residual donor
    patches at EOT and at single positions); ``NEW-05`` and ``PATCH-04``/``IMP-13`` (a random vector).
- pause: every fed latent is the same vector for every problem, so at every site decoding predicts one
  value for all problems (accuracy = that value's share, far below 50%) and any latent-replacing patch
  writes the same vector back (no answer moves): ``CARRY-DECODE``, ``CARRY-PATCH``, ``CARRY-DIRECT``
  and ``PATCH-02`` are refuted; ``PATCH-01``'s second prediction (a different group's mean drops accuracy) cannot hold, so
  it is never supported (inconclusive below its minimum n, refuted above it). ``NEW-08`` (every fed latent
  set to its across-problem mean) writes that same vector back, so it can never be refuted. Nothing can be
  read from a constant, so the operation probes on fed latents (``OP-01``,
  ``OP-04``) and ``PATCH-05``'s operation transfer are never supported; for the same reason a whole-latent
  transplant (``PATCH-06``) transfers no donor answer and difference-of-means steering (``NEW-05``) adds a
  zero vector: both are supported (planted truths, not constraints).
- echo (``mechanisms.EchoSurface``): every fed latent is trained to copy one question word's input embedding
  (``design.ECHO_SURFACE``: X, op, Y, Z, X, op) and to be causally inert (the exclusive map's inert twins at
  all six positions, plus whole transplants from one donor). ``CARRY-PATCH`` and ``CARRY-DIRECT`` are
  refuted at every site and ``PATCH-06`` (a donor's six fed latents) is supported: the twins keep the base
  answer. Never supported: ``CARRY-DECODE`` (no single question word fixes step 1 or step 2 for more than
  21% of the held-out problems), ``PATCH-01`` and ``PATCH-02`` (a mean latent at an inert position moves no
  answer), the operation probes ``OP-01``/``OP-04`` (a copied word is in the question's own embedding, the
  baseline they must beat), ``NEW-09`` (each position copies a fixed slot, so position reads the step
  index as well) and ``OP-02``. Not decided: the lens and residual claims (they read or corrupt ``h_k``,
  which the copy loss does not fix: the answer phase may compute step 1 there), ``PROBE-01/02`` (a probe on
  ``h_k`` may read nonlinear features of the question that the mean-embedding baseline does not),
  ``NEW-08`` (a mean of copies is no word; untrained).
- random: no value is computed, so no decoding (CARRY-DECODE), value patch (total or direct), lens
  read-out (LENS-02, 05, 08; NEW-06's candidates) or most-important position can be supported (refuted
  or inconclusive; a failed control may make it invalid). The probe and lens claims that a latent echoing
  its question or its position would pass (OP-01, LENS-10, LENS-11, NEW-09, PROBE-01/02) must beat that
  surface baseline, so they are never supported either; OP-02 never is anywhere (no Activation Oracle).
- ``LAY-08`` (an EOT-residual patch transfers the donor answer more than any single latent's) is decided by
  no design: on the pause control no single latent patch can move an answer, but whether the EOT patch does
  depends on the network.
- not planted: nothing is decided.
"""

from __future__ import annotations

from dataclasses import dataclass

from .design import FED, INTERMEDIATES, Design

NOT_SUPPORTED = ("refuted", "inconclusive", "invalid")
UNDECIDED = "the design decides nothing here: recorded, never failed"


@dataclass(frozen=True)
class Truth:
    verdicts: tuple[str, ...]
    why: str
    content: bool = True  # a claim about what the fed latents carry

    @property
    def expected(self) -> str:
        return "|".join(self.verdicts)


def _sites() -> list[tuple[str, int]]:
    return [(s, k) for s in INTERMEDIATES for k in FED]


def _exclusive_truths(design: Design) -> dict[str, Truth]:
    """CARRY-DIRECT and CARRY-PATCH at every (intermediate, P_k) of an exclusive map (module docstring)."""
    out: dict[str, Truth] = {}
    at = {k: s for s, k in design.carriers.items()}
    for s, k in _sites():
        if at.get(k) == s:
            out[f"CARRY-DIRECT[{s}@P{k}]"] = Truth(
                ("supported",), f"planted (exclusive): e_{k} carries {s} and is read directly: its twins swap e_{k} "
                                f"with every later fed latent held clean and answer what the donor's {s} implies")
            continue
        if k in at:
            why = (f"planted (exclusive): e_{k} carries {at[k]}, not {s}: a vector there is read as a {at[k]} "
                   f"value, which gives the {s}-implied answer only by coincidence")
        else:
            why = (f"planted (exclusive): e_{k} is no carrier and its twins (e_{k} swapped, later fed latents "
                   f"held or recomputed) keep the base answer, so patching it moves no answer")
        out[f"CARRY-DIRECT[{s}@P{k}]"] = Truth(("refuted",), why)
        out[f"CARRY-PATCH[{s}@P{k}]"] = Truth(("refuted",), why)
    return out


def _exclusive_published(design: Design) -> dict[str, Truth]:
    """The published claims an exclusive map decides (module docstring): PATCH-01 and PATCH-02 per fed
    position ``P_k`` (the fed latent ``e_k``) and, with both intermediates carried, PATCH-06."""
    at = {k: s for s, k in design.carriers.items()}
    inert = "planted (exclusive): e_{k} is no carrier and its twins (e_{k} swapped for a donor's, later fed latents held " \
            "or recomputed) keep the base answer, so "
    out: dict[str, Truth] = {}
    for k in FED:
        if k in at:
            out[f"PATCH-01[P{k}]"] = Truth(("supported", "inconclusive"), (
                f"planted (exclusive): e_{k} carries {at[k]} and the answer follows it (the carrier twins): the mean "
                f"e_{k} of the problem's own group carries the same {at[k]} and keeps accuracy, a different group's "
                f"carries another {at[k]} for most groups and moves the answer: never refuted (inconclusive below "
                f"the claim's minimum n)"))
        else:
            out[f"PATCH-01[P{k}]"] = Truth(("inconclusive", "refuted"), inert.format(k=k) + (
                "a different group's mean latent there cannot drop accuracy (the claim's second prediction): never "
                "supported (inconclusive below the claim's minimum n, refuted above it)"))
        if at.get(k) == "step2":
            continue  # the step-2 carrier: PATCH-02's random-direction control is untrained (module docstring)
        if k in at:
            why = (f"planted (exclusive): e_{k} is read as a {at[k]} value and carried on (the carrier twins): "
                   f"whatever value v a step-2 group's mean there is read as, the answer it implies equals "
                   f"step1 + s' only by coincidence")
        else:
            why = inert.format(k=k) + "a step-2 group's mean latent there keeps the base answer, never step1 + s'"
        out[f"PATCH-02[P{k}]"] = Truth(NOT_SUPPORTED, why)
    if set(design.carriers) == set(INTERMEDIATES):
        s1, s2 = design.carriers["step1"], design.carriers["step2"]
        out["PATCH-06"] = Truth(("refuted",), (
            f"planted (exclusive): the answer is read from step 1 in e_{s1} and step 2 in e_{s2} (the 'both' twins "
            f"swap the two carriers and answer step1' + step2') and every other fed latent is trained inert: a "
            f"donor's six fed latents set both carriers to the donor's values, so the donor's answer is taken, "
            f"far above 5% (assumed: the non-carriers are trained inert one at a time, never all four swapped "
            f"together with the carriers)"), content=False)
    return out


def planted_truths(design: Design) -> dict[str, Truth]:
    out: dict[str, Truth] = {}
    if design.mechanism == "planted":
        for s, k in sorted(design.carriers.items()):
            out[f"CARRY-DECODE[{s}@P{k}]"] = Truth(
                ("supported",), f"planted: {s} is carried by e_{k} (P{k}); a decoding loss puts its value there")
            out[f"CARRY-PATCH[{s}@P{k}]"] = Truth(
                ("supported",), f"planted: interchange training makes a donor's e_{k} move the answer to the "
                                f"donor's {s}-implied one")
        if design.exclusive:
            out.update(_exclusive_truths(design))
            out.update(_exclusive_published(design))
        out["NEW-08"] = Truth(NOT_SUPPORTED, "planted: the answer follows the values the carriers hold, so setting "
                                             "every fed latent to its across-problem mean cannot keep accuracy",
                              content=False)
    elif design.mechanism == "pause":
        why = "pause control: e_k is one learned vector for every problem (prj.ln weight 0), so it carries no value"
        for s, k in _sites():
            out[f"CARRY-DECODE[{s}@P{k}]"] = Truth(("refuted",), why + ": decoding predicts one value for all")
            out[f"CARRY-PATCH[{s}@P{k}]"] = Truth(("refuted",), why + ": the patch writes the same vector back")
            out[f"CARRY-DIRECT[{s}@P{k}]"] = Truth(("refuted",), why + ": the patch and the held latents write "
                                                                       "the same vector back")
        for k in FED:
            out[f"PATCH-02[P{k}]"] = Truth(("refuted",), why + ": the step-2 mean latent is that vector")
            out[f"PATCH-01[P{k}]"] = Truth(("inconclusive", "refuted"),
                                           why + ": a different group's mean is that vector, so it cannot drop "
                                                 "accuracy (the claim's second prediction)")
        out["OP-01"] = Truth(NOT_SUPPORTED, why + ": a probe on one constant vector cannot read the operation")
        out["OP-04"] = Truth(NOT_SUPPORTED, why + ": a probe on constant vectors cannot read the operation")
        out["PATCH-05"] = Truth(NOT_SUPPORTED, why + ": the addition prompt's e_1..e_3 are that vector, so the patch "
                                                     "changes nothing the lens could read")
        out["PATCH-06"] = Truth(("supported",), why + ": a donor's six fed latents are that vector too, so the "
                                                      "transplant changes nothing and no donor answer is taken",
                                content=False)
        out["NEW-05"] = Truth(("supported",), why + ": the difference of two groups' mean latents is zero, so "
                                                    "steering adds nothing and moves no more answers than a random "
                                                    "vector of its (zero) norm", content=False)
        out["NEW-08"] = Truth(("supported", "inconclusive", "invalid"),
                              why + ": the across-problem mean of the fed latents is that vector, so no answer can "
                                    "move and the accuracy change cannot be refuted", content=False)
    elif design.mechanism == "echo":
        out.update(_echo_truths())
    elif design.mechanism == "random":
        why = "random weights: no intermediate is computed, so"
        for s, k in _sites():
            out[f"CARRY-DECODE[{s}@P{k}]"] = Truth(NOT_SUPPORTED, f"{why} no held-out value is decodable")
            out[f"CARRY-PATCH[{s}@P{k}]"] = Truth(NOT_SUPPORTED, f"{why} no value patch gives the implied answer")
            out[f"CARRY-DIRECT[{s}@P{k}]"] = Truth(NOT_SUPPORTED, f"{why} no value patch gives the implied answer")
        for k in FED:
            out[f"PATCH-02[P{k}]"] = Truth(NOT_SUPPORTED, f"{why} no step-2 latent gives the implied answer")
        for key in ("step1-P2", "step2-P4"):
            out[f"LENS-02[{key}]"] = Truth(NOT_SUPPORTED, f"{why} the lens reads no intermediate")
        out["LENS-05"] = Truth(NOT_SUPPORTED, f"{why} no intermediate is in the lens top-5 at any thought")
        out["LENS-08"] = Truth(NOT_SUPPORTED, f"{why} the final answer is in no latent's lens top-10")
        out["NEW-06"] = Truth(NOT_SUPPORTED, f"{why} no latent's lens holds two values of the chain")
        for k in range(7):
            out[f"IMP-01[P{k}]"] = Truth(NOT_SUPPORTED, f"{why} no position is the most important one",
                                         content=False)
        out.update(_surface_only(why))
    if design.mechanism in ("pause", "echo"):
        out["OP-02"] = Truth(NOT_SUPPORTED, "no Activation Oracle is shipped: OP-02's oracle half cannot be measured")
    return out


def _echo_truths() -> dict[str, Truth]:
    """The echo control (``mechanisms.EchoSurface``): every fed latent copies one question word and is trained
    causally inert (module docstring)."""
    from .design import ECHO_SURFACE

    why = ("echo control: each fed latent is trained to copy one question word's embedding (e_1..e_6: "
           + ", ".join(ECHO_SURFACE.values()) + ") and to be causally inert (twins that swap one fed latent, or all "
           "six from one donor, keep the base answer)")
    out: dict[str, Truth] = {}
    for s, k in _sites():
        out[f"CARRY-DECODE[{s}@P{k}]"] = Truth(
            NOT_SUPPORTED, f"{why}: e_{k} copies {ECHO_SURFACE[k]}, and no single question word fixes {s} for more "
                           f"than 21% of the held-out problems (the best guess from the word alone), far below 50%; "
                           f"the copy is near, not exactly, exact (its residual can carry some of the question's "
                           f"computation: a logistic probe on codi-tiny-echo reads step1 from e_3 at 0.68), so this "
                           f"holds for the catalogue's nearest-class-mean decoder, not for every decoder")
        out[f"CARRY-PATCH[{s}@P{k}]"] = Truth(("refuted",), f"{why}: patching e_{k} moves no answer")
        out[f"CARRY-DIRECT[{s}@P{k}]"] = Truth(("refuted",), f"{why}: patching e_{k}, later latents held, moves "
                                                             "no answer")
    for k in FED:
        out[f"PATCH-02[P{k}]"] = Truth(NOT_SUPPORTED, f"{why}: a step-2 mean latent at e_{k} moves no answer "
                                                      "(assumed, as for CARRY-PATCH: a group mean of real fed latents "
                                                      "is ignored where each of them is)")
        out[f"PATCH-01[P{k}]"] = Truth(NOT_SUPPORTED, f"{why}: a different group's mean at e_{k} cannot drop "
                                                      "accuracy, the claim's second prediction (assumed, as for "
                                                      "CARRY-PATCH: a group mean of real fed latents is ignored where "
                                                      "each of them is)")
    out["PATCH-06"] = Truth(("supported",), f"{why}: a donor's six fed latents are the whole transplant its "
                                            "inert-all twins make, so the base answer is kept and no donor answer "
                                            "is taken", content=False)
    out["OP-01"] = Truth(NOT_SUPPORTED, f"{why}: a fed latent holds one question word, which the question's own "
                                        "embedding (the baseline) holds too, beside the family's other wording")
    out["OP-04"] = Truth(NOT_SUPPORTED, f"{why}: e_1..e_6 hold question words, which the question's own "
                                        "embedding (the baseline) holds too, beside the family's other wording")
    out["NEW-09"] = Truth(NOT_SUPPORTED, f"{why}: each position copies a fixed slot, so the latent's position "
                                         "reads the step index as well as the latent does")
    return out


def _surface_only(why: str) -> dict[str, Truth]:
    """Claims about latent content that random weights pass by echoing the question or the position, each now
    required to beat that surface baseline (issues 29 and 30), so never supported on a random model."""
    return {
        "OP-01": Truth(NOT_SUPPORTED, f"{why} the operation is read no better than the question's own embedding"),
        "OP-02": Truth(NOT_SUPPORTED, "no Activation Oracle is shipped: OP-02's oracle half cannot be measured"),
        "LENS-10": Truth(NOT_SUPPORTED, f"{why} the lens finds neither step1 nor step2 (LENS-10's second half)"),
        "LENS-11": Truth(NOT_SUPPORTED, f"{why} the shared lens reads no step1 (LENS-11's control)"),
        "NEW-09": Truth(NOT_SUPPORTED, f"{why} the step index is read no better than the latent's position"),
        "PROBE-01": Truth(NOT_SUPPORTED, f"{why} correctness is read no better than from the question's embedding"),
        "PROBE-02": Truth(NOT_SUPPORTED, f"{why} errors are read no better than from the question's embedding"),
    }
