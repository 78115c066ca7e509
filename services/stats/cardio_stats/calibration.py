"""Calibration of predicted risks (Brier score, intercept and slope) and decision curves (net benefit).

CRT is a treatment decision, so the question for a model is not only "does it rank patients"
(AUC) but "are its risks right" and "does acting on it beat treating everyone".
"""
from __future__ import annotations

import warnings as _warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit, logit
from scipy.stats import norm
from scipy.stats import t as t_dist
from statsmodels.genmod.api import GLM, families  # not statsmodels.api, which loads its time series and plots too
from statsmodels.tools.tools import add_constant

from cardio_stats.bootstrap import patients_of
from cardio_stats.clustered import LOG_T, log_t_mean, mean_variance, units
from cardio_stats.result import NOT_ESTIMABLE, Estimate, StatsError
from cardio_stats.validation import as_binary_labels, as_scores, check_level

_EPS = 1e-6  # probabilities are clipped this far from 0 and 1 before the logit


def _probabilities(y: Any, prob: Any) -> tuple[np.ndarray, np.ndarray]:
    yy = as_binary_labels(y)
    p = as_scores(prob, "prob", n=yy.size)
    if p.min() < 0 or p.max() > 1:
        raise StatsError(f"calibration needs probabilities in [0, 1], got range [{p.min():g}, {p.max():g}]")
    return yy.astype(float), p


def calibration(y: Any, prob: Any, level: float = 0.95, n_resamples: int = 2000,
                seed: int | None = 0, groups: Any = None) -> dict[str, Estimate]:
    """Brier score (log-scale t interval), calibration intercept (score interval) and slope (Wald interval), the
    last two from logistic recalibration.

    Slope: the coefficient of logit(p) in logit P(y=1) = a + b logit(p) (1 is ideal; < 1 means
    over-confident risks). Intercept: calibration-in-the-large, a in logit P(y=1) = a + logit(p)
    (0 is ideal; > 0 means risks too low on average). Both by statsmodels GLM (binomial).

    With ``groups`` (patient ids, one per record) and a patient with several records, the Brier score's SE, the
    intercept's score variance and the slope's Wald interval are cluster-robust (sandwich) by patient.
    ``n_resamples`` and ``seed`` are kept for callers.
    """
    level = check_level(level)
    y, p = _probabilities(y, prob)
    patients = patients_of(groups, y.size)
    codes, unit = units(patients, y.size)  # patient codes where some patient has several records, else records'
    by_patient = patients if unit else None
    lp = logit(np.clip(p, _EPS, 1 - _EPS))
    out = {"brier": _brier_interval(y, p, codes, unit, level)}
    z = float(norm.ppf((1 + level) / 2))
    fits = {
        "calibration_slope": (add_constant(lp), None, 1),
        "calibration_intercept": (np.ones((len(y), 1)), lp, 0),
    }
    for name, (design, offset, coef) in fits.items():
        fit_args, wald = _covariance(name, by_patient)
        warned: list[str] = []
        try:
            with _warnings.catch_warnings(record=True) as caught:
                _warnings.simplefilter("always")
                res = GLM(y, design, family=families.Binomial(), offset=offset).fit(**fit_args)
            warned = [str(w.message).splitlines()[0] for w in caught]
            # the model-based SE, whatever the fit's covariance: (X'WX)^-1 at the binomial's scale of 1
            b, se = float(res.params[coef]), float(np.sqrt(res.normalized_cov_params[coef, coef] * res.scale))
        except (np.linalg.LinAlgError, ValueError) as e:
            out[name] = Estimate(name, float("nan"), None, None, level, "logistic recalibration", len(y),
                                 warnings=[f"{NOT_ESTIMABLE}: {e}"])
            continue
        # stability is judged on the model-based SE: a robust one shrinks with the residuals where risks separate
        # the classes (a separated holdout's intercept: model-based SE 4.4, HC0's 0.5)
        why = _unstable(res, b, se, warned)
        if not why and name == "calibration_intercept":
            lo, hi = _intercept_score(y, lp, codes, b, z)
            out[name] = Estimate(name, b, lo, hi, level, SCORE_INTERCEPT, len(y), extra=dict(unit),
                                 warnings=warned if lo is not None else [*warned, NO_SCORE_BOUND])
            continue
        if not why and fit_args:  # the slope's where patients have several records
            se = float(res.bse[coef])
        if why:  # flagged, not printed: a slope of 481 [-707128, 708091] says only that the fit failed
            out[name] = Estimate(name, float("nan"), None, None, level, wald, len(y),
                                 warnings=[f"{NOT_ESTIMABLE}: the recalibration fit is unstable ({why}); "
                                           f"raw value {b:.3g} with SE {se:.3g} not reported", *warned],
                                 extra={**unit, "unstable": True})
            continue
        out[name] = Estimate(name, b, b - z * se, b + z * se, level, wald, len(y), warnings=warned, extra=dict(unit))
    return out


