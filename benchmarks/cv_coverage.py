"""Coverage of the intervals a report prints for a cross-validated AUC, before and after issue 38, by simulation.

Superseded for the cross-validated rows by benchmarks/coverage.py (issue 53): since then
`cross_validated_auc(_difference)` is nested CV and `cv_auc_interval` the fold-DeLong interval, so the rows named
"cv-corrected t" below measure those when run on today's code; the fixed-score (one-fold) rows are unchanged.

Usage: python benchmarks/cv_coverage.py [--datasets 500] [--seed 0] [--sizes 40 100 300] [--repeats R] [--no-fixed]
                                        [--targets] [--smoke]

At each size (patients) and under no signal ("null") and a planted one, `--datasets` data sets are drawn; half
have one record per patient, half 1-3 (records of a patient share a patient effect, within-patient correlation
0.6). Five features; planted: classes differ by 0.6 SD on features 0 and 1. Model A is a logistic regression
on all five, model B on features 1-3 (ridge logistic regression, lambda 1). Everything goes through cardio's code:
`cardio_stats.cross_validated_auc` and `cross_validated_auc_difference` (cardio's patient-grouped, stratified
5-fold split; the corrected t interval) and, for "before", the pooled scores those same fits made.

The truth is known exactly: the records' features are Gaussian, so the population AUC of a fitted linear score
w is Phi(w.delta / sqrt(2 w.w)). The target of a cross-validated AUC is the expected AUC of a model fitted on a
training fold's worth of patients (Bates, Hastie & Tibshirani 2023): the mean, over the data sets of a cell, of
the true AUCs of their fold models. Printed per interval: how often it misses that target (the interval lies
wholly above it or wholly below it: 2.5% each is what a 95% interval promises), its mean width, and beside it
the oracle width 2 x 1.96 x the SD of the estimate over the data sets.

With `--targets`, also one model's AUC for one target minus its AUC for another on the same records and folds
(echo_cmr's fused WMA - LGE; `cardio_stats.cv_auc_difference(..., y_b=)`): a second label drawn for the same
patients, independent of the first, with the same prevalence and its own five features (shifted as the first's
under "planted"), read by the same logistic regression; the split is stratified by the first label only, as a
run's is. A fold without both classes of the second label has no per-fold difference (a run then falls back to a
bootstrap): counted as "no interval" and left out of the misses.

Also per cell, one AUC on fixed scores (no fitting, w = (1, 1, 0, 0, 0), 1-3 records per patient,
within-patient correlation 0.9): the clustered DeLong interval with and without a small-sample correction.
"""
from __future__ import annotations

import argparse
import time
from types import SimpleNamespace

import numpy as np
from coverage_kinds import is_clustered
from cv_auc_null import fold_mean_ic
from scipy.stats import norm

from cardio.study.refits import nested_plan
from cardio_stats import (
    NestedPlan,
    StatsError,
    bootstrap_ci,
    cross_validated_auc,
    cross_validated_auc_difference,
    cv_auc_difference,
    delong_ci,
    delong_test,
)

P, RHO, SHIFT, PREVALENCE, FOLDS, Z = 5, 0.6, 0.6, 0.4, 5, norm.ppf(0.975)
MODELS = {"A": np.arange(P), "B": np.array([1, 2, 3])}


def draw(rng: np.random.Generator, n: int, clustered: bool, planted: bool,
         rho: float = RHO) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Records (x, y, patient ids) of n patients and the class shift delta; a patient's records share u."""
    y_pat = _labels(rng, n)
    k = rng.integers(1, 4, size=n) if clustered else np.ones(n, dtype=int)
    ids = np.repeat(np.arange(n), k)
    x, delta = _features(rng, ids, y_pat, planted, rho)
    return x, y_pat[ids], ids, delta


def _labels(rng: np.random.Generator, n: int) -> np.ndarray:
    y_pat = np.zeros(n, dtype=int)
    y_pat[rng.permutation(n)[:round(PREVALENCE * n)]] = 1
    return y_pat


def _features(rng: np.random.Generator, ids: np.ndarray, y_pat: np.ndarray, planted: bool,
              rho: float = RHO, shift: float = SHIFT) -> tuple[np.ndarray, np.ndarray]:
    """Features of the records `ids` (each record's patient; a patient's records share u) and the class shift
    (`shift` SD on features 0 and 1 where `planted`)."""
    n = y_pat.size
    delta = np.r_[shift, shift, np.zeros(P - 2)] if planted else np.zeros(P)
    u = rng.normal(scale=np.sqrt(rho), size=(n, P)) + y_pat[:, None] * delta
    x = u[ids] + rng.normal(scale=np.sqrt(1 - rho), size=(ids.size, P))
    return x, delta


def true_auc(w: np.ndarray, delta: np.ndarray) -> float:
    """Population record-level AUC of the linear score w.x (records' total covariance is the identity)."""
    norm_w = float(np.sqrt(w @ w))
    return 0.5 if norm_w == 0 else float(norm.cdf(w @ delta / (np.sqrt(2) * norm_w)))


