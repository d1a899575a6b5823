"""IMP-01[P5] ("P5 is the most important position", the seeds' headline claim) at its exchangeable worst case,
measured by the claim-level harness at many data sets: the catalogue's own evidence function
(``hypotheses/test_importance.py::importance_evidence``) on per-problem failure rates k/7 with every other
position equal (the case where the minimum of the other positions' means was most biased, issue 28), at
n = 100, each prediction at its null boundary. Writes its rows as a section of docs/calibration.md (kept by a
full rebuild). Not run in CI (about 5 min at 1000 data sets on a free core):

    python benchmarks/imp01_calibration.py [--reps 1000] [--out docs/calibration.md]
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
EQUAL_OTHERS = np.array([0.15, 0.15, 0.15, 0.15, 0.15, 0.30, 0.15])  # every other position equal: the worst case
TITLE = "IMP-01[P5] at its exchangeable worst case"


def imp01_case(n: int = 100) -> cal.ClaimCase:
    """IMP-01[P5] as the catalogue decides it, captured from its own evidence function (family of 7)."""
    imp = cal.catalogue_module("test_importance")
    rates = np.random.default_rng(0).binomial(7, EQUAL_OTHERS, (n, 7)) / 7
    with cal.capture() as cases:
        ev = imp.importance_evidence(rates, P5, seed=0)
        record = ClaimRecord(id="IMP-01[P5]", base_id="IMP-01", kind="empirical", statement="IMP-01")
        ClaimRecorder(record, imp.IMP01).decide(ev, n=n)
    (case,) = cases
    case.family_size = 7
    return case


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--out", default="docs/calibration.md")
    args = parser.parse_args(argv)
    t0 = time.time()
    rows = cal.calibrate([imp01_case()], reps=args.reps, shapes=["binomial7"],
                         log=lambda s: print(s, file=sys.stderr, flush=True))
    command = "python benchmarks/imp01_calibration.py " + shlex.join(list(argv if argv is not None else sys.argv[1:]))
    cal.write_section(args.out, TITLE, rows, time.time() - t0, command)
    print(cal.table(rows))
    return 1 if cal.failures(rows) else 0


if __name__ == "__main__":
    sys.exit(main())