#: Near separation the Brier score rests on a few misclassified patients: below this many patients with a record on
#: the wrong side of 0.5 (a loss above 0.25), its upper limit is the larger of the log-t's and a Poisson-type score
#: bound (`_brier_interval`); 10 events is where a count's normal approximation is usually taken to hold.
FEW_ERRORS = 10
#: The loss one unseen misclassified record is taken to add in that bound: a wrong-side loss lies in (0.25, 1].
ERROR_LOSS = 0.5
LOG_T_FEW_ERRORS = (f"{LOG_T}; upper limit a score bound for unseen errors (fewer than {FEW_ERRORS} patients "
                    "misclassified at 0.5)")


def _brier_interval(y: np.ndarray, p: np.ndarray, codes: np.ndarray, unit: dict, level: float,
                    few: int = FEW_ERRORS, error_loss: float = ERROR_LOSS) -> Estimate:
    """The Brier score with the log-scale t interval of a mean of per-record losses (clustered.log_t_mean), `codes`
    and `unit` the records' units as clustered.units gives them: its patient bootstrap, stratified by class, missed
    5.6-9.5% of a fixed model's population Brier score at 40-100 patients, unstratified 5.5-9.2%; this 4.6-5.1% at
    100 and 300 patients, 5.5-6.0% at 40 (docs/statistics.md, "One model's rows").

    Near separation the mean rests on a count of rare large losses, and a cohort that happened to show few of them
    (or none: mmode_septal_flash's default printed 0.000 [0.000, 0.000]) gets an upper limit short of the truth: the
    log-t missed 6.4% (4.2% below) at 100 patients of a model with AUC 0.99, and 14.8% at 40. Where fewer than
    `few` (FEW_ERRORS) patients are misclassified at 0.5, the upper limit is at least m + d with
    d^2 = q^2 (v + d c / g): the variance at the candidate grows with the extra mean as unseen errors of loss
    c = `error_loss` would add it (compound Poisson), v the clustered variance of the mean, g the patients, q t's
    quantile with g - 1 df. With no error it is about q^2 c / g (0.072 at 29 patients). Its misses: 2.6-5.5% in
    every cell at 40-300 patients and AUCs 0.5-0.99, seeds 0 and 1 (docs/statistics.md)."""
    loss = (p - y) ** 2
    est, lo, hi = log_t_mean(loss, codes, level)
    wrong = int(np.unique(codes[loss > 0.25]).size)
    method, extra = LOG_T, {**unit, "misclassified_patients": wrong}
    if wrong < few:
        var, g = mean_variance(loss, codes)
        q = float(t_dist.ppf(0.5 + level / 2.0, g - 1))
        a = q * q * error_loss / g
        bound = min(1.0, est + (a + float(np.sqrt(a * a + 4 * q * q * var))) / 2)
        if bound > hi:
            hi, method = bound, LOG_T_FEW_ERRORS
    return Estimate("brier", est, lo, hi, level, method, int(y.size), extra=extra)


#: The calibration intercept's interval (``_intercept_score``).
SCORE_INTERCEPT = ("logistic recalibration (score interval, the larger of the patient-clustered robust and "
                   "model-based variance)")
NO_SCORE_BOUND = ("no interval: the score statistic never leaves +-z on one side (too few records of a class to "
                  "bound the intercept)")


