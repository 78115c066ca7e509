"""Subgroup analysis: apply one analysis per level of a column (sex, site, age band), recording skipped levels."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd

from cardio.stats.result import StatsError, json_safe

MISSING_LEVEL = "(missing)"


@dataclass
class SubgroupSkipped:
    """A subgroup whose analysis could not be done (e.g. only one outcome class), with the reason."""

    level: str
    n: int
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return json_safe({"subgroup": self.level, "n": self.n, "skipped": True, "warnings": self.warnings})


def by_subgroup(df: pd.DataFrame, column: str, fn: Callable[[pd.DataFrame], Any]) -> dict[str, object]:
    """``fn(sub_df)`` for every level of ``column`` (keys are str; missing values form "(missing)").

    A level on which ``fn`` raises StatsError (one class, too few records) maps to SubgroupSkipped
    with the message, so one small subgroup never aborts the whole analysis.
    """
    if not isinstance(df, pd.DataFrame):
        raise StatsError(f"expected a pandas DataFrame, got {type(df).__name__}")
    if column not in df.columns:
        raise StatsError(f"subgroup column {column!r} not found; available: {list(df.columns)[:20]}")
    if df.empty:
        raise StatsError("no records to split into subgroups")
    out: dict[str, object] = {}
    for level, sub in df.groupby(column, dropna=False, sort=True):
        key = MISSING_LEVEL if pd.isna(level) else str(level)
        try:
            out[key] = fn(sub)
        except StatsError as exc:
            out[key] = SubgroupSkipped(level=key, n=len(sub), warnings=[f"subgroup {column}={key}: {exc}"])
    return out
