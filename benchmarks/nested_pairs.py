"""Nested CV's ΔAUC on pairs its floors were not chosen on (cardio_stats.nested_cv.FLOOR, PAIR_FLOOR; issue 53).

Usage: python benchmarks/nested_pairs.py [--sets N] [--sizes 100 300] [--smoke]

benchmarks/nested_floor.py chose the floors on two pairs (B nested in A with two features fewer; two models on
disjoint features). Here A reads all five features of benchmarks/coverage_kinds/headline.py's data and B one fewer:
- "adds a marker": B lacks feature 0, which carries the planted shift (a marker's added value, +0.06);
- "adds noise": B lacks feature 4, which carries none (A and B score almost alike; the truth is a small loss).
Each data set (planted signal, other seeds than the floors' grid) runs once through cardio's
`cross_validated_auc_difference`; its SE is then also recomputed by `nested_se` as it would be without the pair
floor and with the earlier floor of 1.35 naive SEs. Printed per pair and size: misses below / above the truth %,
width ÷ oracle (the mean SE over the SD of the estimate across data sets), power % (the interval excludes 0), and
the share of data sets where the pair floor set the SE.
"""
from __future__ import annotations

import argparse
import time
from functools import partial

import numpy as np
from coverage_kinds import Z
from coverage_kinds.headline import Fitted, draw, newton, true_auc

import cardio_stats as cs
from cardio.study.refits import nested_plan
from cardio_stats.nested_cv import FLOOR, PAIR_FLOOR, nested_se

PAIRS = {"adds a marker": {"A": np.arange(5), "B": np.array([1, 2, 3, 4])},
         "adds noise": {"A": np.arange(5), "B": np.array([0, 1, 2, 3])}}
SEED = 7 * 10**7  # data sets apart from the grid's (seeds 0 and 1 of nested_floor.py and coverage.py)


def one_pair(n: int, columns: dict[str, np.ndarray], sets: int) -> dict[str, np.ndarray]:
    rows = []
    for s in range(SEED + n * 10**4, SEED + n * 10**4 + sets):
        x, y, ids, delta = draw(np.random.default_rng(s), n, s % 2 == 1, True)
        models = {m: Fitted(x[:, c], y, partial(newton, x[:, c], y)) for m, c in columns.items()}
        d = cs.cross_validated_auc_difference(y, ids, models["A"], models["B"], nested_plan(y, ids, seed=s))
        truth = (true_auc(np.array(models["A"].weights), delta[columns["A"]]).mean()
                 - true_auc(np.array(models["B"].weights), delta[columns["B"]]).mean())
        rows.append((d.estimate, d.extra["se"], d.extra["se_naive"], d.extra["se_independent"], d.extra["mse"],
                     truth))
    return dict(zip(("est", "se", "naive", "independent", "mse", "truth"), np.array(rows).T))


def cells(d: dict[str, np.ndarray], se: np.ndarray) -> str:
    truth, sd = float(d["truth"].mean()), float(np.std(d["est"], ddof=1))
    lo, hi = d["est"] - Z * se, d["est"] + Z * se
    return (f"{100 * np.mean(hi < truth):.1f} / {100 * np.mean(lo > truth):.1f} · {np.mean(se) / sd:.2f} · "
            f"{100 * np.mean((lo > 0) | (hi < 0)):.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", type=int, default=300, help="data sets per pair and size")
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 300])
    ap.add_argument("--smoke", action="store_true", help="3 data sets of 60 patients: checks it runs")
    args = ap.parse_args()
    sizes, sets = ([60], 3) if args.smoke else (args.sizes, args.sets)
    t0 = time.perf_counter()
    print(f"{sets} data sets a cell, planted signal; cells: misses below / above % · width ÷ oracle · power %")
    print("| pair | patients | truth | SD across sets | pair floor set the SE | cardio (c = "
          f"{FLOOR['auc_difference']:g}, f = {PAIR_FLOOR:g}) | without the pair floor | c = 1.35, no pair floor |")
    print("|---|---|---|---|---|---|---|---|")
    for name, columns in PAIRS.items():
        for n in sizes:
            d = one_pair(n, columns, sets)
            k = 5
            bare = np.array([nested_se(m, v, k, FLOOR["auc_difference"]) for m, v in zip(d["mse"], d["naive"])])
            old = np.array([nested_se(m, v, k, 1.35) for m, v in zip(d["mse"], d["naive"])])
            binds = np.mean(np.isclose(d["se"], PAIR_FLOOR * d["independent"]) & (d["se"] > bare))
            print(f"| {name} | {n} | {d['truth'].mean():+.4f} | {np.std(d['est'], ddof=1):.4f} | {100 * binds:.0f}% | "
                  f"{cells(d, d['se'])} | {cells(d, bare)} | {cells(d, old)} |")
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
