"""Checks of a loaded cohort against the study's config, run before any expensive stage.

`cardio validate` lists every problem at once; `cardio run` stops on them before featurizing.
"""
from __future__ import annotations

import pandas as pd

from cardio.data import Cohort


def cohort_problems(cohort: Cohort, config: dict) -> list[str]:
    """Every problem found, one short sentence each (empty when the cohort is fit for the study)."""
    table, label, cv = cohort.table, cohort.label, config["cv"]
    problems: list[str] = []
    if len(table) == 0:
        return ["the cohort has no records"]
    if label not in table.columns:
        return [f"the outcome column {label!r} is not in the cohort table (it has {list(table.columns)})"]
    y = table[label]
    if y.isna().any():
        problems.append(f"{int(y.isna().sum())} record(s) have no value in the outcome column {label!r}")
    values = pd.unique(y.dropna())
    if not pd.api.types.is_numeric_dtype(y):
        problems.append(f"the outcome column {label!r} is not numeric (values such as {list(values[:5])}); "
                        "code a binary outcome as 0/1")
    elif len(values) == 1:
        problems.append(f"the outcome column {label!r} is constant ({values[0]!r}): nothing to predict")
    elif len(values) == 2 and set(values.tolist()) != {0, 1}:
        problems.append(f"the binary outcome {label!r} holds {sorted(values.tolist())}; code it as 0/1")
    per_patient = table.groupby("patient_id")[label].nunique()
    if (per_patient > 1).any():
        problems.append(f"{int((per_patient > 1).sum())} patient(s) have records with different outcomes")
    n_patients = table["patient_id"].nunique()
    if cv["method"] == "kfold":
        k = int(cv["folds"])
        if n_patients < k:
            problems.append(f"cv.folds={k} but the cohort has only {n_patients} patients")
        elif len(values) == 2 and cv.get("stratify", True):
            counts = table.groupby("patient_id")[label].max().value_counts()
            if counts.min() < k:
                problems.append(f"cv.folds={k} but the rarer outcome has only {int(counts.min())} patients; "
                                "lower cv.folds")
    return problems


def summary(cohort: Cohort) -> str:
    """One line describing a cohort that passed its checks."""
    table, label = cohort.table, cohort.label
    text = f"{len(table)} records of {table['patient_id'].nunique()} patients"
    if label in table.columns and table[label].nunique() == 2:
        per_patient = table.groupby("patient_id")[label].max()
        positive, negative = int((per_patient == 1).sum()), int((per_patient == 0).sum())
        text += f"; {label}: {positive} positive, {negative} negative patients"
    return text
