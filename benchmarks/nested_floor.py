"""How nested CV's SE floors were chosen (cardio_stats.nested_cv.FLOOR and PAIR_FLOOR, issue 53).

Usage: python benchmarks/nested_floor.py [--sets N] [--seed S] [--smoke]

Nested CV's SE comes from MSE-hat, kept between a floor of c naive SEs (the test folds' noise alone) and sqrt(K) of
them; a difference's SE is also kept at least f times the SE it would have were its two AUCs independent (the pair
floor). For each cell (100 and 300 patients, no signal and signal) the refitted kinds' data sets of
benchmarks/coverage_kinds/headline.py are drawn and run once through cardio's `cross_validated_auc` and
`cross_validated_auc_difference`, keeping each set's estimate, MSE-hat, naive SE and independent-AUC SE; every
(c, f) on the grid then gives the intervals through cardio's own `nested_se`. Printed per (c, f) and metric, per
cell: misses (below / above) %, width ÷ oracle, power %. Chosen per metric: of the (c, f) that hold every cell
(misses <= 5.0%, the 6.0% goal less a Monte-Carlo margin, and each tail <= 3.5%; where none does, those holding the
most cells), the one with the most power in the signal cells, then the smallest. The held-out check is
`benchmarks/coverage.py --kinds "AUC, refitted pipeline" "ΔAUC, refitted pipelines" "ΔAUC, refitted pipelines on
disjoint features" --seed 1`.

Besides B nested in A, the ΔAUC is drawn for two models on disjoint features whose AUCs are equal under signal (the
null a user's comparison usually has; benchmarks/coverage_kinds/headline.py's DISJOINT): its cells are "disjoint".
After the grid, per cell: the skewness of the estimate across data sets, the correlation of the naive SE with the
estimate, and the oracle interval (the estimate +- 1.96 x its true SD, a constant width): what a symmetric interval
of the right width would miss per tail.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from coverage_kinds import Draws, Z, summarise
from coverage_kinds.headline import COLUMNS, DISJOINT, refitted_estimates
from scipy.stats import skew

from cardio_stats.nested_cv import nested_se

GRID = (1.0, 1.05, 1.1, 1.15, 1.2, 1.25, 1.3, 1.35, 1.414)
PAIR_GRID = (0.4, 0.45, 0.5, 0.55, 0.6)  # f, for a difference, beside c in GRID[:3]
NULLS = {"AUC": 0.5, "ΔAUC": 0.0}  # each metric's no-effect value, for power


Cell = tuple[int, str]  # (patients, setting): setting "null", "signal" or "disjoint" (equal AUCs under signal)


def draws(n: int, setting: str, sets: int, seed: int) -> dict[str, dict[str, np.ndarray]]:
    """Per metric, each data set's estimate, MSE-hat, naive SE, independent-AUC SE (a difference's; 0 for an AUC)
    and truth (the coverage benchmark's seeds; a disjoint cell has its ΔAUC only)."""
    signal = setting != "null"
    start = seed * 10**7 + n * 10**4 + (5000 if signal else 0)
    columns = DISJOINT if setting == "disjoint" else COLUMNS
    rows: dict[str, list[tuple[float, float, float, float, float]]] = {"AUC": [], "ΔAUC": []}
    for s in range(start, start + sets):
        a, d, ta, td, _ = refitted_estimates(n, signal, s, columns)
        for name, e, truth in (("AUC", a, ta), ("ΔAUC", d, td)):
            rows[name].append((e.estimate, e.extra["mse"], e.extra["se_naive"], e.extra.get("se_independent", 0.0),
                               truth))
    if setting == "disjoint":
        del rows["AUC"]
    return {m: dict(zip(("est", "mse", "naive", "independent", "truth"), np.array(r).T)) for m, r in rows.items()}


def se_at(d: dict[str, np.ndarray], floor: float, pair: float = 0.0) -> np.ndarray:
    """Each set's SE at these floors, by cardio's own nested_se (K = 5)."""
    return np.array([nested_se(m, v, 5, floor, pair * i) for m, v, i in zip(d["mse"], d["naive"], d["independent"])])


def at_floor(d: dict[str, np.ndarray], floor: float, null: float, pair: float = 0.0) -> dict[str, float]:
    se = se_at(d, floor, pair)
    return summarise(Draws(d["est"], d["est"] - Z * se, d["est"] + Z * se, truth=float(d["truth"].mean()),
                           null=null))


def floor_share(d: dict[str, np.ndarray]) -> str:
    """With Bates et al.'s floor (the naive SE): the share of sets whose SE sat on it, and the misses there and
    elsewhere: where the floor is too low, the sets on it miss."""
    se = se_at(d, 1.0)
    on = np.isclose(se, d["naive"])
    truth = float(d["truth"].mean())
    miss = (d["est"] - Z * se > truth) | (d["est"] + Z * se < truth)
    rest = f"{100 * miss[~on].mean():.1f}%" if (~on).any() else "–"
    return (f"{100 * on.mean():.0f}% of sets on it, missing {100 * miss[on].mean():.1f}%" if on.any() else
            "no set on it") + f"; the rest {rest}"


def oracle(d: dict[str, np.ndarray], null: float) -> dict[str, float]:
    """The estimate +- Z x its SD across the data sets: the right width, symmetric, the same in every set."""
    sd = float(np.std(d["est"], ddof=1))
    return summarise(Draws(d["est"], d["est"] - Z * sd, d["est"] + Z * sd, truth=float(d["truth"].mean()), null=null))


def shape(d: dict[str, np.ndarray]) -> str:
    """The estimate's skewness across data sets, and how its naive SE moves with it."""
    return f"skewness {skew(d['est']):+.2f}, corr(naive SE, estimate) {np.corrcoef(d['naive'], d['est'])[0, 1]:+.2f}"


def fmt(r: dict[str, float]) -> str:
    return (f"{100 * r['miss']:.1f} ({100 * r['miss_below']:.1f} / {100 * r['miss_above']:.1f}) · "
            f"{r['width_ratio']:.2f} · {100 * r['power']:.1f}")


def holds(r: dict[str, float]) -> bool:
    return r["miss"] <= 0.050 and r["miss_below"] <= 0.035 and r["miss_above"] <= 0.035


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", type=int, default=1000, help="data sets per cell")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smoke", action="store_true", help="4 data sets of 60 patients a cell: checks it runs")
    args = ap.parse_args()
    sizes, sets = ((60,), 4) if args.smoke else ((100, 300), args.sets)
    cells: list[Cell] = [(n, s) for n in sizes for s in ("null", "signal", "disjoint")]
    t0 = time.perf_counter()
    data = {c: draws(*c, sets, args.seed) for c in cells}
    print(f"{sets} data sets a cell, seed {args.seed}; cells: misses (below / above) % · width ÷ oracle · power % "
          "(disjoint: the false positives with equal AUCs)")
    print("| floor c | pair f | metric | " + " | ".join(f"{n}, {s}" for n, s in cells) + " |")
    print("|---|---|---|" + "---|" * len(cells))
    chosen = {}
    for metric, null in NULLS.items():
        own = [cell for cell in cells if metric in data[cell]]
        grid = [(c, 0.0) for c in GRID] + ([(c, f) for c in GRID[:3] for f in PAIR_GRID] if metric == "ΔAUC" else [])
        scored = []
        for c, f in grid:
            results = {cell: at_floor(data[cell][metric], c, null, f) for cell in own}
            power = sum(r["power"] for cell, r in results.items() if cell[1] == "signal")
            scored.append((sum(map(holds, results.values())), power, -c, -f))
            print(f"| {c} | {f:g} | {metric} | " + " | ".join(fmt(results[cell]) if cell in results else "–"
                                                              for cell in cells) + " |")
        k, _, c, f = max(scored)
        chosen[metric] = (-c, -f, k, len(own))
    for metric, null in NULLS.items():
        print(f"| oracle | | {metric} | " + " | ".join(fmt(oracle(data[cell][metric], null)) if metric in data[cell]
                                                       else "–" for cell in cells) + " |")
    print("\nThe ΔAUC's estimate across data sets:")
    for cell in cells:
        print(f"- {cell[0]} patients, {cell[1]}: {shape(data[cell]['ΔAUC'])}")
    print("\nWith the naive SE as the floor (c = 1.0):")
    for metric in NULLS:
        for cell in cells:
            if metric in data[cell]:
                print(f"- {metric}, {cell[0]} patients, {cell[1]}: {floor_share(data[cell][metric])}")
    for metric, (c, f, k, m) in chosen.items():
        print(f"chosen for {metric}: c = {c}, f = {f:g} (holds {k} of {m} cells)")
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
