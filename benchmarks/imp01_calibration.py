"""IMP-01[P5] ("P5 is the most important position", the seeds' headline claim) at its least favourable nulls,
measured by the claim-level harness at many data sets: the catalogue's own evidence function
(``hypotheses/test_importance.py::importance_evidence``) on per-problem failure rates k/7 at n = 100, each
prediction at its null boundary. Two cases (``--case``):

- ``exchangeable``: every other position equal. The least favourable null of the union ("some pair",
  ``rate_5 - 2 rate_j > 0`` for some j, Holm over the 6): every pair at its boundary at once. For the
  intersection-union ("every pair", ``rate_5 - rate_j > 5 pp`` for all j) it is not the worst case: all six
  pairs at the margin must each reject, which is harder than one.
- ``one-pair``: the least favourable null of the intersection-union: ONE other position at the margin
  (P0 5 pp below P5) and the others far below, so its rate is that one pair's test's. Only the every-pair
  prediction is replayed (the union's boundary is the exchangeable case).

Writes the rows as a section of docs/calibration.md (kept by a full rebuild). Not run in CI (about 5 min at
1000 data sets on a free core):

    python benchmarks/imp01_calibration.py [--case exchangeable|one-pair] [--reps 1000] [--out docs/calibration.md]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

import numpy as np

from codi_probe import calibration as cal
from codi_probe.plugin.recorder import ClaimRecorder
from codi_probe.plugin.records import ClaimRecord

P5 = 5
CASES = {  # failure rates of P0..P6 the captured data are drawn at; the replay moves them to the boundary
    "exchangeable": np.array([0.15, 0.15, 0.15, 0.15, 0.15, 0.30, 0.15]),  # every other position equal
    "one-pair": np.array([0.25, 0.02, 0.02, 0.02, 0.02, 0.30, 0.02]),  # P0 at the 5 pp margin, the rest far below
}
TITLES = {"exchangeable": "IMP-01[P5] with every other position equal (the union's worst case)",
          "one-pair": "IMP-01[P5] with one pair at the margin (the intersection-union's worst case)"}


def imp01_case(n: int = 100, case: str = "exchangeable") -> cal.ClaimCase:
    """IMP-01[P5] as the catalogue decides it, captured from its own evidence function (family of 7), on rates
    drawn at ``CASES[case]``; ``one-pair`` keeps only the every-pair prediction."""
    imp = cal.catalogue_module("test_importance")
    rates = np.random.default_rng(0).binomial(7, CASES[case], (n, 7)) / 7
    with cal.capture() as cases:
        ev = imp.importance_evidence(rates, P5, seed=0)
        record = ClaimRecord(id="IMP-01[P5]", base_id="IMP-01", kind="empirical", statement="IMP-01")
        ClaimRecorder(record, imp.IMP01).decide(ev, n=n)
    (out,) = cases
    out.family_size = 7
    if case == "one-pair":
        out.calls = out.calls[:1]
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", choices=sorted(CASES), default="exchangeable")
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--out", default="docs/calibration.md")
    args = parser.parse_args(argv)
    t0 = time.time()
    rows = cal.calibrate([imp01_case(case=args.case)], reps=args.reps, shapes=["binomial7"],
                         log=lambda s: print(s, file=sys.stderr, flush=True))
    command = "python benchmarks/imp01_calibration.py " + shlex.join(list(argv if argv is not None else sys.argv[1:]))
    cal.write_section(args.out, TITLES[args.case], rows, time.time() - t0, command)
    print(cal.table(rows))
    return 1 if cal.failures(rows) else 0


if __name__ == "__main__":
    sys.exit(main())
