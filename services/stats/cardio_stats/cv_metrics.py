"""Cross-validated metrics besides the AUC, fold by fold: thresholded proportions, calibration, Brier score, IDI and
NRI of a K-fold run's out-of-fold predictions, and the agreement of its continuous predictions (MAE, RMSE, R²,
Bland–Altman).

What they estimate is the procedure's expected performance at this cohort size (docs/statistics.md, the estimand
table): each metric is computed within each fold, on the records that fold's model scored, and the folds' values
are averaged, as the cross-validated AUC is. Pooling every fold's predictions into one metric mixes K models: a
pooled calibration slope is pulled down by their different intercepts and scales (issue 53: -0.24 to -0.26 with no
signal, whose true slope is 0), and a Wilson or bootstrap interval of pooled predictions counts the patients scored
but not that another training set gives another model (13-52% misses against the expected value for sensitivity
and specificity).

The interval, where one is printed, is the corrected t of the per-fold values (Nadeau & Bengio 2003, the same
formula as the cross-validated AUC: ``cardio_stats.cv_auc``), or for the MAE and RMSE one that reads the folds'
test noise from their records and only the training spread beyond it from the folds (``_noise_and_spread``); a
proportion's is a binomial interval at the effective sample size of that variance (``_effective``). Where
benchmarks/coverage.py (kinds in benchmarks/coverage_kinds/other.py and regression.py) shows that no interval from
one run's folds holds its level, the row is the fold mean alone and ``warnings`` says why; the pooled value and its
old interval stay under ``extra["pooled"]``.
"""
from __future__ import annotations

import warnings as _warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
from scipy.special import logit
from scipy.stats import t as t_dist

from cardio_stats.agreement import LOA_COVERAGE, LOA_Z
from cardio_stats.clustered import binomial_interval, mean_variance
from cardio_stats.cv_auc import fold_labels
from cardio_stats.result import Estimate, StatsError
from cardio_stats.validation import as_binary_labels, as_scores, check_level


def _proportion_method(proportion: str, noisy: bool, equal: bool = False) -> str:
    """A proportion row's method: its binomial interval and the variance that sets its effective sample size (equal
    in every fold, where no variance can be read, the denominator's patients)."""
    shown = dict(wilson="Wilson", beta="Clopper–Pearson")[proportion]
    if equal:
        return f"fold mean, {shown}'s interval at the denominator's patients (equal in every fold)"
    return (f"fold mean, {shown}'s interval at the effective sample size of "
            + ("its records' noise and the folds' excess spread" if noisy else "the corrected t's variance"))


FOLD_MEAN = "fold mean, corrected t (Nadeau & Bengio 2003)"
FOLD_MEAN_WILSON = _proportion_method("wilson", noisy=False)
FOLD_MEAN_ONLY = "fold mean (no interval)"
FOLD_MEAN_NOISE = "fold mean, its records' noise and the folds' excess spread, on the log scale"
FOLD_MEAN_MOVER = "fold mean, its bias's and SD's intervals combined (MOVER, Zou 2013)"
FOLD_MEAN_CONTROL = "fold mean, its folds' biases regressed on their target contrasts, and their test noise"
FOLD_MEAN_WILSON_NOISE = _proportion_method("wilson", noisy=True)
FOLD_MEAN_EXACT_NOISE = _proportion_method("beta", noisy=True)
FOLD_MEAN_WILSON_EQUAL = _proportion_method("wilson", noisy=False, equal=True)
FOLD_MEAN_EXACT_EQUAL = _proportion_method("beta", noisy=False, equal=True)
#: The records' noise term's factor where a caller names none (``fold_mean``, ``_noise_se``).
NOISE_FACTOR = 1.75
#: Each error's factor, the smallest of 1, 1.25, 1.5, 1.75 and 2 that held on the regression grid's seeds 13 and 14,
#: each data set read against its own design's truth, then held out on seed 15 (docs/statistics.md, "A cell that
#: mixes designs"; 1.75 and 2 before, chosen where a pooled truth read two designs' estimands as misses).
NOISE_FACTORS = {"mae": 1.0, "rmse": 1.25}
#: The limits of agreement's factor for both parts' noise (``_limits``), chosen by the same rule (1.5 before).
LOA_NOISE_FACTOR = 1.0
#: The Bland–Altman bias's test-noise factor (``_bias_control_se``), with the plain t of its residuals: the first of
#: 1, 1.25, 1.5 (then the corrected t at 1) that held on the regression grid's seeds 6 and 7, held out on seed 10
#: (docs/statistics.md).
BIAS_NOISE_FACTOR = 1.0
#: The Brier score's factor, chosen the same way on benchmarks/coverage_kinds/other.py's grid (docs/statistics.md: the
#: smallest of 1.5, 1.75 and 2 that held on seeds 0, 2 and 3 with each tail <= 3.0%, then held out on seed 4).
BRIER_NOISE_FACTOR = 1.75
#: The proportions read their folds' test noise at these factors, each the smallest of 1, 1.5, 1.75 and 2 that held on
#: other.py's grid (seeds 0 and 2, then held out on seed 12: docs/statistics.md). The sensitivity and specificity
#: are not here: they move with each fold's threshold more than with its test noise, no factor held, and they keep
#: the corrected t's variance.
PROPORTION_NOISE_FACTORS = {"accuracy": 1.75, "ppv": 1.0, "npv": 1.0}
#: Each proportion's interval at its effective sample size (statsmodels' proportion_confint method), chosen on
#: other.py's grid with proportions near 1 (docs/statistics.md: seed 5, held out on seed 6): Wilson's, narrower, where
#: it held; Clopper-Pearson's for the PPV, whose Wilson interval missed 5.4% at 300 patients near separation.
PROPORTION_INTERVALS = {"sensitivity": "wilson", "specificity": "wilson", "accuracy": "wilson", "ppv": "beta",
                        "npv": "wilson"}