def _covariance(name: str, by_patient: Any) -> tuple[dict, str]:
    """statsmodels' fit arguments for the SE and the method's name of one recalibration fit: cluster-robust by
    patient where patients have several records, else model-based (the slope's; the intercept's interval is
    _intercept_score's, its fit gives the estimate and the stability check)."""
    if name == "calibration_intercept":
        return {}, SCORE_INTERCEPT
    if by_patient is not None:
        return ({"cov_type": "cluster", "cov_kwds": {"groups": by_patient.codes}},
                "logistic recalibration (Wald, cluster-robust by patient)")
    return {}, "logistic recalibration (Wald)"


def _intercept_score(y: np.ndarray, lp: np.ndarray, codes: np.ndarray, a_hat: float,
                     z: float) -> tuple[float | None, float | None]:
    """The intercepts a of logit P = a + lp whose score statistic U(a) / sqrt(V(a)) lies within +-z: U(a) the sum
    of residuals y - expit(a + lp), V(a) the larger of its patient-clustered variance (g / (g - 1) times the sum of
    squared per-patient residual sums; records' where each patient has one) and the model-based sum of p (1 - p),
    both at the candidate a. (None, None) where one side never reaches z (NO_SCORE_BOUND).

    Why a score interval: the Wald interval takes its SE at the estimate, and near separation (risks near 0 and 1,
    the SE resting on a few misclassified records) it missed 7.2% at 100 patients of a model with AUC 0.99 and 10.0%
    at 40. Why the larger variance: the model behind the intercept (slope held at 1) is wrong whenever the slope is
    not 1, so the model-based one alone is too (10-12% misses without signal); the robust one alone shrinks with the
    residuals where risks separate. Its misses: docs/statistics.md, "One model's rows". Hand-written: statsmodels
    inverts no score test for a GLM with an offset."""
    n_groups = int(np.count_nonzero(np.bincount(codes)))

    def stat(a: float) -> float:
        p = expit(a + lp)
        r = y - p
        sums = np.bincount(codes, weights=r)
        robust = n_groups / max(n_groups - 1, 1) * float(sums @ sums)
        return float(r.sum()) / np.sqrt(max(robust, float((p * (1 - p)).sum()), 1e-300))

    def crossing(target: float, step: float) -> float | None:
        """Where stat (decreasing in a) crosses target, walking out from the estimate in growing steps."""
        near = a_hat
        for _ in range(60):
            far = near + step
            if (stat(far) - target) * (stat(near) - target) <= 0:
                return float(brentq(lambda a: stat(a) - target, min(near, far), max(near, far), xtol=1e-10))
            near, step = far, step * 1.6
        return None

    lo, hi = crossing(z, -0.25), crossing(-z, 0.25)
    return (lo, hi) if lo is not None and hi is not None else (None, None)


MAX_SE = 5.0  # on the logit scale: a Wald interval wider than about 20 units carries no information


def _unstable(res: Any, b: float, se: float, warned: list[str]) -> str:
    """Why a logistic recalibration cannot be reported ('' when it can): no convergence, separation, a huge SE."""
    if not getattr(res, "converged", True):
        return "it did not converge"
    if any("separation" in w.lower() for w in warned):
        return "the scores separate the classes perfectly"
    if not np.isfinite(b) or not np.isfinite(se) or se > MAX_SE:
        return f"standard error above {MAX_SE:g}"
    return ""


def decision_curve(y: Any, prob: Any, thresholds: Any = None) -> pd.DataFrame:
    """Net benefit of treating patients whose risk >= t, against treating all and treating none.

    net benefit = TP/n - FP/n * t / (1 - t) (Vickers & Elkin 2006); treat-none is 0.
    """
    y, p = _probabilities(y, prob)
    t = np.asarray(np.arange(0.05, 0.96, 0.01) if thresholds is None else thresholds, dtype=float)
    if ((t <= 0) | (t >= 1)).any():
        raise StatsError("decision-curve thresholds must lie strictly between 0 and 1")
    n, prevalence = len(y), y.mean()
    treat = p[None, :] >= t[:, None]
    tp = (treat & (y[None, :] == 1)).sum(axis=1) / n
    fp = (treat & (y[None, :] == 0)).sum(axis=1) / n
    odds = t / (1 - t)
    return pd.DataFrame({"threshold": t, "model": tp - fp * odds, "treat_all": prevalence - (1 - prevalence) * odds,
                         "treat_none": 0.0})
