"""Candidate ΔAUC intervals for deep pipelines run with repeated K-fold CV (issue 53): draws and scoring.

Usage: python benchmarks/cv_diff_repeats.py [--repeats 3] [--sets 1000] [--seed 0] [--cache DIR] [--smoke]

Each data set of benchmarks/coverage_kinds/headline.py (nested models A, B; the noisily fitted "deep" learner) is
split R times by cardio's `make_folds` (cv.repeats = R) and fitted afresh in each repeat; cardio's own
`cv_auc.fold_statistics` gives each fold's difference A - B and its within-fold variances. Candidates, each a
function of those folds, are scored per cell (null and signal, 100 and 300 patients): misses per tail, width
against the oracle (the SD of that candidate's estimate across data sets) and power. Printed also: the oracle's own
power (the share of data sets whose estimate lies 1.96 oracle SDs from 0), the ceiling for any interval.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from coverage_kinds import Draws, Z, is_clustered, summarise
from coverage_kinds.headline import COLUMNS, draw, sgd, true_auc
from scipy.stats import t as student_t

from cardio.data import make_folds
from cardio_stats.cv_auc import clustered_variance, diff_terms, fold_parts, patient_influence

K = 5


def folds_of(n: int, signal: bool, s: int, repeats: int) -> dict[str, np.ndarray]:
    """One data set, R repeats: per (repeat, fold) the difference, v_d, v_a, v_b; per repeat the truth."""
    rng = np.random.default_rng(s)
    x, y, ids, delta = draw(rng, n, is_clustered(s), signal)
    table = pd.DataFrame({"patient_id": ids.astype(str), "record_id": np.arange(y.size).astype(str), "label": y})
    split = make_folds(table, {"method": "kfold", "folds": K, "repeats": repeats, "stratify": True}, "label", s)
    out: dict[str, list[Any]] = {k: [] for k in ("d", "vd", "va", "vb", "truth")}
    for r in range(repeats):
        folds = [f for f in split if f.repeat == r]
        mask, label = np.zeros((K, y.size)), np.empty(y.size, dtype=object)
        for i, f in enumerate(folds):
            mask[i, f.train], label[f.test] = 1.0, f.name
        scores, truth = {}, {}
        for m, c in COLUMNS.items():
            w = sgd(rng, x[:, c], y, mask)
            scores[m] = np.empty(y.size)
            for i, f in enumerate(folds):
                scores[m][f.test] = w[i, 0] + x[f.test][:, c] @ w[i, 1:]
            truth[m] = true_auc(w, delta[c]).mean()
        parts, codes, _ = fold_parts(label.astype(str), y.size, ids)
        for key, v in zip(("d", "vd", "va", "vb"), fold_terms(y, scores["A"], scores["B"], parts, codes)):
            out[key].append(v)
        out["truth"].append(truth["A"] - truth["B"])
    return {k: np.array(v) for k, v in out.items()}


def fold_terms(y: np.ndarray, a: np.ndarray, b: np.ndarray, parts: list[np.ndarray],
               codes: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per fold: the difference A - B and its, A's and B's clustered DeLong variances, from each patient's
    influence (what cardio's fold_statistics computes, each model's influence found once)."""
    d, vd, va, vb = (np.empty(len(parts)) for _ in range(4))
    for f, idx in enumerate(parts):
        local = np.unique(codes[idx], return_inverse=True)[1]
        auc_a, pa, qa = patient_influence(y[idx], a[idx], local)
        auc_b, pb, qb = patient_influence(y[idx], b[idx], local)
        d[f] = auc_a - auc_b
        vd[f] = clustered_variance(pa - pb, qa - qb, y[idx], local)
        va[f], vb[f] = clustered_variance(pa, qa, y[idx], local), clustered_variance(pb, qb, y[idx], local)
    return d, vd, va, vb


def cell(cache: Path, n: int, setting: str, sets: int, seed: int, repeats: int) -> dict[str, np.ndarray]:
    path = cache / f"rep{repeats}_{n}_{setting}_{sets}_{seed}.npz"
    if not path.exists():
        start = seed * 10**7 + n * 10**4 + (5000 if setting == "signal" else 0)
        runs = [folds_of(n, setting == "signal", s, repeats) for s in range(start, start + sets)]
        arrays: dict[str, Any] = {k: np.array([r[k] for r in runs]) for k in runs[0]}
        np.savez(path, **arrays)
    return dict(np.load(path))


Candidate = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], tuple[float, float, float]]
Terms = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def summed(own: float, shared: float) -> Terms:
    """The fold term cardio used before `cv_auc.diff_terms`: (1 + own) v_d + shared (v_a + v_b); the table in
    docs/statistics.md's repeats section was run with it (own 0.7, shared 0.1)."""
    return lambda vd, va, vb: (1 + own) * vd + shared * (va + vb)


