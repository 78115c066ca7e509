"""How the paired ΔAUC's score interval keeps each AUC's variance (cardio_stats.roc.delong_test(..., interval="score",
floor=f), issue 53).

Usage: python benchmarks/holdout_diff_floor.py [--sets N] [--seed S] [--jobs J] [--smoke]

A holdout's paired ΔAUC (two fixed models on one set of scores) carries the paired DeLong test; its normal interval
missed 6.4-10.8% near separation (benchmarks/coverage.py's "ΔAUC, two fixed models (holdout, external)", seed 1).
The score interval over the two AUCs (`roc.hm_diff_score_interval` at DeLong's variances and correlation) keeps each
AUC's DeLong variance at least f times Hanley & McNeil's at its patients, as the single AUC's score interval keeps
SCORE_FLOOR. Each cell: n patients (100, 300), a setting of coverage_kinds.headline (null, signal, strong,
separating), two pairs of fixed scores: "nested" (x0 + x1 against x1, the coverage kind's) and "disjoint" (x0
against x1: equal AUCs, truth 0). Every set runs through cardio's `delong_test` at each f on the grid and with the
normal interval. Printed per f and cell: misses (below / above) %, width ÷ oracle, power %.

Chosen (the rule stated before seed 2's grid; seed 0's picked f = 1 under SCORE_FLOOR's rule only through cells no
floor below 1 moves): the floor acts where an AUC nears 1, so the smallest f whose near-separation cells (strong,
separating) each miss <= 5.1% with each tail <= 3.5% (SCORE_FLOOR's rule), and whose null and signal cells, where it
seldom binds, miss no more than the normal interval's plus 0.5 point (one Monte-Carlo SE at 2,000 sets; 6.0% at
most, issue 53's goal) with each tail <= 3.5%; where none does, those holding the most cells. The held-out check is
the coverage kind at another seed once the rows carry the chosen interval.
"""
from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from coverage_kinds import Draws, fmt, holds, summarise
from coverage_kinds.headline import FIXED_PAIRS, fixed_pair_sets, fixed_pair_truth

from cardio_stats import delong_test

GRID = (0.0, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0)
MISS = 0.051  # SCORE_FLOOR's rule: a cell holds at misses <= 5.1%, each tail <= 3.5%
SLACK = 0.005  # a null or signal cell may miss the normal interval's rate plus one Monte-Carlo SE at 2,000 sets
NEAR = ("strong", "separating")  # where an AUC nears 1 and the floor binds
SETTINGS = ("null", "signal", "strong", "separating")
Cell = tuple[str, int, str]  # (pair, patients, setting)


def cell(pair: str, n: int, setting: str, sets: int, seed: int) -> dict[str, dict[str, float]]:
    """One cell's summary per interval: "normal" and each floor of the grid."""
    rows: dict[str, list[tuple[float, float, float]]] = {"normal": [], **{f"{f:g}": [] for f in GRID}}
    for y, ids, a, b in fixed_pair_sets(n, setting, sets, seed, pair):  # the coverage kind's data sets
        for key, interval, f in [("normal", "normal", 0.0)] + [(f"{f:g}", "score", f) for f in GRID]:
            t = delong_test(y, a, b, groups=ids, interval=interval, floor=f)
            rows[key].append((t.extra["diff"], t.extra["diff_ci_low"], t.extra["diff_ci_high"]))
    out = {}
    for key, r in rows.items():
        est, lo, hi = np.array(r).T
        out[key] = summarise(Draws(est, lo, hi, truth=fixed_pair_truth(setting, pair), null=0.0))
    return out


def holds_rule(res: dict[str, dict[str, float]], key: str, setting: str) -> bool:
    """The choice's rule for one cell (the docstring's): near separation SCORE_FLOOR's, elsewhere no worse than
    the normal interval's."""
    if setting in NEAR:
        return holds(res[key], MISS)
    return holds(res[key], min(0.060, max(MISS, res["normal"]["miss"] + SLACK)))  # 6.0%: issue 53's goal


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", type=int, default=1000, help="data sets per cell")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2, help="cells run at once, one process each")
    ap.add_argument("--smoke", action="store_true", help="3 data sets of 60 patients a cell: checks it runs")
    args = ap.parse_args()
    sizes, sets = ((60,), 3) if args.smoke else ((100, 300), args.sets)
    cells: list[Cell] = [(p, n, s) for p in FIXED_PAIRS for n in sizes for s in SETTINGS]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        res = dict(zip(cells, pool.map(cell, *zip(*cells), [sets] * len(cells), [args.seed] * len(cells))))
    print(f"{sets} data sets a cell, seed {args.seed}; cells: misses (below / above) % · width ÷ oracle · power %")
    print("| interval | " + " | ".join(f"{p}, {n}, {s}" for p, n, s in cells) + " |")
    print("|---|" + "---|" * len(cells))
    scored = []
    for key in res[cells[0]]:
        print(f"| {key if key == 'normal' else 'score, floor ' + key} | "
              + " | ".join(fmt(res[c][key]) for c in cells) + " |")
        if key != "normal":
            scored.append((sum(holds_rule(res[c], key, c[2]) for c in cells), -float(key)))
    k, f = max(scored)
    print(f"chosen: floor {-f:g} (holds {k} of {len(cells)} cells)")
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
