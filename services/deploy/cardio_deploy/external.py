"""What the report of a prediction on a new cohort (`cardio predict`) can evaluate, target by target.

A new cohort need not carry every target the model learnt with both classes: an echo site may have had no abnormal
T2 among its studies, or two patients with an ECV at all. Each such target is named with its counts and the reason
(one class; too few patients for an interval) and left out of the performance section, and every other target is
evaluated as usual: one sparse target never costs the report of the others.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from cardio.data import Predictions, Section

TITLE = "Targets not evaluated on this cohort"
MIN_PER_CLASS = 2  # DeLong's variance (and its clustered form) needs two patients with each class
MIN_REGRESSION = 3  # agreement (MAE, R², Bland-Altman) needs three patients
PLURAL = {"study": "studies", "record": "records", "patient": "patients"}


def _counts(task: object, g: pd.DataFrame, level: str, why: str) -> dict:
    """One target's row of the report: its labelled units, patients, positives, models, and why it is left out."""
    first = g[g["model"] == g["model"].iloc[0]]  # the labels are the task's, whichever model scored them
    binary = first["kind"].iloc[0] == "binary"
    return {"task": str(task), "kind": str(first["kind"].iloc[0]), PLURAL.get(level, level): len(first),
            "patients": int(first["patient_id"].nunique()),
            "positives": int((first["y_true"].to_numpy(dtype=float) == 1).sum()) if binary else None,
            "models": int(g["model"].nunique()), "why": why}


def screen(labelled: Predictions, level: str) -> tuple[Predictions, list[dict]]:
    """(the rows of the tasks that can be evaluated, one row per task that cannot: its counts and why)."""
    table = labelled.table
    skipped = []
    for task, g in table.groupby("task", sort=False):
        why = _why(g[g["model"] == g["model"].iloc[0]], level)
        if why:
            skipped.append(_counts(task, g, level, why))
    names = {s["task"] for s in skipped}
    return Predictions(table[~table["task"].astype(str).isin(names)]), skipped


def _why(g: pd.DataFrame, level: str) -> str | None:
    y = g["y_true"].to_numpy(dtype=float)
    if g["kind"].iloc[0] != "binary":
        n = g["patient_id"].nunique()
        return None if n >= MIN_REGRESSION else (f"too few: {n} patient(s) have a value; agreement (MAE, R², "
                                                 f"Bland–Altman) needs at least {MIN_REGRESSION}")
    if len(np.unique(y)) == 1:
        return (f"one class: all {len(y)} labelled {PLURAL.get(level, level)} are {int(y[0])}, so no AUC, "
                "sensitivity or specificity exists here")
    pos, neg = (g.loc[y == c, "patient_id"].nunique() for c in (1, 0))
    if min(pos, neg) < MIN_PER_CLASS:
        return (f"too few: {pos} patient(s) with a positive and {neg} with a negative label; an AUC's interval "
                f"needs at least {MIN_PER_CLASS} of each")
    return None


def failed(labelled: Predictions, cfg: dict, ctx, level: str) -> list[dict]:
    """The tasks the statistics service refuses on their own (what screen's rules do not foresee), with its
    reason: each is evaluated alone, without figures."""
    out = []
    s = cfg["stats"]
    for task, g in labelled.table.groupby("task", sort=False):
        try:
            ctx.stats.evaluate_predictions(g.drop(columns="repeat", errors="ignore"), level=s["level"],
                                           n_resamples=s["n_resamples"], seed=ctx.seed, reference=s.get("reference"))
        except ctx.stats.StatsError as e:
            out.append(_counts(task, g, level, str(e)))
    return out


def section(skipped: list[dict], level: str, evaluated: bool) -> Section:
    """The report's list of the targets left out, with their counts and why."""
    others = "every other target is evaluated above" if evaluated else "no target of this cohort could be evaluated"
    text = (f"These targets have labels in this cohort but cannot carry the report's metrics, so they are left out "
            f"of it; {others}. Counts are of labelled {PLURAL.get(level, level)} (one model's rows: every model of a "
            "task shares its labels). Their predictions are in predictions.csv all the same.")
    return Section(TITLE, text, tables={"targets not evaluated": pd.DataFrame(skipped)},
                   part="performance")
