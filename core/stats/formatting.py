"""One way to print an estimate with its interval, and a p-value, in tables and figure legends."""
from __future__ import annotations

import math
from typing import Any

from cardio.stats.result import Estimate


def _finite(v: Any) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(float(v))


def format_ci(estimate: Estimate | dict | tuple | None, digits: int = 3, sep: str = ", ") -> str:
    """"0.812 [0.734, 0.890]" from an Estimate, a metrics.json dict or (estimate, low, high); "–" when missing."""
    if estimate is None:
        return "–"
    if isinstance(estimate, Estimate):
        est, lo, hi = estimate.estimate, estimate.ci_low, estimate.ci_high
    elif isinstance(estimate, dict):
        est, lo, hi = estimate.get("estimate"), estimate.get("ci_low"), estimate.get("ci_high")
    else:
        est, lo, hi = estimate
    if not _finite(est):
        return "–"
    if not (_finite(lo) and _finite(hi)):
        return f"{est:.{digits}f}"
    return f"{est:.{digits}f} [{lo:.{digits}f}{sep}{hi:.{digits}f}]"


def format_interval(low: float | None, high: float | None, digits: int = 3, sep: str = ", ") -> str:
    """"[0.734, 0.890]", or "" when either end is missing."""
    if not (_finite(low) and _finite(high)):
        return ""
    return f"[{low:.{digits}f}{sep}{high:.{digits}f}]"


def format_p(p: float | None) -> str:
    """p-values as journals print them: "<0.001" below a thousandth, three decimals otherwise."""
    if p is None or not _finite(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"
