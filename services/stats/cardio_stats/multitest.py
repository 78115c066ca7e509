"""Multiplicity: a family of tests reported with raw and adjusted p-values side by side."""
from __future__ import annotations

from typing import Any

import numpy as np
from statsmodels.stats.multitest import multipletests

from cardio_stats.result import StatsError

METHODS = {"holm": "holm", "bh": "fdr_bh", "bonferroni": "bonferroni", "none": None}


def adjust_pvalues(p_values: Any, method: str = "holm") -> np.ndarray:
    """Adjusted p-values of one family (statsmodels multipletests); NaNs stay NaN and do not count.

    holm (default): controls the family-wise error; bh: controls the false-discovery rate.
    """
    if method not in METHODS:
        raise StatsError(f"unknown multiplicity adjustment {method!r}; use one of {list(METHODS)}")
    p = np.asarray(p_values, dtype=float).reshape(-1)
    out = p.copy()
    ok = np.isfinite(p)
    if METHODS[method] is not None and ok.any():
        out[ok] = multipletests(p[ok], method=METHODS[method])[1]
    return out
