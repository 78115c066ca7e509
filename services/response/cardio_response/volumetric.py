"""CRT volumetric response as the papers define it, derived and checked where the cohort table holds its parts.

He et al. (ECG and SPECT) call a patient a responder when LVESV falls by >= 15% from baseline to the echo at 6 months.
The accepted follow-up window, 6 ± 1 months (153 to 213 days), is the SPECT paper's ("at 6 ± 1 month follow up", its
abstract); the ECG paper, from the same centre, says "6 months after CRT". A plugin whose outcome is that response
declares the rule on its `Schema` (`response=`), built from its typed settings (`<plugin>.response`); `read_table`
then, on the typed table: computes the reduction from the baseline and follow-up volumes where both are given,
checks the follow-up window where the implant and follow-up dates are given, derives the label where it is empty,
and checks every given label against the rule.

A contradiction is an error, not a warning: the label is what every metric of the run is measured against, and a
row whose label, reduction, volumes or dates disagree holds a wrong value somewhere that the run cannot tell; a
warning would scroll past in the log while the report's numbers rest on it. A study that defined response otherwise
says so in the settings (threshold, window, column names), and the run records the rule it read by. Each kind of
contradiction is one line for the file: how many rows, and their CSV lines (never a patient's id) with the values.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cardio.config import Settings, setting
from cardio.data.cohort import Column, Problems

#: Days in a month, for the follow-up window.
MONTH_DAYS = 365.25 / 12
#: Rows a contradiction's line names with their values before it counts the rest.
LIMIT = 10


@dataclass(frozen=True)
class VolumetricResponse(Settings):
    """The papers' outcome rule and the columns it reads (`<plugin>.response`): the label = 1 when the LVESV
    reduction (% of baseline) >= threshold_pct, at the follow-up echo months ± tolerance_months after the implant."""

    threshold_pct: float = setting(15.0, "LVESV reduction (% of baseline) at or above which a patient responds (He "
                                         "et al.: 15)", ge=0, le=100)
    months: float = setting(6.0, "follow-up echo, months after the CRT implant (He et al.: 6)", gt=0)
    tolerance_months: float = setting(1.0, "accepted distance from `months` where both dates are given (the SPECT "
                                           "paper: 6 ± 1 months)", ge=0)
    reduction: str = setting("lvesv_reduction_pct", "column of the LVESV reduction (%): given, or computed from the "
                                                    "volumes")
    baseline: str = setting("lvesv", "column of the baseline LVESV (ml)")
    followup: str = setting("lvesv_followup", "column of the LVESV (ml) at the follow-up echo")
    implant_date: str = setting("crt_date", "column of the CRT implant's date")
    followup_date: str = setting("followup_date", "column of the follow-up echo's date")
    rounding_pct: float = setting(0.5, "percentage points a given reduction may differ from the one its volumes "
                                       "give (rounding)", ge=0)

    @property
    def outcomes(self) -> tuple[str, str]:
        """The columns that measure the outcome: never covariates, permuted with the label in a null control."""
        return self.reduction, self.followup

    def columns(self, declared: tuple[Column, ...] = ()) -> tuple[Column, ...]:
        """`declared`, then the rule's columns it lacks (a plugin declares its baseline volume as a covariate)."""
        names = {c.name for c in declared}
        own = (Column(self.reduction, "number", high=100, description="LVESV reduction (%) at follow-up: defines the "
                                                                      "outcome, never a covariate"),
               Column(self.baseline, "number", low=0, description="LV end-systolic volume (ml) at baseline"),
               Column(self.followup, "number", low=0, description="LVESV (ml) at the follow-up echo: with the "
                                                                  "baseline volume it gives the reduction (an outcome "
                                                                  "column)"),
               Column(self.implant_date, "date", description="date of the CRT implant (with followup_date: the "
                                                             "follow-up window is checked)"),
               Column(self.followup_date, "date", description=f"date of the follow-up echo ({self.months:g} ± "
                                                              f"{self.tolerance_months:g} months after the implant)"))
        return (*declared, *(c for c in own if c.name not in names))

    @property
    def text(self) -> str:
        return f"LVESV reduction >= {self.threshold_pct:g}% at {self.months:g} ± {self.tolerance_months:g} months"

    def apply(self, table: pd.DataFrame, problems: Problems, label: str, log: logging.Logger | None = None) -> None:
        """Check and complete `table` in place (the typed table of read_table): the reduction from the volumes, the
        follow-up window, the label `label` where empty; each kind of contradiction is one problem of the file, and
        what was checked is one line of the log."""
        reduction, by_volumes = self._reduction(table, problems)
        dated = self._window(table, problems)
        checked, derived = 0, 0
        if reduction is not None and reduction.notna().any():
            by_rule = (reduction >= self.threshold_pct).astype(float).where(reduction.notna())
            given = table[label] if label in table.columns else pd.Series(np.nan, index=table.index)
            known = given.notna() & by_rule.notna()
            wrong = np.flatnonzero((known & (given != by_rule)).to_numpy())
            if wrong.size:
                problems.add(f"{_rows(wrong, int(known.sum()))} contradict the papers' rule ({self.text}): "
                             + _listed(wrong, lambda i: f"{int(given.iloc[i])} at {reduction.iloc[i]:.1f}%"),
                             None, label)
            fill = given.isna() & by_rule.notna()
            table[label] = given.where(~fill, by_rule)
            checked, derived = int(known.sum()), int(fill.sum())
        if checked or derived or by_volumes or dated:
            (log or logging.getLogger("cardio.run")).info(
                "%s: the papers' rule (%s) checked %d %s against its reduction, %d reduction(s) against their "
                "volumes, %d follow-up date(s) against the window; %s derived for %d row(s)", Path(problems.file).name,
                self.text, checked, label, by_volumes, dated, label, derived)

    def _reduction(self, table: pd.DataFrame, problems: Problems) -> tuple[pd.Series | None, int]:
        """The reduction (%) the label is judged by: given, else from the volumes; a given one the volumes contradict
        is a problem (and judges nothing). And how many given reductions the volumes were compared with."""
        given = table[self.reduction] if self.reduction in table.columns else None
        if self.baseline not in table.columns or self.followup not in table.columns:
            return given, 0
        base, follow = table[self.baseline].astype(float), table[self.followup].astype(float)
        computed = (100.0 * (base - follow) / base).where(base > 0)
        if given is None:
            table[self.reduction] = computed
            return computed, 0
        both = given.notna() & computed.notna()
        disagree = both & ((given - computed).abs() > self.rounding_pct)
        off = np.flatnonzero(disagree.to_numpy())
        if off.size:
            problems.add(f"{_rows(off, int(both.sum()))} differ by more than {self.rounding_pct:g} points from the "
                         f"reduction their {self.baseline} and {self.followup} give: "
                         + _listed(off, lambda i: f"{given.iloc[i]:g}% where {base.iloc[i]:g} -> {follow.iloc[i]:g} "
                                                  f"ml give {computed.iloc[i]:.1f}%"), None, self.reduction)
        filled = given.where(given.notna(), computed)
        table[self.reduction] = filled
        return filled.mask(disagree), int(both.sum())  # a row named for its reduction is not judged by it again

    def _window(self, table: pd.DataFrame, problems: Problems) -> int:
        """Where both dates are given, the follow-up echo lies months ± tolerance after the implant; how many rows
        give both."""
        if self.implant_date not in table.columns or self.followup_date not in table.columns:
            return 0
        days = (pd.to_datetime(table[self.followup_date]) - pd.to_datetime(table[self.implant_date])).dt.days
        months = days / MONTH_DAYS
        outside = np.flatnonzero((months.notna() & ((months - self.months).abs() > self.tolerance_months)).to_numpy())
        if outside.size:
            lo, hi = ((self.months + sign * self.tolerance_months) * MONTH_DAYS for sign in (-1, 1))
            problems.add(f"{_rows(outside, int(months.notna().sum()))} date the follow-up echo outside the rule's "
                         f"{self.months:g} ± {self.tolerance_months:g} months ({np.ceil(lo):.0f} to "
                         f"{np.floor(hi):.0f} days) after {self.implant_date}: "
                         + _listed(outside, lambda i: f"{int(days.iloc[i])} days ({months.iloc[i]:.1f} months)"),
                         None, self.followup_date)
        return int(months.notna().sum())


