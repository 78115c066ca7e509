"""Calibration of predicted risks (Brier score, intercept and slope) and decision curves (net benefit).

CRT is a treatment decision, so the question for a model is not only "does it rank patients"
(AUC) but "are its risks right" and "does acting on it beat treating everyone".
"""
from __future__ import annotations

import warnings as _warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logit
from scipy.stats import norm
from statsmodels.genmod.api import GLM, families  # not statsmodels.api, which loads its time series and plots too
from statsmodels.tools.tools import add_constant

from cardio_stats.bootstrap import patients_of
from cardio_stats.clustered import LOG_T, log_t_mean, units
from cardio_stats.result import Estimate, StatsError
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
    """Brier score (log-scale t interval), calibration intercept and slope (Wald CIs from logistic recalibration).

    Slope: the coefficient of logit(p) in logit P(y=1) = a + b logit(p) (1 is ideal; < 1 means
    over-confident risks). Intercept: calibration-in-the-large, a in logit P(y=1) = a + logit(p)
    (0 is ideal; > 0 means risks too low on average). Both by statsmodels GLM (binomial).

    With ``groups`` (patient ids, one per record) and a patient with several records, the Brier score's SE and the
    Wald intervals are cluster-robust (sandwich) by patient. ``n_resamples`` and ``seed`` are kept for callers.
    """
    level = check_level(level)
    y, p = _probabilities(y, prob)
    patients = patients_of(groups, y.size)
    clustered = patients is not None and not patients.singletons
    lp = logit(np.clip(p, _EPS, 1 - _EPS))
    out = {"brier": _brier_interval(y, p, patients, level)}
    by_patient = patients if clustered else None
    unit = {"n_groups": int(by_patient.n_groups)} if by_patient is not None else {}
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
                                 warnings=[f"not estimable: {e}"])
            continue
        # stability is judged on the model-based SE: a robust one shrinks with the residuals where risks separate
        # the classes (a separated holdout's intercept: model-based SE 4.4, HC0's 0.5)
        why = _unstable(res, b, se, warned)
        if not why and fit_args:
            robust = float(res.bse[coef])
            se = robust if by_patient is not None else max(se, robust)
        if why:  # flagged, not printed: a slope of 481 [-707128, 708091] says only that the fit failed
            out[name] = Estimate(name, float("nan"), None, None, level, wald, len(y),
                                 warnings=[f"not estimable: the recalibration fit is unstable ({why}); "
                                           f"raw value {b:.3g} with SE {se:.3g} not reported", *warned],
                                 extra={**unit, "unstable": True})
            continue
        out[name] = Estimate(name, b, b - z * se, b + z * se, level, wald, len(y), warnings=warned, extra=dict(unit))
    return out


def _brier_interval(y: np.ndarray, p: np.ndarray, patients: Any, level: float) -> Estimate:
    """The Brier score with the log-scale t interval of a mean of per-record losses, patients the clusters
    (clustered.log_t_mean): its patient bootstrap, stratified by class, missed 5.6-9.5% of a fixed model's
    population Brier score at 40-100 patients, unstratified 5.5-9.2%; this 4.6-5.1% at 100 and 300 patients,
    5.5-6.0% at 40 (docs/statistics.md, "One model's rows")."""
    codes, unit = units(patients, y.size)
    est, lo, hi = log_t_mean((p - y) ** 2, codes, level)
    return Estimate("brier", est, lo, hi, level, LOG_T, int(y.size), extra=unit)


#: The calibration intercept's interval with one record a patient (``_covariance``).
ROBUST_INTERCEPT = "logistic recalibration (Wald, the larger of the robust and model-based SE)"


def _covariance(name: str, by_patient: Any) -> tuple[dict, str]:
    """statsmodels' fit arguments for the SE and the method's name of one recalibration fit: cluster-robust by
    patient where patients have several records; else the slope's model-based SE, and for the intercept the larger
    of its robust (HC0) and model-based SEs. The intercept's model, logit P = a + lp with the slope held at 1, is
    wrong whenever the slope is not 1, and its model-based SE then is too: in the data sets with one record a
    patient it missed 10-12% of a fixed model's intercept without signal, HC0 5.3-5.6% and the larger of the two
    3.9-5.6%; where risks nearly separate the classes the robust SE shrinks with the residuals (a holdout with one
    error-free network: 0.48 against the model-based 4.4), which the larger keeps. The slope's two-parameter fit
    held (3.4-5.7%) as it was (benchmarks/coverage.py's one-fixed-model kinds)."""
    if by_patient is not None:
        return ({"cov_type": "cluster", "cov_kwds": {"groups": by_patient.codes}},
                "logistic recalibration (Wald, cluster-robust by patient)")
    if name == "calibration_intercept":
        return {"cov_type": "HC0"}, ROBUST_INTERCEPT
    return {}, "logistic recalibration (Wald)"


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
