"""Agreement of a continuous prediction with the truth: MAE, RMSE, R², Bland–Altman bias/limits, bootstrap CIs."""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import norm

from cardio.stats.bootstrap import resample_indices
from cardio.stats.result import Estimate, StatsError
from cardio.stats.validation import as_scores, check_level, check_n_resamples

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


def agreement(y_true: Any, y_pred: Any, n_resamples: int = 2000, seed: int | None = 0,
              level: float = 0.95) -> dict[str, Estimate]:
    """MAE, RMSE, R², Bland–Altman bias (prediction − truth) and 95% limits, each with a percentile bootstrap CI.

    The bootstrap is vectorized: all resamples are evaluated as rows of one array (no loop over resamples).
    """
    level = check_level(level)
    n_resamples = check_n_resamples(n_resamples)
    t = as_scores(y_true, "y_true")
    p = as_scores(y_pred, "y_pred", n=t.size)
    if t.size < 3:
        raise StatsError(f"agreement needs at least 3 records, got {t.size}")
    d = p - t
    point = {k: float(v[0]) for k, v in _agreement_rows(t[None, :], d[None, :]).items()}
    idx = resample_indices(t.size, n_resamples, seed)
    boot: dict[str, list[np.ndarray]] = {k: [] for k in point}
    rows = max(1, 4_000_000 // t.size)
    for start in range(0, n_resamples, rows):
        block = idx[start:start + rows]
        for k, v in _agreement_rows(t[block], d[block]).items():
            boot[k].append(v)
    alpha = (1.0 - level) / 2.0
    out: dict[str, Estimate] = {}
    for k, est in point.items():
        values = np.concatenate(boot[k])
        warnings: list[str] = []
        if not np.isfinite(est):
            warnings.append(f"{k} undefined: y_true is constant over all {t.size} records")
            out[k] = Estimate(metric=k, estimate=float("nan"), ci_low=None, ci_high=None, level=level,
                              method="bootstrap-percentile", n=int(t.size), seed=seed, n_resamples=n_resamples,
                              warnings=warnings)
            continue
        ok = np.isfinite(values)
        if not ok.all():
            warnings.append(f"{k} undefined in {int((~ok).sum())} of {values.size} resamples; those were left out")
        lo, hi = np.percentile(values[ok], [100 * alpha, 100 * (1 - alpha)])
        extra = {"loa_coverage": LOA_COVERAGE, "difference": "y_pred - y_true"} if k.startswith("ba_") else {}
        out[k] = Estimate(metric=k, estimate=est, ci_low=float(lo), ci_high=float(hi), level=level,
                          method="bootstrap-percentile", n=int(t.size), seed=seed, n_resamples=n_resamples,
                          warnings=warnings, extra=extra)
    return out
