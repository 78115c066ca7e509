"""Result types of the statistics service (one estimate with its interval, one test) and its error."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class StatsError(ValueError):
    """Bad input to a statistics function; the message says what is wrong and how many records."""


def json_safe(value: Any) -> Any:
    """Turn NumPy scalars/arrays into plain Python and NaN/inf into None, so json.dump never fails."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return [json_safe(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


# How a warning starts where the service computed a value and refused it (an unstable fit): format_ci prints it so
NOT_ESTIMABLE = "not estimable"


@dataclass
class Estimate:
    """One number with its confidence interval; ``to_dict()`` is the metrics.json entry."""

    metric: str
    estimate: float
    ci_low: float | None
    ci_high: float | None
    level: float = 0.95
    method: str = ""
    n: int = 0
    seed: int | None = None
    n_resamples: int | None = None
    warnings: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "metric": str(self.metric),
            "estimate": json_safe(self.estimate),
            "ci_low": json_safe(self.ci_low),
            "ci_high": json_safe(self.ci_high),
            "level": json_safe(self.level),
            "method": str(self.method),
            "n": int(self.n),
            "seed": json_safe(self.seed),
            "n_resamples": json_safe(self.n_resamples),
            "warnings": [str(w) for w in self.warnings],
            "extra": json_safe(self.extra),
        }


@dataclass
class TestResult:
    """One hypothesis test: statistic, p-value, method and degrees of freedom where they apply."""

    __test__ = False  # not a pytest test class, despite the name

    name: str
    statistic: float
    p_value: float
    method: str
    df: float | None = None
    n: int = 0
    extra: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "name": str(self.name),
            "statistic": json_safe(self.statistic),
            "p_value": json_safe(self.p_value),
            "method": str(self.method),
            "df": json_safe(self.df),
            "n": int(self.n),
            "extra": json_safe(self.extra),
            "warnings": [str(w) for w in self.warnings],
        }
