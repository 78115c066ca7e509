"""Predictions at the level they are evaluated: the rows whose target is known, and record scores aggregated to
the study or patient the plugin predicts at. Evaluation, nested CV's refits and predict all stand on it."""
from __future__ import annotations

import numpy as np

from cardio.data import CardioError, Cohort, Predictions
from cardio_stats import aggregate_scores


def labelled(predictions: Predictions) -> Predictions:
    """The rows whose target is known: every metric of a task is computed on its own non-missing rows."""
    table = predictions.table
    return Predictions(table[np.isfinite(table["y_true"].to_numpy(dtype=float))])


def at_level(predictions: Predictions, cohort: Cohort) -> Predictions:
    """Record scores aggregated to the level the plugin predicts at (Cohort.level, by Cohort.aggregate).

    One row per model, task and study (or patient); unchanged when every study has one record. Records of one
    study (patient) whose labels differ are an error naming them: one label cannot stand for them (a plugin whose
    records carry their own targets declares level=record and is evaluated per record, its intervals clustered).
    """
    if cohort.level == "record" or "study_id" not in cohort.table.columns:
        return predictions
    column = "study_id" if cohort.level == "study" else "patient_id"
    ids = dict(zip(cohort.table["record_id"].astype(str), cohort.table[column].astype(str)))
    table = predictions.table
    level_id = table["record_id"].map(ids).fillna(table["record_id"])
    if not level_id.duplicated().any() and level_id.equals(table["record_id"]):
        return predictions
    keys = [c for c in ("model", "task", "kind", "fold", "repeat") if c in table.columns]
    table = table.assign(record_id=level_id)
    group = table[[*keys, "record_id"]].astype(str).agg("|".join, axis=1)
    labels = table.groupby([*keys, "record_id"], dropna=False)["y_true"].nunique()  # missing labels not counted
    if (labels > 1).any():
        units = sorted(set(labels[labels > 1].index.get_level_values("record_id")))
        named = sorted(set(labels[labels > 1].index.get_level_values("task").astype(str))) if "task" in keys else []
        raise CardioError(f"the records of {len(units)} {cohort.level}(s) disagree on the label "
                          f"({', '.join(named) or 'the label'}), so no one label stands for the {cohort.level}; "
                          f"correct cohort.csv (`cardio validate` names the lines: an error names no patient), or "
                          f"give each record its own {column}")
    scores = aggregate_scores(group, table["y_score"], cohort.aggregate)  # in order of first appearance
    first = table.loc[~group.duplicated().to_numpy()].reset_index(drop=True)
    first["y_score"] = scores.to_numpy()
    return Predictions(first)
