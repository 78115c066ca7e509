"""Agreement of one model's continuous predictions with the truth: MAE, RMSE, R², Bland–Altman bias and limits.

The intervals are those benchmarks/coverage.py's one-fixed-model kinds showed to hold at 40-300 patients with 1-3
records each (docs/statistics.md), patients the units throughout:
- MAE: t on the log scale of the mean absolute difference (clustered.log_t_mean): 4.0-5.5% misses;
- Bland–Altman bias: the mean difference with t and its patient-clustered SE (Bland & Altman 1986, patients as
  units): 4.7-5.8%;
- Bland–Altman limits (bias -+ 1.96 SD): the exact interval of a normal quantile, bias + SD x (a noncentral t's
  quantiles) / sqrt(n), at the effective sample size the clustering leaves (Carkeet 2015): 3.4-5.8%, each tail
  <= 3.1%;
- RMSE and R²: none, and the row says why. The patient bootstrap these rows had missed 5.0-7.8% at 100 patients
  and up to 11.6% at 40 (the limits 7.3-11.6%, one tail 8.6-10.4%); RMSE's log-scale t still missed 6.7% at 100
  patients with several records each, a chi-square form 6.3%.
Hand-written: no Python library gives these intervals with patients as clusters.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import nct, norm
from scipy.stats import t as t_dist

from cardio_stats.bootstrap import patients_of
from cardio_stats.clustered import LOG_T, log_t_mean, mean_variance, units
from cardio_stats.result import Estimate, StatsError
from cardio_stats.validation import as_scores, check_level, check_n_resamples

# Bland–Altman limits of agreement cover 95% of differences by convention, whatever the CI level.
LOA_COVERAGE = 0.95
LOA_Z = float(norm.ppf(0.5 + LOA_COVERAGE / 2.0))  # the limits: bias -+ LOA_Z SD of the differences
BIAS_T = "t, patient-clustered SE"
LOA_EXACT = "exact, noncentral t at the effective sample size (Carkeet 2015)"
NO_INTERVAL = "no interval"
#: Why RMSE and R² of one model's predictions carry no interval (module docstring).
WHY_NOT = {
    "rmse": ("no interval: the patient bootstrap missed 5.0-7.8% of a fixed model's RMSE at 100 patients and the "
             "log-scale t 6.7% (benchmarks/coverage.py); the MAE's interval carries the error"),
    "r2": ("no interval: the patient bootstrap missed 6.0-8.0% of a fixed model's R² at 40-100 patients "
           "(benchmarks/coverage.py); the MAE's interval carries the error"),
}


def _limits(d: np.ndarray, var_mean: float, level: float) -> dict[str, tuple[float, float, float]]:
    """The two limits of agreement and their exact intervals: with n_eff = SD^2 / var_mean (the records' worth of
    independent differences; at most the records), bias + SD k, k the noncentral t(n_eff - 1, +-z sqrt(n_eff))
    quantiles over sqrt(n_eff)."""
    bias, sd = float(d.mean()), float(d.std(ddof=1))
    n_eff = min(float(d.size), sd**2 / var_mean) if var_mean > 0 else float(d.size)
    alpha = (1.0 - level) / 2.0
    out = {}
    for name, sign in (("ba_loa_low", -1.0), ("ba_loa_high", 1.0)):
        k = nct.ppf([alpha, 1.0 - alpha], n_eff - 1.0, sign * LOA_Z * np.sqrt(n_eff)) / np.sqrt(n_eff)
        out[name] = (bias + sign * LOA_Z * sd, bias + sd * float(k[0]), bias + sd * float(k[1]))
    return out


def agreement(y_true: Any, y_pred: Any, n_resamples: int = 2000, seed: int | None = 0,
              level: float = 0.95, groups: Any = None) -> dict[str, Estimate]:
    """MAE, RMSE, R², Bland–Altman bias (prediction − truth) and 95% limits of one model's predictions, with the
    intervals of the module docstring (none for RMSE and R², saying why). With ``groups`` (patient ids, one per
    record) patients are the units of every interval; with one record per patient the numbers are those of
    ``groups=None``. ``n_resamples`` and ``seed`` are kept for callers: no row resamples any more."""
    level = check_level(level)
    check_n_resamples(n_resamples)
    t = as_scores(y_true, "y_true")
    p = as_scores(y_pred, "y_pred", n=t.size)
    if t.size < 3:
        raise StatsError(f"agreement needs at least 3 records, got {t.size}")
    patients = patients_of(groups, t.size)
    if patients is not None and patients.n_groups < 3:
        raise StatsError(f"agreement over patients needs at least 3 patients, got {patients.n_groups}")
    codes, unit = units(patients, t.size)
    d = p - t
    ss_tot = float(((t - t.mean()) ** 2).sum())
    mse = float((d * d).mean())
    var_mean, g = mean_variance(d, codes)
    q = float(t_dist.ppf(0.5 + level / 2.0, g - 1))
    bias, se = float(d.mean()), float(np.sqrt(var_mean))
    rows: dict[str, tuple[float, float | None, float | None, str]] = {
        "mae": (*log_t_mean(np.abs(d), codes, level), LOG_T),
        "rmse": (float(np.sqrt(mse)), None, None, NO_INTERVAL),
        "r2": (1.0 - mse * t.size / ss_tot if ss_tot > 0 else float("nan"), None, None, NO_INTERVAL),
        "ba_bias": (bias, bias - q * se, bias + q * se, BIAS_T),
        **{k: (*v, LOA_EXACT) for k, v in _limits(d, var_mean, level).items()},
    }
    out: dict[str, Estimate] = {}
    for k, (est, lo, hi, method) in rows.items():
        warnings = [WHY_NOT[k]] if k in WHY_NOT else []
        if not np.isfinite(est):
            warnings = [f"{k} undefined: y_true is constant over all {t.size} records"]
            lo = hi = None
        extra = {"loa_coverage": LOA_COVERAGE, "difference": "y_pred - y_true"} if k.startswith("ba_") else {}
        out[k] = Estimate(metric=k, estimate=float(est), ci_low=lo, ci_high=hi, level=level, method=method,
                          n=int(t.size), warnings=warnings, extra={**extra, **unit})
    return out