MIN_FOLDS = 5  # the folds per repeat an interval needs: 2 folds give t with 1 df, [0, 1] for a proportion
ESTIMAND = "the procedure's expected value at this cohort size: the mean of the per-fold values"
_EPS = 1e-6  # probabilities are clipped this far from 0 and 1 before the logit, as calibration() does

#: Why a row carries no interval (the coverage benchmark's figures: docs/statistics.md).
WHY_NOT = {
    "f1": (
        "no interval: the fold-level interval of F1 (a ratio of counts that moves with the threshold) missed 6.2% "
        "at 300 patients without signal, 5.4% on one side, and so on the logit scale (benchmarks/coverage.py)"),
    "calibration_slope": (
        "no interval: the folds' slopes are correlated in a way one run cannot measure (positively without "
        "signal, negatively with it), so the fold-level interval missed 7.4% without signal and was 2.9-5.4 times "
        "too wide with it (benchmarks/coverage.py)"),
    "calibration_intercept": (
        "no interval: each fold's model reproduces its training folds' event rate, which its test fold shares, so "
        "the cross-validated intercept is close to 0 by construction and varies far less than any interval from "
        "the folds or the records says (Wald intervals were 7-14 times its spread, fold-level ones 6-15 times)"),
    "idi": (
        "no interval: the folds' IDIs move together (every fold's models learn from the same patients), which one "
        "run cannot measure: the fold-level interval missed 12.6-16.0% with signal (benchmarks/coverage.py); the "
        "paired ΔAUC carries the comparison's interval"),
    "nri": (
        "no interval, and not a headline: the category-free NRI is positive when the added information carries "
        "nothing (Pepe et al. 2015; +0.02 to +0.03 for useless features in benchmarks/coverage.py)"),
    "r2": (
        "no interval: the folds' R² share the run's variance of the target, which the corrected t cannot see, so "
        "its interval was 2.5-9.7 times the estimate's spread, and the patient bootstrap of the pooled predictions "
        "missed 6.6-10.9% (benchmarks/coverage.py); RMSE's interval carries the error"),
}


