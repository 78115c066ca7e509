"""Decision thresholds (Youden, fixed sensitivity) and metrics at a threshold with Clopper-Pearson CIs."""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import roc_curve
from statsmodels.stats.proportion import proportion_confint

from cardio_stats.bootstrap import patients_of
from cardio_stats.clustered import EXACT_EFFECTIVE, exact_effective, units
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


#: The five proportions' interval with one record a patient (clustered.EXACT_EFFECTIVE with several).
EXACT = "clopper-pearson"


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
    """Accuracy, sensitivity, specificity, PPV, NPV (Clopper-Pearson CIs) and F1 at ``score >= threshold``.

    ``threshold`` is one number or one per record (thresholds fitted per training fold). F1, a ratio of counts
    that is no proportion of trials, gets Clopper-Pearson's interval at its effective sample size
    (clustered.exact_effective: its patient bootstrap missed 5.2-8.0% of a fixed model's F1 at 40-100 patients,
    stratified 9-20%). With ``groups`` (patient ids, one per record) and a patient with several records, the five
    proportions get the same (their patient bootstrap missed 6-8% at 100 patients; benchmarks/coverage.py); with one
    record per patient they are the exact binomial intervals. Clopper-Pearson, not Wilson (these rows' interval
    until issue 53's near-separation cells): Wilson's tails are unequal near 0 and 1, and a sensitivity near 1 had
    its interval wholly below the truth in up to 5.1% of cohorts (exact_effective). ``n_resamples`` and ``seed`` are
    kept for callers; no row resamples any more.
    """
    level = check_level(level)
    check_n_resamples(n_resamples)
    yy = as_binary_labels(y)
    s = as_scores(score, n=yy.size)
    patients = patients_of(groups, yy.size)
    thr, thr_extra = _thresholds(threshold, yy.size)
    pred = (s >= thr).astype(np.int8)
    cells = {"tp": (yy == 1) & (pred == 1), "fp": (yy == 0) & (pred == 1), "tn": (yy == 0) & (pred == 0),
             "fn": (yy == 1) & (pred == 0)}
    tp, fp, tn, fn = (int(np.count_nonzero(cells[k])) for k in ("tp", "fp", "tn", "fn"))
    counts = {"tp": tp, "fp": fp, "tn": tn, "fn": fn, "threshold": thr_extra}
    parts = {
        "accuracy": (("tp", "tn"), ("tp", "fp", "tn", "fn"), "records"),
        "sensitivity": (("tp",), ("tp", "fn"), "positive records"),
        "specificity": (("tn",), ("tn", "fp"), "negative records"),
        "ppv": (("tp",), ("tp", "fp"), "records predicted positive"),
        "npv": (("tn",), ("tn", "fn"), "records predicted negative"),
    }
    out: dict[str, Estimate] = {}
    codes, unit = units(patients, yy.size)
    clustered = bool(unit)
    method = EXACT_EFFECTIVE if clustered else EXACT
    for name, (num, den, what) in parts.items():
        k, d = sum(counts[c] for c in num), sum(counts[c] for c in den)
        extra = {**counts, "numerator": k, "denominator": d}
        if d == 0:
            out[name] = Estimate(metric=name, estimate=float("nan"), ci_low=None, ci_high=None, level=level,
                                 method=method, n=int(yy.size), extra=extra,
                                 warnings=[f"{name} undefined at this threshold: there are no {what}"])
            continue
        if clustered:
            _, lo, hi, n_eff, _ = exact_effective(sum(cells[c] for c in num).astype(float),
                                                  sum(cells[c] for c in den).astype(float), codes, level)
            extra.update(n_effective=n_eff, **unit)
        else:
            lo, hi = map(float, proportion_confint(k, d, alpha=1.0 - level, method="beta"))
        out[name] = Estimate(metric=name, estimate=k / d, ci_low=lo, ci_high=hi, level=level, method=method,
                             n=int(yy.size), extra=extra)
    if 2 * tp + fp + fn == 0:
        out["f1"] = Estimate(metric="f1", estimate=float("nan"), ci_low=None, ci_high=None, level=level,
                             method=EXACT_EFFECTIVE, n=int(yy.size), extra=dict(counts),
                             warnings=["f1 undefined at this threshold: no positive record and no positive call"])
        return out
    f1, lo, hi, n_eff, _ = exact_effective(2.0 * cells["tp"], (2.0 * cells["tp"] + cells["fp"] + cells["fn"]),
                                           codes, level)
    out["f1"] = Estimate(metric="f1", estimate=f1, ci_low=lo, ci_high=hi, level=level, method=EXACT_EFFECTIVE,
                         n=int(yy.size), extra={**counts, "n_effective": n_eff, **unit})
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
