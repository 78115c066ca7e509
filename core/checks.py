"""Checks of a loaded cohort against the study's config, run before any expensive stage.

`cardio validate` lists every problem at once; `cardio run` stops on them before featurizing.
"""
from __future__ import annotations

import pandas as pd

from cardio.cohort import missingness
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
    # A missing label is masked, not a problem: the record is left out of training and of that target's metrics.
    empty = [t for t in cohort.targets if t in table.columns and table[t].notna().sum() == 0]
    if empty:
        others = [c for c in table.columns if c not in (*cohort.targets, "patient_id", "study_id", "record_id")
                  and table[c].notna().any()]
        problems.append(f"target column(s) {empty} hold no value at all (absent from the cohort table, or every "
                        f"cell empty); its columns with values are {others}")
    values = pd.unique(y.dropna())
    if not pd.api.types.is_numeric_dtype(y):
        problems.append(f"the outcome column {label!r} is not numeric (values such as {list(values[:5])}); "
                        "code a binary outcome as 0/1")
    elif len(values) == 1:
        problems.append(f"the outcome column {label!r} is constant ({values[0]!r}): nothing to predict")
    elif len(values) == 2 and set(values.tolist()) != {0, 1}:
        problems.append(f"the binary outcome {label!r} holds {sorted(values.tolist())}; code it as 0/1")
    # One outcome per unit predicted: records of a study (or a patient) predicted as one must agree.
    unit = {"study": "study_id", "patient": "patient_id"}.get(cohort.level)
    if unit in table.columns:
        per_unit = table.groupby(unit)[label].nunique()
        if (per_unit > 1).any():
            problems.append(f"{int((per_unit > 1).sum())} {unit.split('_')[0]}(s) have records with different "
                            f"values of {label!r}")
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
    """One line describing a cohort that passed its checks, with each target's missing values."""
    table, label = cohort.table, cohort.label
    text = f"{len(table)} records of {table['patient_id'].nunique()} patients"
    if "study_id" in table.columns and table["study_id"].nunique() != len(table):
        text += f" in {table['study_id'].nunique()} studies"
    missing = missingness(table, cohort.targets)
    gaps = [f"{r.target} {r.n} present, {r.missing} missing" for r in missing.itertuples() if r.missing]
    if gaps:
        text += "; targets: " + ", ".join(gaps)
    if label in table.columns and table[label].nunique() == 2:
        per_patient = table.groupby("patient_id")[label].max()
        positive, negative = int((per_patient == 1).sum()), int((per_patient == 0).sum())
        text += f"; {label}: {positive} positive, {negative} negative patients"
    return text