def _folds(fold: Any, n: int, groups: Any) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Record positions of each fold, each fold's n_test/n_train in patients, each fold's repeat, and each record's
    patient code.

    Every distinct label is one fold; a label "r/name" puts the fold in repeat r, and the training patients of a
    fold are every other patient of its repeat."""
    labels, codes, names, repeat = fold_labels(fold, n, groups)
    if len(names) < 2:
        raise StatsError(f"a cross-validated interval needs at least 2 folds; got {len(names)}")
    parts, ratios, reps = [], [], []
    for name in names:
        idx = np.flatnonzero(labels == name)
        in_repeat = np.unique(codes[repeat == repeat[idx[0]]]).size
        n_test = np.unique(codes[idx]).size
        if n_test >= in_repeat:
            raise StatsError(f"fold {name!r} holds every patient of its repeat: it has no training patients")
        parts.append(idx)
        ratios.append(n_test / (in_repeat - n_test))
        reps.append(repeat[idx[0]])
    if min(np.unique(reps, return_counts=True)[1]) < 2:
        raise StatsError(f"a cross-validated interval needs at least 2 folds in each repeat; got {len(names)} "
                         f"fold(s) in {len(set(reps))} repeat(s)")
    return parts, np.array(ratios), np.array(reps), codes


def _fold_parts(fold: Any, n: int, groups: Any) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """``_folds`` without the patient codes: record positions, n_test/n_train and repeat of each fold."""
    parts, ratios, reps, _ = _folds(fold, n, groups)
    return parts, ratios, reps


def _corrected(values: np.ndarray, ratios: np.ndarray, reps: np.ndarray, level: float,
               bounds: tuple[float, float]) -> tuple:
    """Mean over all folds, Nadeau & Bengio's corrected SE, t interval clipped to bounds, and df: within one repeat
    of K folds var = (1/K + n_test/n_train) S², t with K - 1 df; with R repeats the mean of the R variances. (The
    AUC's own interval moved to the fold-DeLong variance, cardio_stats.cv_auc; these rows keep the corrected t,
    whose coverage benchmarks/coverage.py measures for each of them.) Hand-written: no library computes it."""
    terms, ks = [], []
    for r in np.unique(reps):
        v = values[reps == r]
        terms.append((1.0 / v.size + float(ratios[reps == r].mean())) * float(v.var(ddof=1)))
        ks.append(v.size)
    se, df = float(np.sqrt(np.mean(terms))), int(min(ks)) - 1
    mean = float(values.mean())
    q = float(t_dist.ppf(0.5 + level / 2.0, df))
    return mean, se, max(bounds[0], mean - q * se), min(bounds[1], mean + q * se), df


def _noise_and_spread(values: np.ndarray, noise: np.ndarray, ratios: np.ndarray, reps: np.ndarray,
                      level: float, factor: float = NOISE_FACTOR) -> tuple:
    """Mean, SE, interval and df of a positive error's fold mean (``_noise_se``), the interval log(mean) -+ t SE /
    mean transformed back: a low error came with a small spread, and on the raw scale its interval lay below the
    truth in 4.1-4.7% of data sets (docs/statistics.md). The corrected t held too, at 1.6-2.1 times the estimate's
    spread (this at 1.2-1.6)."""
    mean = float(values.mean())
    se, df = _noise_se(values, noise, ratios, reps, factor)
    spread = float(t_dist.ppf(0.5 + level / 2.0, df)) * se / mean
    return mean, se, mean * float(np.exp(-spread)), mean * float(np.exp(spread)), df


def _noise_se(values: np.ndarray, noise: np.ndarray, ratios: np.ndarray, reps: np.ndarray,
             factor: float = NOISE_FACTOR) -> tuple[float, float]:
    """SE and df of a fold mean whose folds' test noise is read from their records. Within one repeat of K folds,
    var = c v / K + (1/K + n_test/n_train) max(0, S² - v): v the folds' mean variance from their test records (read
    from every record, as the AUC's fold DeLong reads it), c = `factor`, S² the K values' variance, of which only
    the excess over v (what other training sets add) is read from K values and corrected as Nadeau & Bengio's t is;
    Satterthwaite's df (inf, the normal's, where S² <= v). With R repeats the mean of the R variances, and the
    fewest df. Hand-written: no library has it."""
    terms, dfs = [], []
    for r in np.unique(reps):
        at = reps == r
        k, v = int(at.sum()), float(noise[at].mean())
        a, b = factor * v / k, (1.0 / k + float(ratios[at].mean())) * max(0.0, float(values[at].var(ddof=1)) - v)
        terms.append(a + b)
        dfs.append((a + b) ** 2 * (k - 1) / b**2 if b > 0 else np.inf)
    return float(np.sqrt(np.mean(terms))), float(min(dfs))


def _named(folds: np.ndarray, names: list[str] | None) -> str:
    """The folds at these positions, by their labels where given."""
    return ", ".join(str(names[i]) if names else str(i) for i in folds)


def fold_mean(metric: str, values: np.ndarray, ratios: np.ndarray, reps: np.ndarray, level: float, n: int,
              bounds: tuple[float, float] = (-np.inf, np.inf), interval: bool = True,
              names: list[str] | None = None, counts: tuple[np.ndarray, np.ndarray] | None = None,
              noise: np.ndarray | None = None, factor: float = NOISE_FACTOR, proportion: str = "wilson",
              patients: float | None = None) -> Estimate:
    """The mean of one metric's per-fold values, with the corrected t interval (``interval``) or without it (the
    reason from WHY_NOT). A fold without the metric (NaN) leaves the row without an estimate, saying which.

    ``counts`` (each fold's numerator and denominator) mark a proportion: its interval is ``_effective``'s, a
    binomial interval (``proportion`` names it: Wilson's or Clopper-Pearson's) at the effective sample size of the
    fold mean's variance, which stays in [0, 1], holds its estimate and is skewed away from the nearer bound. A
    proportion equal in every fold has no variance to read where it is at 0 or 1, or where it reads no test noise
    (the sensitivity and specificity): its interval is the same binomial one at the denominator's ``patients`` (one
    repeat's), each patient one trial.

    ``noise`` (each fold's variance of its value from its test records alone) marks a positive error (MAE, RMSE,
    Brier score): its interval is ``_noise_and_spread``'s at ``factor``, kept within ``bounds``; with ``counts``
    (the accuracy, PPV, NPV) the variance is ``_noise_se``'s; where a fold's noise is NaN (too few patients to read
    it), the corrected t, and ``warnings`` names the fold."""
    values = np.asarray(values, dtype=np.float64)
    extra = {"per_fold": values.tolist(), "n_folds": int(values.size), "estimand": ESTIMAND}
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        return Estimate(metric, float("nan"), None, None, level, FOLD_MEAN_ONLY, n, extra=extra,
                        warnings=[f"{metric} undefined in fold(s) {_named(bad, names)}: no cross-validated value"])
    if not interval:
        return Estimate(metric, float(values.mean()), None, None, level, FOLD_MEAN_ONLY, n, extra=extra,
                        warnings=[WHY_NOT[metric]])
    k = int(np.unique(reps, return_counts=True)[1].min())
    if k < MIN_FOLDS:
        return Estimate(metric, float(values.mean()), None, None, level, FOLD_MEAN_ONLY, n, extra=extra,
                        warnings=[f"no interval: {k} folds give the corrected t {k - 1} degrees of freedom; it was "
                                  f"shown to hold its level with {MIN_FOLDS} (docs/statistics.md)"])
    records = float(np.sum(counts[1])) / np.unique(reps).size if counts is not None else float("nan")
    noisy = noise is not None and bool(np.isfinite(noise).all())
    if counts is not None and np.ptp(values) == 0.0 and (values[0] in (0.0, 1.0) or not noisy):
        # e.g. a PPV of 1 in every fold, which printed no interval: 28 of 500 data sets at 100 patients with the
        # classes apart (docs/statistics.md)
        n_trials = records if patients is None else patients
        lo, hi = binomial_interval(float(values[0]), n_trials, level, proportion)
        method = _proportion_method(proportion, noisy=False, equal=True)
        return Estimate(metric, float(values[0]), lo, hi, level, method, n,
                        extra={**extra, "n_effective": n_trials, "test_train_ratio": float(ratios.mean())})
    if np.ptp(values) == 0.0 and counts is None:  # e.g. an MAE equal in every fold: the t has no spread to read
        # (it printed a zero-width interval)
        return Estimate(metric, float(values.mean()), None, None, level, FOLD_MEAN_ONLY, n, extra=extra,
                        warnings=[f"no interval: {metric} is {values[0]:.3g} in every fold; the corrected t reads "
                                  "the folds' spread, and there is none"])
    if counts is not None:
        extra["test_train_ratio"] = float(ratios.mean())
        if noisy:
            assert noise is not None
            se, df = _noise_se(values, noise, ratios, reps, factor)
            extra.update(noise_factor=factor, per_fold_noise_var=noise.tolist())
        else:
            _, se, _, _, df = _corrected(values, ratios, reps, level, (-np.inf, np.inf))
        lo, hi, n_eff = _effective(float(values.mean()), se, df, records, level, proportion)
        est = Estimate(metric, float(values.mean()), lo, hi, level, _proportion_method(proportion, noisy), n,
                       extra={**extra, "se": se, "df": df, "n_effective": n_eff})
        if noise is not None and not noisy:  # a fold too thin to read its test noise: the corrected t says so
            est.warnings.append(_without_noise(np.flatnonzero(~np.isfinite(noise)), names, metric))
        return est
    if noise is not None and np.isfinite(noise).all():
        mean, se, lo, hi, df = _noise_and_spread(values, noise, ratios, reps, level, factor)
        return Estimate(metric, mean, max(bounds[0], lo), min(bounds[1], hi), level, FOLD_MEAN_NOISE, n, extra={
            **extra, "se": se, "df": df, "noise_factor": factor, "per_fold_noise_var": noise.tolist(),
            "test_train_ratio": float(ratios.mean())})
    mean, se, lo, hi, df = _corrected(values, ratios, reps, level, bounds)
    est = Estimate(metric, mean, lo, hi, level, FOLD_MEAN, n, extra={**extra, "se": se, "df": df,
                                                                     "test_train_ratio": float(ratios.mean())})
    if noise is not None:  # a fold too thin to read its test noise: the corrected t, which needs none, says so
        est.warnings.append(_without_noise(np.flatnonzero(~np.isfinite(noise)), names, metric))
    return est


def _effective(p: float, se: float, df: float, records: float, level: float, method: str
               ) -> tuple[float, float, float]:
    """(low, high, n_eff) of a fold mean of proportions p with standard error `se` and `df` degrees of freedom: the
    binomial interval (`method`: "wilson" or "beta", clustered.binomial_interval) at p with n_eff = p (1 - p) / se²
    trials (at most the denominator's `records`, one repeat's: Kish's design effect, as one model's rows take theirs,
    clustered.exact_effective).

    Why: the corrected t of the per-fold logits of (k + 1/2) / (d + 1), printed before, is centred on their mean
    logit, which near 1 falls short of the mean proportion: perfusion_polar's default run printed a specificity of
    0.993 [0.950, 0.992], and with classes far apart the PPV's interval lay below the truth in 8.9% of data sets at
    100 patients (docs/statistics.md)."""
    n_eff = min(p * (1.0 - p) / se**2, records)
    return (*binomial_interval(p, n_eff, level, method, df), float(n_eff))


# who a fold must hold more than to read its test noise, and the row's name in the warning
_THIN = {"brier": ("one patient of a class", "Brier score"), "mae": ("one patient", "MAE"),
         "rmse": ("one patient", "RMSE"), "ba_bias": ("one patient", "bias"), "ba_loa_low": ("one patient", "limit"),
         "ba_loa_high": ("one patient", "limit"),
         **{m: ("one patient among its denominator's records", m.upper() if m in ("ppv", "npv") else m)
            for m in PROPORTION_NOISE_FACTORS}}


def _without_noise(folds: np.ndarray, names: list[str] | None, metric: str) -> str:
    """Why a noise-reading interval fell back to the corrected t of its per-fold values (which held its level at
    1.2-2.8 times the oracle width, docs/statistics.md): the folds without readable test noise, named."""
    who, row = _THIN[metric]
    return (f"fold(s) {_named(folds, names)} hold {who}, whose test noise cannot be read: the {row} takes the "
            "corrected t of its per-fold values")


def _proportion_noise(hit: np.ndarray, codes: np.ndarray) -> float:
    """One fold's variance of its proportion from its test records (those of the denominator; `hit`: in the
    numerator): the patient-clustered variance of their mean about p~ = (k + 1/2) / (d + 1), not the hits' own
    mean, so that a fold of all hits or none still has noise. NaN with fewer than 2 patients."""
    if np.unique(codes).size < 2:
        return float("nan")
    p = (hit.sum() + 0.5) / (hit.size + 1.0)
    return mean_variance(hit.astype(np.float64), codes, centre=p)[0]


# numerator and denominator of each proportion, as columns of the per-fold (tp, fp, tn, fn) tallies
_PROPORTIONS = {"accuracy": ((0, 2), (0, 1, 2, 3)), "sensitivity": ((0,), (0, 3)), "specificity": ((2,), (2, 1)),
                "ppv": ((0,), (0, 1)), "npv": ((2,), (2, 3))}


def _cells(y: np.ndarray, called: np.ndarray) -> np.ndarray:
    """Each record's cell of the confusion table: records x (tp, fp, tn, fn), booleans."""
    return np.stack([(y == 1) & called, (y == 0) & called, (y == 0) & ~called, (y == 1) & ~called], axis=1)