def one_repeat_var(d: np.ndarray, vd: np.ndarray, va: np.ndarray, vb: np.ndarray,
                   terms: Terms = diff_terms) -> np.ndarray:
    """Per repeat: the fold DeLong + fold covariance variance of that repeat's mean difference."""
    return terms(vd, va, vb).mean(axis=-1) / d.shape[-1]


def today(d, vd, va, vb, terms=diff_terms):
    """The repeats' variances averaged (cv_auc._interval before the between-repeats variance)."""
    m, se = d.mean(), np.sqrt(one_repeat_var(d, vd, va, vb, terms).mean())
    return m, m - Z * se, m + Z * se


def between_repeats(d, vd, va, vb, terms=diff_terms):
    """Var(mean of r repeats) = Var(one repeat) - (1 - 1/r) E[Var(repeat | data)], the latter by the repeats'
    sample variance (law of total variance); floored at Var(one repeat) / r."""
    r = d.shape[0]
    v1 = one_repeat_var(d, vd, va, vb, terms).mean()
    s2 = d.mean(axis=1).var(ddof=1)
    v = max(v1 - (1 - 1 / r) * s2, v1 / r)
    m, se = d.mean(), np.sqrt(v)
    return m, m - Z * se, m + Z * se


def bouckaert_frank(d, vd, va, vb):
    """Corrected repeated k-fold t (Nadeau & Bengio 2003; Bouckaert & Frank 2004): (1/(rK) + n2/n1) S^2, t(rK - 1)."""
    x = d.ravel()
    se = np.sqrt((1 / x.size + 1 / (K - 1)) * x.var(ddof=1))
    q = student_t.ppf(0.975, x.size - 1)
    return x.mean(), x.mean() - q * se, x.mean() + q * se


def scored(h: dict[str, np.ndarray], r: int, f: Candidate) -> dict[str, float]:
    rows = [f(d[:r], vd[:r], va[:r], vb[:r]) for d, vd, va, vb in zip(h["d"], h["vd"], h["va"], h["vb"])]
    est, lo, hi = (np.array(c) for c in zip(*rows))
    s = summarise(Draws(est, lo, hi, truth=float(h["truth"][:, :r].mean()), null=0.0))
    s["oracle_power"] = float(np.mean(np.abs(est) > Z * est.std(ddof=1)))
    s["truth"] = float(h["truth"][:, :r].mean())
    return s


CANDIDATES: dict[str, Candidate] = {
    "today (max form)": today,
    "today (0.7 v_d + 0.1)": lambda d, vd, va, vb: today(d, vd, va, vb, summed(0.7, 0.1)),
    "between repeats (max form)": between_repeats,
    "between repeats (0.7, 0.1)": lambda d, vd, va, vb: between_repeats(d, vd, va, vb, summed(0.7, 0.1)),
    "between repeats (1.0, 0.0)": lambda d, vd, va, vb: between_repeats(d, vd, va, vb, summed(1.0, 0.0)),
    "between repeats (0.4, 0.1)": lambda d, vd, va, vb: between_repeats(d, vd, va, vb, summed(0.4, 0.1)),
    "corrected repeated t": bouckaert_frank,
}
ONE_REPEAT = ("today (max form)", "today (0.7 v_d + 0.1)", "corrected repeated t")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sets", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, default=Path(".cache/cv_diff_repeats"))
    ap.add_argument("--smoke", action="store_true", help="8 data sets a cell: checks it runs")
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    sets = 8 if args.smoke else args.sets
    cells = {(n, st): cell(args.cache, n, st, sets, args.seed, args.repeats)
             for n in (100, 300) for st in ("null", "signal")}
    print(f"{sets} data sets a cell, seed {args.seed}; cells: misses below / above % · width ÷ oracle · power % "
          "(oracle's power %); truth")
    print("| candidate | r | " + " | ".join(f"{n}, {st}" for n, st in cells) + " |")
    print("|---|---|" + "---|" * len(cells))
    for r in sorted({1, 3, args.repeats}):
        for name, f in CANDIDATES.items():
            if r == 1 and name not in ONE_REPEAT:
                continue
            row = []
            for h in cells.values():
                s = scored(h, r, f)
                row.append(f"{100 * s['miss_below']:.1f} / {100 * s['miss_above']:.1f} · {s['width_ratio']:.2f} · "
                           f"{100 * s['power']:.1f} ({100 * s['oracle_power']:.1f}); {s['truth']:+.3f}")
            print(f"| {name} | {r} | " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
