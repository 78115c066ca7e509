"""Decision thresholds (Youden, fixed sensitivity) and metrics at a threshold with Wilson / bootstrap CIs."""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import roc_curve
from statsmodels.stats.proportion import proportion_confint

from cardio_stats.bootstrap import Patients, bootstrap_metric, patient_counts, patients_of
from cardio_stats.result import Estimate, StatsError
from cardio_stats.validation import as_binary_labels, as_scores, check_level, check_n_resamples


def _roc(y: Any, score: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    yy = as_binary_labels(y)
    s = as_scores(score, n=yy.size)
    fpr, tpr, thr = roc_curve(yy, s, drop_intermediate=False)
    # sklearn's first threshold is +inf (nobody positive): never a usable cut-off
    return fpr[1:], tpr[1:], thr[1:]


def youden_threshold(y: Any, score: Any) -> float:
    """Score cut-off maximizing sensitivity + specificity - 1 (positive iff score >= cut-off).

    Fit it on training data only; ties go to the highest cut-off (the most specific one).
    """
    fpr, tpr, thr = _roc(y, score)
    return float(thr[int(np.argmax(tpr - fpr))])


def threshold_for_sensitivity(y: Any, score: Any, target: float) -> float:
    """Highest cut-off whose sensitivity reaches ``target`` (so specificity is as high as possible)."""
    target = float(target)
    if not 0.0 < target <= 1.0:
        raise StatsError(f"target sensitivity must be in (0, 1], got {target}")
    _, tpr, thr = _roc(y, score)
    return float(thr[int(np.argmax(tpr >= target - 1e-12))])


def wilson_ci(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (statsmodels proportion_confint, method="wilson")."""
    level = check_level(level)
    if int(n) != n or int(successes) != successes:
        raise StatsError(f"successes and n must be whole counts, got {successes} and {n}")
    if n <= 0:
        raise StatsError(f"a proportion needs n > 0 records, got n = {n}")
    if not 0 <= successes <= n:
        raise StatsError(f"successes must lie between 0 and n = {n}, got {successes}")
    lo, hi = proportion_confint(int(successes), int(n), alpha=1.0 - level, method="wilson")
    return float(lo), float(hi)


def f1_score_counts(y: np.ndarray, pred: np.ndarray) -> float:
    """F1 = 2TP / (2TP + FP + FN); NaN when there is no positive label and no positive prediction."""
    tp = np.count_nonzero((y == 1) & (pred == 1))
    denom = 2 * tp + np.count_nonzero(y != pred)
    return 2.0 * tp / denom if denom else float("nan")


def _f1_rows(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """f1_score_counts of every row (one bootstrap resample each): the same integer counts, the same division."""
    tp = np.count_nonzero((y == 1) & (pred == 1), axis=1)
    denom = 2 * tp + np.count_nonzero(y != pred, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 2.0 * tp / denom, np.nan)


# numerator and denominator of each proportion, as columns of the (tp, fp, tn, fn) tallies
_PROPORTIONS = {"accuracy": ((0, 2), (0, 1, 2, 3)), "sensitivity": ((0,), (0, 3)), "specificity": ((2,), (2, 1)),
                "ppv": ((0,), (0, 1)), "npv": ((2,), (2, 3))}


#: The proportions whose denominator is a class (their bootstrap keeps each resample's patients of each class, as
#: a proportion conditional on the class is); the others depend on the cohort's event rate, which a stratified
#: bootstrap holds fixed: so resampled, PPV and NPV missed 12-26% and accuracy up to 10% of a fixed model's
#: population values at 40-100 patients (benchmarks/coverage.py's one-fixed-model kinds).
BY_CLASS = ("sensitivity", "specificity")


def _patient_bootstrap(yy: np.ndarray, pred: np.ndarray, patients: Patients, n_resamples: int, seed: int | None,
                       level: float) -> dict[str, tuple[float, float, list[str]]]:
    """Percentile intervals of the five proportions, resampling patients: stratified by patient class for those
    conditional on the class (BY_CLASS), not for the others.

    Vectorized: each resample's (tp, fp, tn, fn) is its patient draw counts times each patient's tallies.
    """
    cells = np.stack([(yy == 1) & (pred == 1), (yy == 0) & (pred == 1), (yy == 0) & (pred == 0),
                      (yy == 1) & (pred == 0)], axis=1).astype(np.float64)
    tallies = np.zeros((patients.n_groups, 4))
    for j in range(4):
        tallies[:, j] = np.bincount(patients.codes, weights=cells[:, j], minlength=patients.n_groups)
    boots = {strata: np.concatenate([counts @ tallies for _, counts in patient_counts(patients, n_resamples, seed,
                                                                                      yy if strata else None)])
             for strata in (True, False)}
    alpha = 100 * (1.0 - level) / 2.0
    out = {}
    for name, (num, den) in _PROPORTIONS.items():
        boot = boots[name in BY_CLASS]
        with np.errstate(invalid="ignore", divide="ignore"):
            values = boot[:, list(num)].sum(axis=1) / boot[:, list(den)].sum(axis=1)
        ok = np.isfinite(values)
        warnings = [] if ok.all() else [f"{name} undefined in {int((~ok).sum())} of {values.size} resamples; "
                                        "those were left out"]
        lo, hi = np.percentile(values[ok], [alpha, 100 - alpha]) if ok.any() else (np.nan, np.nan)
        out[name] = (float(lo), float(hi), warnings)
    return out


def _thresholds(threshold: float | Any, n: int) -> tuple[np.ndarray, Any]:
    """The threshold(s) as an array, and as the metrics record them: one number, or the sorted distinct values."""
    thr = np.asarray(threshold, dtype=np.float64)
    if thr.ndim == 0:
        thr_extra: Any = float(thr)
    elif thr.shape == (n,):
        thr_extra = sorted(set(np.unique(thr).tolist()))
        if len(thr_extra) == 1:
            thr_extra = thr_extra[0]
    else:
        raise StatsError(f"threshold must be one number or one per record ({n}), got shape {thr.shape}")
    if not np.isfinite(thr).all():
        raise StatsError("threshold has NaN or infinite value(s)")
    return thr, thr_extra


def binary_metrics(y: Any, score: Any, threshold: float | Any, level: float = 0.95, n_resamples: int = 2000,
                   seed: int | None = 0, groups: Any = None) -> dict[str, Estimate]:
    """Accuracy, sensitivity, specificity, PPV, NPV (Wilson CIs) and F1 (bootstrap CI) at ``score >= threshold``.

    ``threshold`` is one number or one per record (thresholds fitted per training fold).
    With ``groups`` (patient ids, one per record) and a patient with several records, the five proportions
    get percentile intervals from a bootstrap of patients (stratified by patient class for sensitivity and
    specificity: BY_CLASS) instead of Wilson's, and F1's bootstrap resamples patients too; with one record per
    patient nothing changes.
    """
    level = check_level(level)
    yy = as_binary_labels(y)
    s = as_scores(score, n=yy.size)
    patients = patients_of(groups, yy.size)
    thr, thr_extra = _thresholds(threshold, yy.size)
    pred = (s >= thr).astype(np.int8)
    tp = int(np.count_nonzero((yy == 1) & (pred == 1)))
    fp = int(np.count_nonzero((yy == 0) & (pred == 1)))
    tn = int(np.count_nonzero((yy == 0) & (pred == 0)))
    fn = int(np.count_nonzero((yy == 1) & (pred == 0)))
    counts = {"tp": tp, "fp": fp, "tn": tn, "fn": fn, "threshold": thr_extra}
    parts = {
        "accuracy": (tp + tn, yy.size, "records"),
        "sensitivity": (tp, tp + fn, "positive records"),
        "specificity": (tn, tn + fp, "negative records"),
        "ppv": (tp, tp + fp, "records predicted positive"),
        "npv": (tn, tn + fn, "records predicted negative"),
    }
    out: dict[str, Estimate] = {}
    clustered = patients is not None and not patients.singletons
    boot = _patient_bootstrap(yy, pred, patients, check_n_resamples(n_resamples), seed, level) \
        if patients is not None and clustered else {}
    for name, (k, d, what) in parts.items():
        extra = {**counts, "numerator": k, "denominator": d}
        method = "bootstrap-percentile" if clustered else "wilson"
        resampling = {"seed": seed, "n_resamples": n_resamples} if clustered else {}
        if d == 0:
            out[name] = Estimate(metric=name, estimate=float("nan"), ci_low=None, ci_high=None, level=level,
                                 method=method, n=int(yy.size), extra=extra, **resampling,
                                 warnings=[f"{name} undefined at this threshold: there are no {what}"])
            continue
        if patients is not None and clustered:
            lo, hi, warned = boot[name]
            out[name] = Estimate(metric=name, estimate=k / d, ci_low=lo, ci_high=hi, level=level, method=method,
                                 n=int(yy.size), extra={**extra, **patients.extra()}, warnings=warned, **resampling)
            continue
        lo, hi = wilson_ci(k, d, level)
        out[name] = Estimate(metric=name, estimate=k / d, ci_low=lo, ci_high=hi, level=level, method="wilson",
                             n=int(yy.size), extra=extra)
    # not stratified: F1 moves with the cohort's event rate (stratified, it missed 9-20% of a fixed model's F1)
    f1 = bootstrap_metric(f1_score_counts, yy, pred, n_resamples=n_resamples, seed=seed, level=level,
                          metric="f1", groups=groups, rows=_f1_rows)
    f1.extra.update(counts)
    out["f1"] = f1
    return out


def choose_threshold(y: Any, score: Any, rule: str = "youden") -> float:
    """A decision threshold by rule: "youden", or "sensitivity:T" (highest cut-off with sensitivity >= T).

    Give it scores of rows the model was not fitted on, inside the training fold (an inner split):
    in-sample scores overfit and make the threshold optimistic.
    """
    name, _, arg = str(rule).partition(":")
    if name == "youden" and not arg:
        return youden_threshold(y, score)
    if name == "sensitivity" and arg:
        try:
            target = float(arg)
        except ValueError:
            raise StatsError(f"threshold rule {rule!r}: the target sensitivity must be a number") from None
        return threshold_for_sensitivity(y, score, target)
    raise StatsError(f"unknown threshold rule {rule!r}; use 'youden' or 'sensitivity:0.9'")