def _proportion_folds(cells: np.ndarray, parts: list[np.ndarray], codes: np.ndarray,
                      noisy: Iterable[str] = PROPORTION_NOISE_FACTORS
                      ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]]:
    """Each proportion's per-fold numerator k, denominator d, for those `noisy` names test noise on the proportion
    scale (``_proportion_noise`` of the denominator's records; None for the others, which take the corrected t),
    and the denominator's patients."""
    out = {}
    for name, (num, den) in _PROPORTIONS.items():
        of, hit = np.any(cells[:, list(den)], axis=1), np.any(cells[:, list(num)], axis=1)
        noise = (np.array([_proportion_noise(hit[idx][of[idx]], codes[idx][of[idx]]) for idx in parts])
                 if name in noisy else None)
        out[name] = (np.array([hit[idx].sum() for idx in parts], dtype=np.float64),
                     np.array([of[idx].sum() for idx in parts], dtype=np.float64), noise,
                     np.array([np.unique(codes[idx][of[idx]]).size for idx in parts], dtype=np.float64))
    return out


def cv_binary_metrics(y: Any, score: Any, threshold: Any, fold: Any, groups: Any = None,
                      level: float = 0.95) -> dict[str, Estimate]:
    """Accuracy, sensitivity, specificity, PPV, NPV and F1 at ``score >= threshold`` (one threshold per record:
    each fold's, chosen on its training folds), each the mean of its per-fold values with a binomial interval at
    its effective sample size (fold_mean, PROPORTION_INTERVALS), whose variance is, for the accuracy, PPV and NPV,
    their folds' test noise and excess spread (PROPORTION_NOISE_FACTORS), for the sensitivity and specificity the
    corrected t's; F1 without an interval (WHY_NOT). The per-fold counts are in ``extra["per_fold_counts"]``
    (tp, fp, tn, fn)."""
    level = check_level(level)
    yy = as_binary_labels(y)
    s = as_scores(score, n=yy.size)
    thr = np.broadcast_to(np.asarray(threshold, dtype=np.float64), yy.shape)
    parts, ratios, reps, codes = _folds(fold, yy.size, groups)
    cells = _cells(yy, s >= thr)
    tallies = np.array([cells[idx].sum(axis=0) for idx in parts], dtype=np.float64)  # folds x (tp, fp, tn, fn)
    names = [str(np.asarray(fold)[idx[0]]) for idx in parts]
    out = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for name, (k, d, noise, patients) in _proportion_folds(cells, parts, codes).items():
            out[name] = fold_mean(name, k / d, ratios, reps, level, yy.size, names=names, counts=(k, d),
                                  noise=noise, factor=PROPORTION_NOISE_FACTORS.get(name, NOISE_FACTOR),
                                  proportion=PROPORTION_INTERVALS[name],
                                  patients=min(patients[reps == r].sum() for r in np.unique(reps)))
        tp, fp, fn = tallies[:, 0], tallies[:, 1], tallies[:, 3]
        out["f1"] = fold_mean("f1", 2 * tp / (2 * tp + fp + fn), ratios, reps, level, yy.size, interval=False,
                              names=names)
    counts = tallies.astype(int).tolist()
    for est in out.values():
        est.extra["per_fold_counts"] = counts
    return out


