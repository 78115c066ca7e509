"""Subgroup analysis: apply one analysis per level of a column (sex, site, age band), recording skipped levels."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

from cardio_stats.result import StatsError, json_safe

MISSING_LEVEL = "(missing)"


@dataclass
class SubgroupSkipped:
    """A subgroup whose analysis could not be done (e.g. only one outcome class), with the reason."""

    level: str
    n: int
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return json_safe({"subgroup": self.level, "n": self.n, "skipped": True, "warnings": self.warnings})


def level_text(value: object) -> str | None:
    """A subgroup level as the cohort table writes it: text as it is (spaces around it dropped), a whole number
    without a decimal point (1, not 1.0: a typed 0/1 column reads back as floats), other numbers as they print;
    None for a missing value (None, NaN, pd.NA or empty text)."""
    if value is None or (not isinstance(value, (list, tuple)) and pd.isna(value)):
        return None
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
        return str(int(number)) if number.is_integer() and abs(number) < 2**53 else repr(number)
    text = str(value).strip()
    return text or None


def _level_order(key: str) -> tuple:
    """Numbers by value, then text, "(missing)" last."""
    try:
        return (key == MISSING_LEVEL, 0, float(key), key)
    except ValueError:
        return (key == MISSING_LEVEL, 1, 0.0, key)


def by_subgroup(df: pd.DataFrame, column: str, fn: Callable[[pd.DataFrame], Any]) -> dict[str, object]:
    """``fn(sub_df)`` for every level of ``column`` (keys are its values as written, level_text; missing values
    form "(missing)").

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
    levels = pd.Series([level_text(v) for v in df[column]], index=df.index, dtype=object).fillna(MISSING_LEVEL)
    groups = dict(list(df.groupby(levels.to_numpy(), sort=False)))
    for key in sorted(groups, key=_level_order):
        sub = groups[key]
        try:
            out[key] = fn(sub)
        except StatsError as exc:
            # n counts records (or the patients predictions were averaged to), not rows: one per model and task
            n = int(sub["record_id"].nunique()) if "record_id" in sub.columns else len(sub)
            out[key] = SubgroupSkipped(level=key, n=n, warnings=[f"subgroup {column}={key}: {exc}"])
    return out
