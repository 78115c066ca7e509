"""Agreement of a continuous prediction with the truth: MAE, RMSE, R², Bland–Altman bias/limits, bootstrap CIs."""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import norm

from cardio_stats.bootstrap import patient_counts, patients_of, resample_indices
from cardio_stats.result import Estimate, StatsError
from cardio_stats.validation import as_scores, check_level, check_n_resamples

# Bland–Altman limits of agreement cover 95% of differences by convention, whatever the CI level.
LOA_COVERAGE = 0.95


def _agreement_rows(t: np.ndarray, d: np.ndarray) -> dict[str, np.ndarray]:
    """All six statistics for every row of (truth, difference) at once; rows are resamples."""
    n = t.shape[1]
    bias = d.mean(axis=1)
    sd = d.std(axis=1, ddof=1)
    z = norm.ppf(0.5 + LOA_COVERAGE / 2.0)
    ss_res = np.einsum("ij,ij->i", d, d)
    ss_tot = ((t - t.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.where(ss_tot > 0, 1.0 - ss_res / ss_tot, np.nan)
    return {"mae": np.abs(d).mean(axis=1), "rmse": np.sqrt(ss_res / n), "r2": r2, "ba_bias": bias,
            "ba_loa_low": bias - z * sd, "ba_loa_high": bias + z * sd}


def _weighted_rows(t: np.ndarray, d: np.ndarray, w: np.ndarray) -> dict[str, np.ndarray]:
    """The six statistics for every row of record weights w (how often each record was drawn) at once.

    A record drawn k times counts k times: the same numbers as the expanded resample, up to rounding.
    """
    w = w.astype(np.float64)
    total = w.sum(axis=1)
    bias = w @ d / total
    sd = np.sqrt(np.einsum("ij,ij->i", w, (d[None, :] - bias[:, None]) ** 2) / (total - 1))
    z = norm.ppf(0.5 + LOA_COVERAGE / 2.0)
    ss_res = w @ (d * d)
    t_mean = w @ t / total
    ss_tot = np.einsum("ij,ij->i", w, (t[None, :] - t_mean[:, None]) ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.where(ss_tot > 0, 1.0 - ss_res / ss_tot, np.nan)
    return {"mae": w @ np.abs(d) / total, "rmse": np.sqrt(ss_res / total), "r2": r2, "ba_bias": bias,
            "ba_loa_low": bias - z * sd, "ba_loa_high": bias + z * sd}


def agreement(y_true: Any, y_pred: Any, n_resamples: int = 2000, seed: int | None = 0,
              level: float = 0.95, groups: Any = None) -> dict[str, Estimate]:
    """MAE, RMSE, R², Bland–Altman bias (prediction − truth) and 95% limits, each with a percentile bootstrap CI.

    The bootstrap is vectorized: all resamples are evaluated as rows of one array (no loop over resamples).
    With ``groups`` (patient ids, one per record) patients are resampled with all their records
    (``extra.resampled``); with one record per patient the numbers are those of ``groups=None``.
    """
    level = check_level(level)
    n_resamples = check_n_resamples(n_resamples)
    t = as_scores(y_true, "y_true")
    p = as_scores(y_pred, "y_pred", n=t.size)
    if t.size < 3:
        raise StatsError(f"agreement needs at least 3 records, got {t.size}")
    d = p - t
    point = {k: float(v[0]) for k, v in _agreement_rows(t[None, :], d[None, :]).items()}
    patients = patients_of(groups, t.size)
    if patients is not None and patients.n_groups < 3:
        raise StatsError(f"agreement over patients needs at least 3 patients, got {patients.n_groups}")
    boot: dict[str, list[np.ndarray]] = {k: [] for k in point}
    if patients is None or patients.singletons:
        idx = resample_indices(t.size, n_resamples, seed)
        rows = max(1, 4_000_000 // t.size)
        for start in range(0, n_resamples, rows):
            block = idx[start:start + rows]
            for k, v in _agreement_rows(t[block], d[block]).items():
                boot[k].append(v)
    else:
        for _, counts in patient_counts(patients, n_resamples, seed):
            for k, v in _weighted_rows(t, d, counts[:, patients.codes]).items():
                boot[k].append(v)
    unit = {} if patients is None else patients.extra()
    alpha = (1.0 - level) / 2.0
    out: dict[str, Estimate] = {}
    for k, est in point.items():
        values = np.concatenate(boot[k])
        warnings: list[str] = []
        if not np.isfinite(est):
            warnings.append(f"{k} undefined: y_true is constant over all {t.size} records")
            out[k] = Estimate(metric=k, estimate=float("nan"), ci_low=None, ci_high=None, level=level,
                              method="bootstrap-percentile", n=int(t.size), seed=seed, n_resamples=n_resamples,
                              warnings=warnings, extra=dict(unit))
            continue
        ok = np.isfinite(values)
        if not ok.all():
            warnings.append(f"{k} undefined in {int((~ok).sum())} of {values.size} resamples; those were left out")
        lo, hi = np.percentile(values[ok], [100 * alpha, 100 * (1 - alpha)])
        extra = {"loa_coverage": LOA_COVERAGE, "difference": "y_pred - y_true"} if k.startswith("ba_") else {}
        extra.update(unit)
        out[k] = Estimate(metric=k, estimate=est, ci_low=float(lo), ci_high=float(hi), level=level,
                          method="bootstrap-percentile", n=int(t.size), seed=seed, n_resamples=n_resamples,
                          warnings=warnings, extra=extra)
    return out