def _probabilities(y: Any, prob: Any) -> tuple[np.ndarray, np.ndarray]:
    yy = as_binary_labels(y).astype(np.float64)
    p = as_scores(prob, "prob", n=yy.size)
    if p.min() < 0 or p.max() > 1:
        raise StatsError(f"calibration needs probabilities in [0, 1], got range [{p.min():g}, {p.max():g}]")
    return yy, p


def firth_slope(y: np.ndarray, lp: np.ndarray) -> float:
    """The calibration slope of one fold's scores: the coefficient of lp in logit P(y=1) = a + b lp, fitted with
    Firth's penalty (firthmodels), which removes the maximum-likelihood estimate's O(1/n) bias away from 0 (a mean
    of per-fold maximum-likelihood slopes was 2.29 against a true 0.77 at 20 patients a fold) and stays finite
    when a fold's scores separate its classes. NaN where the fold holds one class or one score."""
    from firthmodels import FirthLogisticRegression  # loaded by the K-fold evaluation only

    if y.min() == y.max() or lp.min() == lp.max():
        return float("nan")
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")  # a non-converged fold shows as an outlying per-fold value
        try:
            fit = FirthLogisticRegression().fit(lp[:, None], y)
        except np.linalg.LinAlgError:
            return float("nan")
    return float(fit.coef_[0])


