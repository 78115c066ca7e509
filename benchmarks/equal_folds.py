"""How the K-fold proportions do on the data sets where one is equal in every fold (docs/statistics.md: "A K-fold
proportion equal in every fold"): their count per size, setting and proportion, and how often their interval
misses the truth, per tail. A cell of `coverage.py --grid other` counts them among all its data sets; this reads
them alone.

Usage: python benchmarks/equal_folds.py [--sizes 100 300] [--settings strong separating] [--sets 1000] [--seed 7]
                                        [--smoke]
"""
from __future__ import annotations

import argparse
import collections
import time

import numpy as np
from coverage_kinds.other import NEAR_BOUND, sets_of

from cardio_stats.cv_metrics import cv_binary_metrics

PROPORTIONS = ("sensitivity", "specificity", "accuracy", "ppv", "npv")


def tally(n: int, setting: str, n_sets: int, seed: int) -> dict[tuple[str, float], collections.Counter]:
    """(proportion, its value in every fold) -> sets, misses with the truth below the interval and above it."""
    out: dict[tuple[str, float], collections.Counter] = collections.defaultdict(collections.Counter)
    for s in sets_of(n, setting, n_sets, seed):
        rows = cv_binary_metrics(s.y, s.p, s.thr, s.fold, groups=s.ids)
        for m in PROPORTIONS:
            e = rows[m]
            if not np.isfinite(e.estimate) or np.ptp(e.extra["per_fold"]) > 0:
                continue
            c = out[(m, round(e.estimate, 3))]
            c["sets"] += 1
            c["no interval"] += e.ci_low is None
            c["truth below"] += e.ci_low is not None and e.ci_low > s.truth[m]
            c["truth above"] += e.ci_high is not None and e.ci_high < s.truth[m]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 300])
    ap.add_argument("--settings", nargs="+", default=list(NEAR_BOUND), choices=["null", "signal", *NEAR_BOUND])
    ap.add_argument("--sets", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--smoke", action="store_true", help="4 data sets of 60 patients: checks it runs")
    args = ap.parse_args()
    if args.smoke:
        args.sets, args.sizes = 4, [60]
    t0 = time.perf_counter()
    print(f"{args.sets} data sets a cell, seed {args.seed}\n| patients | setting | proportion | value in every fold | "
          "sets | no interval | truth below the interval | truth above it |\n|---|---|---|---|---|---|---|---|")
    total: collections.Counter = collections.Counter()
    for n in args.sizes:
        for setting in args.settings:
            for (m, value), c in sorted(tally(n, setting, args.sets, args.seed).items()):
                total += c
                print(f"| {n} | {setting} | {m} | {value:.3f} | {c['sets']} | {c['no interval']} | "
                      f"{c['truth below']} | {c['truth above']} |")
    missed = total["truth below"] + total["truth above"]
    print(f"In all: {total['sets']} rows equal in every fold, {total['no interval']} without an interval, {missed} "
          f"missed ({100 * missed / max(total['sets'], 1):.1f}%: the truth below {total['truth below']}, above "
          f"{total['truth above']}). ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
