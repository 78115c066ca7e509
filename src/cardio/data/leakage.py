"""Guards against the label leaking into what a model or a baseline sees, and the null control.

A plugin declares the cohort columns that define or derive from the outcome (`Cohort.outcomes`).
The core refuses them wherever the config names covariates, flags any feature column that predicts
the label almost perfectly, and, for a null control (`cohort.permute_labels: true`), permutes the
label and every outcome column together across patients.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from cardio.data import ID_COLUMNS, CardioError, Cohort, Features
from cardio_stats import auc

LEAK_AUC = 0.99
# Config keys that name the outcome itself, where naming an outcome column is the point.
OUTCOME_KEYS = ("label", "outcome", "outcomes", "task", "tasks", "target", "targets")
# Report keys that only split the finished predictions (no model sees them): an outcome column may be one, e.g.
# perfusion_polar's sex, both a task and the subgroup its bias is checked by.
REPORT_ONLY = ("subgroups", "subgroups_if_present")
# Sections that name the outcome's parts: a plugin's `response` is the papers' rule (cardio_response.volumetric), whose
# columns (the LVESV reduction, the follow-up volume) derive the label.
OUTCOME_SECTIONS = ("response",)


def _strings(node: Any, where: str = ""):
    if isinstance(node, dict):
        for k, v in node.items():
            if k != "profiles":
                yield from _strings(v, f"{where}{k}.")
    elif isinstance(node, (list, tuple)):
        for v in node:
            yield from _strings(v, where)
    elif isinstance(node, str):
        yield where[:-1], node


def check_config(config: dict, cohort: Cohort) -> None:
    """Refuse a config that names an outcome column anywhere but in a key that names the outcome."""
    outcomes = set(cohort.outcomes) | {cohort.label}
    for key, value in _strings(config):
        *sections, last = key.split(".")
        if set(sections) & set(OUTCOME_SECTIONS):
            continue
        if value in outcomes and last not in OUTCOME_KEYS + REPORT_ONLY and not last.endswith(("label", "outcome")):
            raise CardioError(f"config key {key} names {value!r}, which defines or derives from the outcome "
                              f"{cohort.label!r}; a model or baseline given it would see the answer")


def flag_features(features: Features, cohort: Cohort, log: logging.Logger) -> list[str]:
    """Numeric feature columns whose univariate AUC for a binary label is >= 0.99: probable leaks."""

    label = features.label
    if label not in features.table.columns:
        return []
    y = features.table[label]
    if y.nunique(dropna=True) != 2 or y.isna().any():
        return []
    skip = set(ID_COLUMNS) | {label, "site", "split"} | set(cohort.outcomes)
    flagged = []
    for col in features.table.columns:
        x = features.table[col]
        if col in skip or not pd.api.types.is_numeric_dtype(x) or pd.api.types.is_bool_dtype(x) \
                or x.isna().any() or x.nunique() < 2:
            continue
        a = auc((y == y.max()).astype(int).to_numpy(), x.to_numpy(dtype=float))
        if max(a, 1 - a) >= LEAK_AUC:
            flagged.append(f"{col} (univariate AUC {a:.3f})")
    if flagged:
        log.warning("probable label leak: feature column(s) %s predict %r almost perfectly; if they derive from "
                    "the outcome, the plugin should declare them in Cohort.outcomes", ", ".join(flagged), label)
    return flagged


def permute_outcomes(cohort: Cohort, seed: int) -> Cohort:
    """The cohort with its label and outcome columns moved together to randomly chosen other patients.

    Every record of a patient gets the values of one donor patient (its first record), so a patient
    keeps one label and the label's link to the data is broken: a correct pipeline then scores chance.
    """
    table = cohort.table.copy()
    columns = list(dict.fromkeys([cohort.label, *cohort.outcomes]))
    columns = [c for c in columns if c in table.columns]
    first = table.groupby("patient_id", sort=True)[columns].first()
    donors = np.random.default_rng(seed).permutation(len(first))
    shuffled = pd.DataFrame(first.to_numpy()[donors], index=first.index, columns=columns)
    for col in columns:
        table[col] = table["patient_id"].map(shuffled[col]).astype(first[col].dtype)
    return replace(cohort, table=table)  # targets, level, aggregation and the plugin's stage data kept