def fit_logistic(x: np.ndarray, y: np.ndarray, lam: float = 1.0) -> np.ndarray:
    """Ridge logistic regression (intercept unpenalised) by Newton's method: (intercept, w).

    Written out instead of scikit-learn's: 5 features, a few hundred rows, tens of thousands of fits on a
    shared 2-core box, where LogisticRegression's input checks cost more than the fit (measured 30 ms a fit)."""
    xa = np.c_[np.ones(len(x)), x]
    pen = np.r_[0.0, np.full(x.shape[1], lam)]
    w = np.zeros(xa.shape[1])
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(xa @ w)))
        step = np.linalg.solve((xa.T * (p * (1 - p))) @ xa + np.diag(pen), xa.T @ (p - y) + pen * w)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


class Model:
    """A logistic regression on some features, as fit_predict; keeps its out-of-fold scores and the true AUC
    of each fold's fit. A second call on the same test fold returns the first fit (the paired difference reuses
    the fits of the single AUC: same seed, same folds)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, cols: np.ndarray, delta: np.ndarray):
        self.x, self.y, self.cols, self.delta = x[:, cols], y, cols, delta[cols]
        self.oof = np.empty(y.size)
        self.truths: list[float] = []
        self.memo: dict[bytes, np.ndarray] = {}
        self.tests: list[SimpleNamespace] = []

    def __call__(self, train: np.ndarray, test: np.ndarray) -> np.ndarray:
        key = test.tobytes()
        if key not in self.memo:
            w = fit_logistic(self.x[train], self.y[train])
            self.memo[key] = w[0] + self.x[test] @ w[1:]
            self.oof[test] = self.memo[key]
            self.tests.append(SimpleNamespace(test=test))
            self.truths.append(true_auc(w[1:], self.delta))
        return self.memo[key]


def one(seed: int, n: int, clustered: bool, planted: bool, repeats: int = 0, targets: bool = False) -> dict:
    """Every interval of one data set: (estimate, low, high) per name, and the fold models' true AUCs."""
    rng = np.random.default_rng(seed)
    x, y, ids, delta = draw(rng, n, clustered, planted)
    a, b = (Model(x, y, MODELS[m], delta) for m in "AB")
    plan = nested_plan(y, ids, seed=seed)
    after = cross_validated_auc(y, ids, a, plan)
    diff = cross_validated_auc_difference(y, ids, a, b, plan)
    out = _intervals(y, ids, a, b, after, diff, clustered, seed)
    if targets:
        out.update(two_targets(rng, y, ids, a, planted, plan))
    if repeats:  # the callable refitted on `repeats` splits: what a cheap pipeline can afford
        few = nested_plan(y, ids, repeats=repeats, seed=seed)
        r = cross_validated_auc(y, ids, Model(x, y, MODELS["A"], delta), few)
        rd = cross_validated_auc_difference(y, ids, Model(x, y, MODELS["A"], delta), Model(x, y, MODELS["B"], delta),
                                            few)
        out[f"AUC: cv-corrected t, {repeats} x {FOLDS}-fold (callable)"] = (r.estimate, r.ci_low, r.ci_high)
        out[f"ΔAUC: cv-corrected t, {repeats} x {FOLDS}-fold (callable)"] = (rd.estimate, rd.ci_low, rd.ci_high)
    return out


def two_targets(rng: np.random.Generator, y: np.ndarray, ids: np.ndarray, a: Model, planted: bool,
                plan: NestedPlan) -> dict:
    """Model A's AUC for y minus the same model form's AUC for a second label y2 (its own features), on a's folds."""
    y2_pat = _labels(rng, int(ids.max()) + 1)
    x2, delta2 = _features(rng, ids, y2_pat, planted)
    y2 = y2_pat[ids]
    b2 = Model(x2, y2, MODELS["A"], delta2)
    cross_validated_auc(y, ids, b2, plan)  # fitted on y2 in a's folds (the split is stratified by y)
    fold = np.empty(y.size, dtype=int)
    for f, t in enumerate(a.tests):
        fold[t.test] = f
    try:
        d = cv_auc_difference(y, a.oof, b2.oof, fold, groups=ids, y_b=y2)
        cell = (d.estimate, d.ci_low, d.ci_high)
    except StatsError:  # a fold with one class of y2
        cell = (np.nan, np.nan, np.nan)
    return {"truth_targets": np.mean(a.truths) - np.mean(b2.truths), "ΔAUC of two targets: cv-corrected t": cell}


