"""Input checks shared by the statistics functions: binary labels, finite scores, levels, resample counts."""
from __future__ import annotations

from typing import Any

import numpy as np

from cardio_stats.result import StatsError


def as_binary_labels(y: Any, name: str = "y", require_both: bool = True) -> np.ndarray:
    """Return labels as an int8 array of 0/1; bool and two-valued 0/1 numbers are accepted."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise StatsError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise StatsError(f"{name} is empty: 0 records")
    if arr.dtype == bool:
        out = arr.astype(np.int8)
    else:
        try:
            num = arr.astype(np.float64)
        except (TypeError, ValueError):
            seen = sorted({str(v) for v in arr.tolist()})[:5]
            raise StatsError(f"{name} must be binary 0/1 or bool labels, got values {seen}") from None
        n_nan = int(np.isnan(num).sum())
        if n_nan:
            raise StatsError(f"{name} has {n_nan} missing (NaN) label(s) out of {arr.size} records")
        values = np.unique(num)
        if not np.all(np.isin(values, (0.0, 1.0))):
            shown = [int(v) if v.is_integer() else float(v) for v in values[:6].tolist()]
            raise StatsError(
                f"{name} must contain only the two classes 0 and 1 (or bool); "
                f"found {values.size} distinct value(s) {shown}{' ...' if values.size > 6 else ''}"
            )
        out = num.astype(np.int8)
    if require_both:
        n_pos = int(out.sum())
        if n_pos == 0 or n_pos == out.size:
            only = 1 if n_pos else 0
            raise StatsError(
                f"{name} has only one class: all {out.size} records are {only}; "
                "an AUC or sensitivity/specificity needs both classes"
            )
    return out


def as_scores(score: Any, name: str = "score", n: int | None = None) -> np.ndarray:
    """Return a finite float64 1-D array; NaN/inf or a length mismatch raise StatsError with counts."""
    try:
        arr = np.asarray(score, dtype=np.float64)
    except (TypeError, ValueError):
        raise StatsError(f"{name} must be numeric") from None
    if arr.ndim != 1:
        raise StatsError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if n is not None and arr.size != n:
        raise StatsError(f"length mismatch: {name} has {arr.size} values but the labels have {n}")
    n_nan = int(np.isnan(arr).sum())
    n_inf = int(np.isinf(arr).sum())
    if n_nan or n_inf:
        raise StatsError(
            f"{name} has {n_nan} NaN and {n_inf} infinite value(s) out of {arr.size} records"
        )
    return arr


def check_level(level: float) -> float:
    """Confidence level must lie strictly between 0 and 1."""
    level = float(level)
    if not 0.0 < level < 1.0:
        raise StatsError(f"level must be between 0 and 1 (e.g. 0.95), got {level}")
    return level


def check_n_resamples(n_resamples: int, minimum: int = 10) -> int:
    """A percentile interval from fewer resamples than this is meaningless."""
    if int(n_resamples) != n_resamples or n_resamples < minimum:
        raise StatsError(f"n_resamples must be an integer >= {minimum}, got {n_resamples}")
    return int(n_resamples)
