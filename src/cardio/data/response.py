"""CRT volumetric response as the papers define it, derived and checked where the cohort table holds its parts.

He et al. (ECG and SPECT) call a patient a responder when LVESV falls by >= 15% from baseline to the echo at 6 months
(the SPECT paper: 6 ± 1 months). A plugin whose outcome is that response declares it on its `Schema` (`response=`);
`read_table` then, on the typed table: computes the reduction from the baseline and follow-up volumes where both
are given (and lists a given reduction they contradict), checks the follow-up window where the implant and follow-up
dates are given, derives the label where it is empty, and lists every row whose given label the rule contradicts.
Problems name the CSV line and the column, never a patient.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cardio.data.cohort import Column, Problems

#: Days in a month, for the follow-up window.
MONTH_DAYS = 365.25 / 12
#: Problems listed per kind before one line counts the rest.
LIMIT = 10


@dataclass(frozen=True)
class VolumetricResponse:
    """The rule and the columns it reads: `label` = 1 when `reduction` (% of baseline LVESV) >= `threshold_pct`,
    the follow-up `months` ± `tolerance_months` after the implant. A given reduction may differ from the one its
    volumes give by `rounding_pct` (percentage points)."""

    label: str = "responder"
    reduction: str = "lvesv_reduction_pct"
    baseline: str = "lvesv"
    followup: str = "lvesv_followup"
    implant_date: str = "crt_date"
    followup_date: str = "followup_date"
    threshold_pct: float = 15.0
    months: float = 6.0
    tolerance_months: float = 1.0
    rounding_pct: float = 0.5

    def columns(self) -> tuple[Column, ...]:
        """The columns a schema declares for the rule beside its baseline volume and reduction."""
        return (Column(self.followup, "number", low=0, description="LVESV (ml) at the follow-up echo: with the "
                                                                  "baseline volume it gives the reduction (an outcome "
                                                                  "column)"),
                Column(self.implant_date, "date", description="date of the CRT implant (with followup_date: the "
                                                              "follow-up window is checked)"),
                Column(self.followup_date, "date", description=f"date of the follow-up echo ({self.months:g} ± "
                                                               f"{self.tolerance_months:g} months after the implant)"))

    @property
    def text(self) -> str:
        return f"LVESV reduction >= {self.threshold_pct:g}% at {self.months:g} ± {self.tolerance_months:g} months"

    def apply(self, table: pd.DataFrame, problems: Problems, log: logging.Logger | None = None) -> None:
        """Check and complete `table` in place (the typed table of read_table): the reduction from the volumes, the
        follow-up window, the label where empty; contradictions are problems of their lines."""
        reduction = self._reduction(table, problems)
        self._window(table, problems)
        if reduction is None or reduction.isna().all():
            return
        by_rule = (reduction >= self.threshold_pct).astype(float).where(reduction.notna())
        given = table[self.label] if self.label in table.columns else pd.Series(np.nan, index=table.index)
        wrong = np.flatnonzero((given.notna() & by_rule.notna() & (given != by_rule)).to_numpy())
        for i in wrong[:LIMIT]:
            problems.add(f"is {int(given.iloc[i])}, but the LVESV reduction of {reduction.iloc[i]:.1f}% makes it "
                         f"{int(by_rule.iloc[i])} by the papers' rule ({self.text})", int(i) + 2, self.label)
        if wrong.size > LIMIT:
            problems.add(f"{wrong.size - LIMIT} more row(s) whose {self.label} contradicts the papers' rule",
                         None, self.label)
        derived = given.isna() & by_rule.notna()
        table[self.label] = given.where(~derived, by_rule)
        if derived.any():
            (log or logging.getLogger("cardio.run")).info(
                "%s derived for %d row(s) by the papers' rule (%s)", self.label, int(derived.sum()), self.text)

    def _reduction(self, table: pd.DataFrame, problems: Problems) -> pd.Series | None:
        """The reduction (%): given, else from the volumes; a given one the volumes contradict is a problem."""
        given = table[self.reduction] if self.reduction in table.columns else None
        if self.baseline not in table.columns or self.followup not in table.columns:
            return given
        base, follow = table[self.baseline].astype(float), table[self.followup].astype(float)
        computed = (100.0 * (base - follow) / base).where(base > 0)
        if given is None:
            table[self.reduction] = computed
            return computed
        off = np.flatnonzero((given.notna() & computed.notna()
                              & ((given - computed).abs() > self.rounding_pct)).to_numpy())
        for i in off[:LIMIT]:
            problems.add(f"is {given.iloc[i]:g}%, but {self.baseline} {base.iloc[i]:g} ml and {self.followup} "
                         f"{follow.iloc[i]:g} ml give {computed.iloc[i]:.1f}%", int(i) + 2, self.reduction)
        filled = given.where(given.notna(), computed)
        table[self.reduction] = filled
        return filled

    def _window(self, table: pd.DataFrame, problems: Problems) -> None:
        """Where both dates are given, the follow-up echo lies months ± tolerance after the implant."""
        if self.implant_date not in table.columns or self.followup_date not in table.columns:
            return
        days = (pd.to_datetime(table[self.followup_date]) - pd.to_datetime(table[self.implant_date])).dt.days
        months = days / MONTH_DAYS
        outside = np.flatnonzero((months.notna() & ((months - self.months).abs() > self.tolerance_months)).to_numpy())
        for i in outside[:LIMIT]:
            problems.add(f"the follow-up echo is {int(days.iloc[i])} days ({months.iloc[i]:.1f} months) after the "
                         f"implant, outside the rule's {self.months:g} ± {self.tolerance_months:g} months",
                         int(i) + 2, self.followup_date)
        if outside.size > LIMIT:
            problems.add(f"{outside.size - LIMIT} more row(s) with the follow-up outside {self.months:g} ± "
                         f"{self.tolerance_months:g} months", None, self.followup_date)