def _intervals(y: np.ndarray, ids: np.ndarray, a: Model, b: Model, after, diff, clustered: bool, seed: int) -> dict:
    """The intervals of the single 5-fold run: before (pooled scores) and after (corrected t)."""
    groups = ids if clustered else None
    d = delong_ci(y, a.oof, groups=groups)
    bs = bootstrap_ci(y, a.oof, n_resamples=500, seed=seed, groups=groups)
    t = delong_test(y, a.oof, b.oof, groups=groups).extra
    ic = fold_mean_ic(y, a.oof, a.tests)
    return {"truth": np.mean(a.truths), "truth_diff": np.mean(a.truths) - np.mean(b.truths),
            "AUC: pooled DeLong (before)": (d.estimate, d.ci_low, d.ci_high),
            "AUC: pooled patient bootstrap (before)": (bs.estimate, bs.ci_low, bs.ci_high),
            "AUC: fold mean, influence curve (LeDell 2015; candidate)": ic,
            "AUC: cv-corrected t (after)": (after.estimate, after.ci_low, after.ci_high),
            "ΔAUC: paired DeLong (before)": (t["diff"], t["diff_ci_low"], t["diff_ci_high"]),
            "ΔAUC: cv-corrected t (after)": (diff.estimate, diff.ci_low, diff.ci_high)}


def fixed(seed: int, n: int, planted: bool) -> dict:
    """One AUC of fixed scores (w = (1, 1, 0, 0, 0); no fitting), 1-3 records per patient, within-patient
    correlation 0.9: the clustered DeLong interval with and without the small-sample correction."""
    rng = np.random.default_rng(seed)
    x, y, ids, delta = draw(rng, n, True, planted, rho=0.9)
    w = np.r_[1.0, 1.0, np.zeros(P - 2)]
    d = delong_ci(y, x @ w, groups=ids)
    small = delong_ci(y, x @ w, groups=ids, interval="logit")
    small_t = delong_ci(y, x @ w, groups=ids, interval="logit-t")
    return {"truth": true_auc(w, delta),
            "fixed scores: clustered DeLong, normal (before)": (d.estimate, d.ci_low, d.ci_high),
            "fixed scores: clustered DeLong, logit": (small.estimate, small.ci_low, small.ci_high),
            "fixed scores: clustered DeLong, logit-t": (small_t.estimate, small_t.ci_low, small_t.ci_high)}


#: The rows each truth is the target of (by the start of their names).
ROWS = {"truth": ("AUC", "fixed"), "truth_diff": ("ΔAUC:",), "truth_targets": ("ΔAUC of two targets",)}


def table(runs: list[dict], truth_key: str) -> list[str]:
    """One line per interval: misses of the cell's target (above, below), mean width, oracle width; a data set
    without the interval (NaN: a fold with one class) is left out and counted."""
    target = float(np.mean([r[truth_key] for r in runs]))
    lines = []
    for name in (k for k in runs[0] if k.startswith(ROWS[truth_key])):
        est = np.array([r[name] for r in runs], dtype=float)
        none = np.isnan(est[:, 0])
        est = est[~none]
        above, below = np.mean(est[:, 1] > target), np.mean(est[:, 2] < target)
        lines.append(f"| {name}{f' (no interval: {none.mean():.1%})' if none.any() else ''} | {target:.3f} | "
                     f"{est[:, 0].mean():.3f} | {above + below:.1%} | {above:.1%} | {below:.1%} | "
                     f"{np.mean(est[:, 2] - est[:, 1]):.3f} | {2 * Z * est[:, 0].std(ddof=1):.3f} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", type=int, default=500, help="data sets per size and setting")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sizes", type=int, nargs="+", default=[40, 100, 300])
    ap.add_argument("--repeats", type=int, default=0, help="also the callable refitted on R x 5 folds (0: off)")
    ap.add_argument("--no-fixed", action="store_true", help="leave out the fixed-score rows")
    ap.add_argument("--targets", action="store_true", help="also the difference of two targets' AUCs")
    ap.add_argument("--smoke", action="store_true", help="6 data sets at 40 patients: checks the script runs")
    args = ap.parse_args()
    if args.smoke:
        args.datasets, args.sizes = 6, [40]
    t0 = time.perf_counter()
    print(f"{args.datasets} data sets per cell (half with 1-3 records per patient), seed {args.seed}, 95% intervals, "
          f"{FOLDS}-fold CV, logistic regression")
    print("| interval | target | mean estimate | misses | lies above | lies below | mean width | oracle width |")
    print("|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        for planted in (False, True):
            start = args.seed * 10**6 + n * 1000 + 500 * planted
            runs = [one(s, n, is_clustered(s), planted, args.repeats, args.targets)
                    for s in range(start, start + args.datasets)]
            fixed_runs = [] if args.no_fixed else [fixed(s, n, planted) for s in range(start, start + args.datasets)]
            print(f"| **{n} patients, {'planted' if planted else 'null'}** | | | | | | | |")
            print("\n".join(table(runs, "truth") + table(runs, "truth_diff")
                            + (table(runs, "truth_targets") if args.targets else [])
                            + (table(fixed_runs, "truth") if fixed_runs else [])), flush=True)
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
