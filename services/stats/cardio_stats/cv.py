"""Cross-validation summaries: mean, SD, range of one metric across folds, with the per-fold values."""
from __future__ import annotations

import math

import numpy as np

from cardio_stats.result import Estimate, StatsError, json_safe


def summarize_folds(per_fold: list[Estimate]) -> dict:
    """Mean, SD (n-1), min and max of one metric over folds; folds without an estimate are left out with a warning."""
    per_fold = list(per_fold)
    if not per_fold:
        raise StatsError("no folds to summarize")
    if not all(isinstance(e, Estimate) for e in per_fold):
        raise StatsError("summarize_folds expects a list of Estimate objects")
    metrics = sorted({e.metric for e in per_fold})
    if len(metrics) != 1:
        raise StatsError(f"folds report different metrics {metrics}; summarize one metric at a time")
    values = np.array([e.estimate if e.estimate is not None else math.nan for e in per_fold], dtype=np.float64)
    ok = np.isfinite(values)
    warnings = []
    if not ok.all():
        warnings.append(f"{int((~ok).sum())} of {values.size} folds have no {metrics[0]} and were left out")
    used = values[ok]
    if used.size == 0:
        raise StatsError(f"none of the {values.size} folds has a {metrics[0]} estimate")
    return json_safe({
        "metric": metrics[0],
        "n_folds": int(values.size),
        "n_used": int(used.size),
        "mean": float(used.mean()),
        "sd": float(used.std(ddof=1)) if used.size > 1 else None,
        "min": float(used.min()),
        "max": float(used.max()),
        "per_fold": [e.to_dict() for e in per_fold],
        "warnings": warnings,
    })
