"""Nested CV's ΔAUC on pairs its floors were not chosen on (cardio_stats.nested_cv.FLOOR, SPREAD_FLOOR, PAIR_FLOOR;
issue 53).

Usage: python benchmarks/nested_pairs.py [--sets N] [--sizes 100 300] [--smoke]

benchmarks/nested_floor.py chose the floors on two pairs (B nested in A with two features fewer; two models on
disjoint features). Here A reads all five features of benchmarks/coverage_kinds/headline.py's data and B one fewer:
- "adds a marker": B lacks feature 0, which carries the planted shift (a marker's added value, +0.06);
- "adds noise": B lacks feature 4, which carries none (A and B score almost alike; the truth is a small loss).
Each data set (planted signal, other seeds than the floors' grid) runs once through cardio's nested CV
(`refit_scores`, `nested_terms`); its SE then comes from cardio's `nested_se` at cardio's floors,
without the pair floor, and at the earlier 1.35 naive SEs, scored as nested_floor.py scores its grid: misses
(below / above) %, width ÷ oracle, power % (the interval excludes 0); and the share of data sets where the pair
floor raised the SE.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from coverage_kinds import fmt
from coverage_kinds.headline import refitted_data, truths
from nested_floor import Sets, at_floor, se_at

from cardio_stats.nested_cv import FLOOR, PAIR_FLOOR, SPREAD_FLOOR, nested_terms, refit_scores

PAIRS = {"adds a marker": {"A": np.arange(5), "B": np.array([1, 2, 3, 4])},
         "adds noise": {"A": np.arange(5), "B": np.array([0, 1, 2, 3])}}
SEED = 7 * 10**7  # data sets apart from the grid's (seeds 0 and 1 of nested_floor.py and coverage.py)
#: (c, f, g) per column: cardio's floors, without the pair floor, and the earlier 1.35 naive SEs (g None: nothing
#: taken out of MSE-hat, as before the repeats' spread)
COLUMNS = {f"cardio (c = {FLOOR['auc_difference']:g}, f = {PAIR_FLOOR:g}, g = {SPREAD_FLOOR:g})":
           (FLOOR["auc_difference"], PAIR_FLOOR, SPREAD_FLOOR),
           "without the pair floor": (FLOOR["auc_difference"], 0.0, SPREAD_FLOOR),
           "c = 1.35, no pair floor, no spread": (1.35, 0.0, None)}


def one_pair(n: int, columns: dict[str, np.ndarray], sets: int) -> Sets:
    """Each data set's ΔAUC terms through cardio's nested CV, in nested_floor.py's layout."""
    d = Sets("auc_difference", [], np.empty(sets))
    for i, s in enumerate(range(SEED + n * 10**4, SEED + n * 10**4 + sets)):
        y, ids, models, plan, delta, _ = refitted_data(n, True, s, columns)
        d.terms.append(nested_terms(y, ids, plan, [refit_scores(plan, models[m]) for m in ("A", "B")], (1.0, -1.0)))
        d.truth[i] = truths(models, columns, delta)[1]
    return d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", type=int, default=300, help="data sets per pair and size")
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 300])
    ap.add_argument("--smoke", action="store_true", help="3 data sets of 60 patients: checks it runs")
    args = ap.parse_args()
    sizes, sets = ([60], 3) if args.smoke else (args.sizes, args.sets)
    t0 = time.perf_counter()
    print(f"{sets} data sets a cell, planted signal; cells: misses (below / above) % · width ÷ oracle · power %")
    print("| pair | patients | truth | SD across sets | pair floor set the SE | " + " | ".join(COLUMNS) + " |")
    print("|---|---|---|---|---|" + "---|" * len(COLUMNS))
    for name, columns in PAIRS.items():
        for n in sizes:
            d = one_pair(n, columns, sets)
            c, f, g = COLUMNS[next(iter(COLUMNS))]
            binds = np.mean(se_at(d, c, f, g) > se_at(d, c, 0.0, g))
            cells = " | ".join(fmt(at_floor(d, c, 0.0, f, g)) for c, f, g in COLUMNS.values())
            print(f"| {name} | {n} | {d.truth.mean():+.4f} | {np.std(d.column('estimate'), ddof=1):.4f} | "
                  f"{100 * binds:.0f}% | "
                  f"{cells} |")
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
