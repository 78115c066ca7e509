"""How often the core's interval of a cross-validated AUC excludes 0.5 when there is nothing to find.

Usage: python benchmarks/cv_auc_null.py [--datasets 400] [--patients 200] [--features 30]
                                        [--perm-datasets 100] [--permutations 99]

Each null data set has `--patients` patients (one record each, prevalence 0.4) and `--features` noise features;
the label is independent of all of them. A logistic regression is fitted in each of the 5 folds cardio's split
makes (`cardio.data.make_folds`), and its out-of-fold scores are pooled, as a plugin's run pools them. Printed, side
by side over the same data sets, how often each 95% interval lies wholly above or wholly below 0.5 (2.5% each is
what a 95% interval promises):

- pooled DeLong: the core's performance section (`cardio_stats.delong_ci` on the pooled scores);
- pooled bootstrap: the core's patient bootstrap of the same scores (`cardio_stats.bootstrap_ci`);
- fold-mean, influence curve: the mean of the per-fold AUCs with LeDell, Petersen & van der Laan's (2015, EJS 9:1583)
  influence-curve interval, the usual proposal for a cross-validated AUC (written here: no Python library has it);
- fold-mean, corrected t: `cardio_stats.cv_auc_interval`, Nadeau & Bengio's (2003) corrected variance of the
  per-fold AUCs, what the reports print since issue 38 (its coverage at 40-300 patients: benchmarks/cv_coverage.py).

The first three treat each fold's fitted model as fixed and count only which patients were scored; none counts that
another training set would have given another model, the variance that cross-validation adds (Bengio & Grandvalet
2004: no unbiased estimator of it exists from one k-fold run). Last, for `--perm-datasets` of the data sets, the
permutation test that does count it: the whole cross-validation refitted on `--permutations` label permutations,
p = (1 + #{permuted AUC >= observed}) / (1 + permutations); its rate of p < 0.05 should be near 5%.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.linear_model import LogisticRegression

from cardio.data import make_folds
from cardio_stats import bootstrap_ci, cv_auc_interval, delong_ci
from cardio_stats.roc import _structural_components

CV = {"method": "kfold", "folds": 5, "repeats": 1, "stratify": True}


def _oof_scores(x: np.ndarray, y: np.ndarray, folds) -> np.ndarray:
    """Pooled out-of-fold scores of a logistic regression fitted in each fold."""
    s = np.empty(y.size)
    for f in folds:
        s[f.test] = LogisticRegression(max_iter=2000).fit(x[f.train], y[f.train]).decision_function(x[f.test])
    return s


def fold_mean_ic(y: np.ndarray, s: np.ndarray, folds, level: float = 0.95) -> tuple[float, float, float]:
    """Mean of the per-fold AUCs and LeDell et al.'s influence-curve interval (their cvAUC's ci.cvAUC)."""
    n = y.size
    w1, w0 = n / y.sum(), n / (n - y.sum())
    aucs, ic = [], np.empty(n)
    for f in folds:
        yy = y[f.test]
        auc, v10, v01 = _structural_components(yy, s[f.test][None, :])
        aucs.append(auc[0])
        ic_f = np.empty(yy.size)
        ic_f[yy == 1] = w1 * (v10[0] - auc[0])  # placements, as DeLong's structural components
        ic_f[yy == 0] = w0 * (v01[0] - auc[0])
        ic[f.test] = ic_f
    mean, se = float(np.mean(aucs)), float(np.sqrt(np.mean(ic ** 2) / n))
    z = norm.ppf(0.5 + level / 2)
    return mean, mean - z * se, mean + z * se


def one(seed: int, n: int, p: int, permutations: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    x = rng.normal(size=(n, p))
    table = pd.DataFrame({"patient_id": [f"p{i:04d}" for i in range(n)], "record_id": [f"r{i}" for i in range(n)],
                          "label": y})
    folds = make_folds(table, CV, "label", seed)
    s = _oof_scores(x, y, folds)
    d, b = delong_ci(y, s), bootstrap_ci(y, s, n_resamples=1000, seed=seed)
    out: dict[str, tuple[float, float | None, float | None] | float] = {
        "pooled DeLong": (d.estimate, d.ci_low, d.ci_high), "pooled bootstrap": (b.estimate, b.ci_low, b.ci_high),
        "fold-mean, influence curve": fold_mean_ic(y, s, folds)}
    label = np.empty(n, dtype=object)
    for f in folds:
        label[f.test] = f.name
    c = cv_auc_interval(y, s, label.astype(str))
    out["fold-mean, corrected t (the reports' since issue 38)"] = (c.estimate, c.ci_low, c.ci_high)
    if permutations:
        null = [delong_ci(yp, _oof_scores(x, yp, folds)).estimate
                for yp in (rng.permutation(y) for _ in range(permutations))]
        out["p_perm"] = (1 + sum(a >= d.estimate for a in null)) / (1 + permutations)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", type=int, default=400)
    ap.add_argument("--patients", type=int, default=200)
    ap.add_argument("--features", type=int, default=30)
    ap.add_argument("--perm-datasets", type=int, default=100)
    ap.add_argument("--permutations", type=int, default=99)
    ap.add_argument("--smoke", action="store_true", help="8 data sets of 60 patients, 2 with 9 permutations: seconds")
    args = ap.parse_args()
    if args.smoke:
        args.datasets, args.patients, args.perm_datasets, args.permutations = 8, 60, 2, 9
    t0 = time.perf_counter()
    runs = [one(k, args.patients, args.features, args.permutations if k < args.perm_datasets else 0)
            for k in range(args.datasets)]
    print(f"{args.datasets} null data sets, {args.patients} patients, {args.features} noise features, logistic "
          f"regression, {CV['folds']} folds ({time.perf_counter() - t0:.0f} s)")
    print("| 95% interval | mean AUC | SD | lies above 0.5 | lies below 0.5 | misses 0.5 (5% promised) |")
    print("|---|---|---|---|---|---|")
    for what in ("pooled DeLong", "pooled bootstrap", "fold-mean, influence curve",
                 "fold-mean, corrected t (the reports' since issue 38)"):
        est = np.array([r[what] for r in runs])
        above, below = np.mean(est[:, 1] > 0.5), np.mean(est[:, 2] < 0.5)
        print(f"| {what} | {est[:, 0].mean():.3f} | {est[:, 0].std(ddof=1):.3f} | {above:.1%} | {below:.1%} | "
              f"{above + below:.1%} |")
    ps = np.array([r["p_perm"] for r in runs if "p_perm" in r])
    if ps.size:
        print(f"permutation test of the whole cross-validation ({args.permutations} permutations, first "
              f"{ps.size} data sets): p < 0.05 in {np.mean(ps < 0.05):.1%}")


if __name__ == "__main__":
    main()