def _rows(flagged: np.ndarray, checked: int) -> str:
    return f"{flagged.size} of {checked} row(s)"


def _listed(flagged: np.ndarray, value: Callable[[int], str]) -> str:
    """The CSV lines of the flagged rows (header = line 1) with their values, the first LIMIT, then a count."""
    shown = ", ".join(f"line {int(i) + 2} ({value(int(i))})" for i in flagged[:LIMIT])
    return shown + (f", and {flagged.size - LIMIT} more" if flagged.size > LIMIT else "")


#: The synthetic cohorts' implants: He et al.'s enrolment, July 2008 to July 2017 (the SPECT paper).
SYNTHETIC_IMPLANTS = ("2008-07-01", "2017-07-01")


def synthetic_followup(rng: np.random.Generator, baseline: np.ndarray, reduction: np.ndarray,
                       rule: VolumetricResponse) -> dict[str, np.ndarray]:
    """A synthetic cohort's follow-up columns by `rule`'s names, agreeing with the rule: the follow-up volume (ml,
    0.1) that `reduction` (%) leaves of `baseline`, empty where the reduction is; an implant date in He et al.'s
    enrolment; the follow-up echo inside the rule's window (its middle 80%; none where the reduction is empty).
    Draws from `rng` alone, so a generator's other streams are what they were before these columns."""
    n = len(baseline)
    base, red = np.asarray(baseline, dtype=float), np.asarray(reduction, dtype=float)
    start, end = (np.datetime64(d) for d in SYNTHETIC_IMPLANTS)
    implant = start + rng.integers(0, int((end - start).astype(int)), n).astype("timedelta64[D]")
    spread = 0.8 * rule.tolerance_months * MONTH_DAYS
    days = np.round(rule.months * MONTH_DAYS + rng.uniform(-spread, spread, n)).astype("timedelta64[D]")
    implanted = np.asarray(np.datetime_as_string(implant), dtype=object)
    followup = np.asarray(np.datetime_as_string(implant + days), dtype=object)
    followup[np.isnan(red)] = None
    return {rule.followup: np.round(base * (1 - red / 100.0), 1), rule.implant_date: implanted,
            rule.followup_date: followup}
