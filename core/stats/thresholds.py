"""Decision thresholds (Youden, fixed sensitivity) and metrics at a threshold with Wilson / bootstrap CIs."""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import roc_curve
from statsmodels.stats.proportion import proportion_confint

from cardio.stats.bootstrap import bootstrap_metric
from cardio.stats.result import Estimate, StatsError
from cardio.stats.validation import as_binary_labels, as_scores, check_level


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


def binary_metrics(y: Any, score: Any, threshold: float | Any, level: float = 0.95, n_resamples: int = 2000,
                   seed: int | None = 0) -> dict[str, Estimate]:
    """Accuracy, sensitivity, specificity, PPV, NPV (Wilson CIs) and F1 (bootstrap CI) at ``score >= threshold``.

    ``threshold`` is one number or one per record (thresholds fitted per training fold).
    """
    level = check_level(level)
    yy = as_binary_labels(y)
    s = as_scores(score, n=yy.size)
    thr = np.asarray(threshold, dtype=np.float64)
    if thr.ndim == 0:
        thr_extra: Any = float(thr)
    elif thr.shape == (yy.size,):
        thr_extra = sorted(set(np.unique(thr).tolist()))
        if len(thr_extra) == 1:
            thr_extra = thr_extra[0]
    else:
        raise StatsError(f"threshold must be one number or one per record ({yy.size}), got shape {thr.shape}")
    if not np.isfinite(thr).all():
        raise StatsError("threshold has NaN or infinite value(s)")
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
    for name, (k, d, what) in parts.items():
        extra = {**counts, "numerator": k, "denominator": d}
        if d == 0:
            out[name] = Estimate(metric=name, estimate=float("nan"), ci_low=None, ci_high=None, level=level,
                                 method="wilson", n=int(yy.size), extra=extra,
                                 warnings=[f"{name} undefined at this threshold: there are no {what}"])
            continue
        lo, hi = wilson_ci(k, d, level)
        out[name] = Estimate(metric=name, estimate=k / d, ci_low=lo, ci_high=hi, level=level, method="wilson",
                             n=int(yy.size), extra=extra)
    f1 = bootstrap_metric(f1_score_counts, yy, pred, n_resamples=n_resamples, seed=seed, level=level,
                          stratify=yy, metric="f1")
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