def _intercept(y: np.ndarray, lp: np.ndarray) -> float:
    """Calibration-in-the-large of one fold: a in logit P(y=1) = a + lp (lp an offset), by statsmodels' GLM."""
    from statsmodels.genmod.api import GLM, families

    if y.min() == y.max():
        return float("nan")
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        res = GLM(y, np.ones((y.size, 1)), family=families.Binomial(), offset=lp).fit()
    return float(res.params[0])


def _class_noise(e: np.ndarray, y: np.ndarray, codes: np.ndarray) -> float:
    """One fold's variance of its mean squared error from its test records, each class's count held fixed (the
    folds are stratified, so the mix of classes is no noise of theirs; over all records it counted the spread between
    the classes, and the interval was 1.5-2.5 times the oracle without signal): per class the patient-clustered
    variance of its mean, weighted (n_class / n)². NaN where a class has one patient there (cv_calibration then
    takes the corrected t)."""
    out = 0.0
    for c in (0.0, 1.0):
        at = y == c
        _, local = np.unique(codes[at], return_inverse=True)
        if local.max(initial=0) < 1:
            return float("nan")
        out += (at.sum() / y.size) ** 2 * mean_variance(e[at], local)[0]
    return out


def _brier_folds(y: np.ndarray, p: np.ndarray, parts: list[np.ndarray], codes: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Each fold's Brier score and its test noise within the classes (``_class_noise``)."""
    squared = [(p[idx] - y[idx]) ** 2 for idx in parts]
    noise = [_class_noise(e, y[idx], codes[idx]) for e, idx in zip(squared, parts)]
    return np.array([e.mean() for e in squared]), np.array(noise)


def cv_calibration(y: Any, prob: Any, fold: Any, groups: Any = None, level: float = 0.95) -> dict[str, Estimate]:
    """Brier score (mean of the per-fold Brier scores; the interval of their test noise within the classes and
    their excess spread, ``_class_noise`` and ``_noise_and_spread``), calibration slope (mean of the per-fold Firth
    slopes) and calibration intercept (mean of the per-fold intercepts); the last two without an interval, each
    saying why (WHY_NOT)."""
    level = check_level(level)
    yy, p = _probabilities(y, prob)
    parts, ratios, reps, codes = _folds(fold, yy.size, groups)
    names = [str(np.asarray(fold)[idx[0]]) for idx in parts]
    lp = logit(np.clip(p, _EPS, 1 - _EPS))
    brier, noise = _brier_folds(yy, p, parts, codes)
    slope = np.array([firth_slope(yy[idx], lp[idx]) for idx in parts])
    intercept = np.array([_intercept(yy[idx], lp[idx]) for idx in parts])
    return {"brier": fold_mean("brier", brier, ratios, reps, level, yy.size, (0.0, 1.0), names=names, noise=noise,
                               factor=BRIER_NOISE_FACTOR),
            "calibration_slope": fold_mean("calibration_slope", slope, ratios, reps, level, yy.size,
                                           interval=False, names=names),
            "calibration_intercept": fold_mean("calibration_intercept", intercept, ratios, reps, level, yy.size,
                                               interval=False, names=names)}


def _noise_fold(d: np.ndarray, codes: np.ndarray) -> dict[str, float]:
    """One fold's patient-clustered variance of its MAE and RMSE from its test records: of the mean of their
    influence values, |d| and d² / (2 RMSE) (the delta method). NaN where the fold holds one patient."""
    _, codes = np.unique(codes, return_inverse=True)
    if codes.max(initial=0) < 1:
        return dict.fromkeys(("mae", "rmse", "bias noise", "sd noise"), float("nan"))
    rmse, bias, sd = float(np.sqrt((d * d).mean())), float(d.mean()), float(d.std(ddof=1))
    return {"mae": mean_variance(np.abs(d), codes)[0],
            "rmse": mean_variance(d * d / (2 * rmse), codes)[0] if rmse > 0 else 0.0,
            # the limits' two parts (``_limits``): the bias's influence d, the SD's (d - bias)² / (2 SD)
            "bias noise": mean_variance(d, codes)[0],
            "sd noise": mean_variance((d - bias) ** 2 / (2 * sd), codes)[0] if sd > 0 else 0.0}


def _limits(diffs: list[np.ndarray], noise: list[dict[str, float]], ratios: np.ndarray, reps: np.ndarray,
            level: float, factor: float = LOA_NOISE_FACTOR) -> dict[str, tuple[float, float, dict]]:
    """The Bland–Altman limits bias -+ z SD with intervals from their two parts' (MOVER: Zou & Donner 2008, Zou 2013):
    the mean bias's by its folds' test noise x `factor` plus their excess spread (``_noise_se``), the mean SD's the
    same on the log scale (``_noise_and_spread``, the RMSE's kind); each limit's distance to a bound is the two
    parts' distances on that side, added in quadrature. The limits' own per-fold values carry the folds' biases,
    which a fitted intercept makes cancel in their mean while they spread widely across folds: the corrected t read
    that spread as the limit's (2.2-2.8 times the oracle width, docs/statistics.md). `diffs`: each fold's
    differences, `noise`: ``_noise_fold`` of each. Per limit (low, high, extra)."""
    bias, sd = np.array([d.mean() for d in diffs]), np.array([d.std(ddof=1) for d in diffs])
    b = float(bias.mean())
    se_b, df_b = _noise_se(bias, np.array([v["bias noise"] for v in noise]), ratios, reps, factor)
    half_b = float(t_dist.ppf(0.5 + level / 2.0, df_b)) * se_b
    m, se_s, lo, hi, df_s = _noise_and_spread(sd, np.array([v["sd noise"] for v in noise]), ratios, reps, level,
                                              factor)
    extra = {"bias_se": se_b, "bias_df": df_b, "sd": m, "sd_ci": [lo, hi], "sd_se": se_s, "sd_df": df_s,
             "noise_factor": factor, "per_fold_bias": bias.tolist(), "per_fold_sd": sd.tolist()}
    low, high = b - LOA_Z * m, b + LOA_Z * m
    return {"ba_loa_low": (low - float(np.hypot(half_b, LOA_Z * (hi - m))),
                           low + float(np.hypot(half_b, LOA_Z * (m - lo))), extra),
            "ba_loa_high": (high - float(np.hypot(half_b, LOA_Z * (m - lo))),
                            high + float(np.hypot(half_b, LOA_Z * (hi - m))), extra)}


def _bias_control_se(y: np.ndarray, diffs: list[np.ndarray], parts: list[np.ndarray], ratios: np.ndarray,
                     reps: np.ndarray, noise: np.ndarray, factor: float = 1.0, corrected: bool = False
                     ) -> tuple[float, float]:
    """SE and df of the Bland–Altman bias's fold mean, its folds' biases regressed on their target contrasts: fold
    k's C_k = (its training records' mean target) - (its test records'), whose mean over folds is 0 (with equal
    folds exactly) while the C_k themselves swing with the test targets' noise. A learner that follows its training
    mean carries C_k in its fold's bias, which the fold mean cancels and the folds' spread does not (the corrected t
    of whole biases was 17-30 times the estimate's spread with a fitted intercept). So the biases are regressed on
    the centred C_k and only their residuals' spread is read, as s²/K (`corrected`: Nadeau & Bengio's
    (1/K + n_test/n_train) s²), plus the folds' test noise of the mean bias, `factor` v/K (`noise`: each fold's
    variance of its mean difference from its records): the most of the targets' overall mean a learner's biases can
    share, which the regression cannot see. t with Satterthwaite's df, the residuals' K - 2. With R repeats the
    mean of the R variances, and the fewest df. Hand-written: no library has it."""
    terms, dfs = [], []
    for r in np.unique(reps):
        at = np.flatnonzero(reps == r)
        members = np.concatenate([parts[j] for j in at])
        k, n, total = at.size, members.size, float(y[members].sum())
        bias = np.array([diffs[j].mean() for j in at])
        contrast = np.array([(total - y[parts[j]].sum()) / (n - parts[j].size) - y[parts[j]].mean() for j in at])
        design = np.c_[np.ones(k), contrast - contrast.mean()]
        residual = bias - design @ np.linalg.lstsq(design, bias, rcond=None)[0]
        spread = float(residual @ residual) / (k - 2) * ((1.0 / k + float(ratios[at].mean())) if corrected else 1.0 / k)
        term = spread + factor * float(noise[at].mean()) / k
        terms.append(term)
        dfs.append(term**2 * (k - 2) / spread**2 if spread > 0 else np.inf)
    return float(np.sqrt(np.mean(terms))), float(min(dfs))


def _agreement_fold(d: np.ndarray, var_y: float) -> dict[str, float]:
    """One fold's agreement of predictions with the truth from its differences d = prediction - truth: MAE, RMSE,
    R² against the run's variance of the target (the pooled R²'s denominator: a fold's own, over 20 patients, biased
    the mean R² by -0.07 in benchmarks/coverage.py), Bland–Altman bias and limits (NaN with fewer than 2 records)."""
    sd = float(d.std(ddof=1)) if d.size > 1 else float("nan")
    bias, mse = float(d.mean()), float((d * d).mean())
    return {"mae": float(np.abs(d).mean()), "rmse": float(np.sqrt(mse)),
            "r2": 1.0 - mse / var_y if var_y > 0 else float("nan"), "ba_bias": bias,
            "ba_loa_low": bias - LOA_Z * sd, "ba_loa_high": bias + LOA_Z * sd}


def cv_agreement(y_true: Any, y_pred: Any, fold: Any, groups: Any = None,
                 level: float = 0.95) -> dict[str, Estimate]:
    """MAE, RMSE, R², Bland–Altman bias (prediction - truth) and limits of a K-fold run's out-of-fold predictions,
    each the mean of its per-fold values (``_agreement_fold``): MAE and RMSE with the interval of their folds' test
    noise and excess spread (``_noise_fold``, ``_noise_and_spread``), the Bland–Altman bias with its folds' biases
    regressed on their target contrasts (``_bias_control_se``; where a fold holds one patient, the corrected t), its
    limits with their bias's and SD's intervals combined (``_limits``), R² with none, saying why (WHY_NOT). The
    per-fold values are in ``extra["per_fold"]``; the bias and limits carry ``extra["loa_coverage"]``."""
    level = check_level(level)
    t = as_scores(y_true, "y_true")
    p = as_scores(y_pred, "y_pred", n=t.size)
    parts, ratios, reps, codes = _folds(fold, t.size, groups)
    names = [str(np.asarray(fold)[idx[0]]) for idx in parts]
    var_y = float(np.var(t))
    diffs = [p[idx] - t[idx] for idx in parts]
    rows = [_agreement_fold(d, var_y) for d in diffs]
    noise = [_noise_fold(d, codes[idx]) for d, idx in zip(diffs, parts)]
    out = {}
    for metric in rows[0]:
        values = np.array([r[metric] for r in rows])
        out[metric] = fold_mean(metric, values, ratios, reps, level, t.size, interval=metric not in WHY_NOT,
                                names=names, noise=np.array([v[metric] for v in noise]) if metric in noise[0] else None,
                                factor=NOISE_FACTORS.get(metric, NOISE_FACTOR))
        if metric.startswith("ba_"):
            out[metric].extra.update({"loa_coverage": LOA_COVERAGE, "difference": "y_pred - y_true"})
    lone = np.flatnonzero([not np.isfinite(v["bias noise"]) for v in noise])
    bias = out["ba_bias"]
    if bias.ci_low is not None and lone.size:  # no test noise to read from a fold of one patient: the corrected t
        bias.warnings.append(_without_noise(lone, names, "ba_bias"))
    elif bias.ci_low is not None:  # else too few folds, or none of their spread: the fold mean alone, saying why
        se, df = _bias_control_se(t, diffs, parts, ratios, reps, np.array([v["bias noise"] for v in noise]),
                                  BIAS_NOISE_FACTOR)
        half = float(t_dist.ppf(0.5 + level / 2.0, df)) * se
        bias.ci_low, bias.ci_high, bias.method = bias.estimate - half, bias.estimate + half, FOLD_MEAN_CONTROL
        bias.extra.update(se=se, df=df, noise_factor=BIAS_NOISE_FACTOR)
    for metric, (lo, hi, extra) in _limits(diffs, noise, ratios, reps, level).items():
        est = out[metric]
        if est.ci_low is None:  # too few folds, or a fold without the value: the fold mean alone, saying why
            continue
        if lone.size:  # the corrected t keeps the row: no test noise to read from a fold of one patient
            est.warnings.append(_without_noise(lone, names, metric))
            continue
        est.ci_low, est.ci_high, est.method = lo, hi, FOLD_MEAN_MOVER
        est.extra.update(extra)
    return out
