"""Checks of a loaded cohort against the study's config, run before any expensive stage.

`cardio validate` lists every problem at once; `cardio run` stops on them before featurizing.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from cardio.data import CardioError, Cohort, make_folds
from cardio.data.cache import write_text_atomic
from cardio.data.cohort import missingness

# The pooled DeLong variance needs two records of each class; a fold's own AUC needs one of each.
MIN_TEST_PER_CLASS = 2


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
    if unit is not None and unit in table.columns:
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
    fold_counts = any(p.startswith("cv.folds=") for p in problems)  # the split cannot be made at all
    if len(values) == 2 and set(values.tolist()) == {0, 1} and not fold_counts:
        problems += split_problems(cohort, config)
    return problems


def split_problems(cohort: Cohort, config: dict) -> list[str]:
    """The configured split, made as the run will make it: each part's patients of each class.

    A holdout test part (or every fold's together) with fewer than two patients of a class has no DeLong
    interval, and a training part without both classes fits nothing: a run would fail at evaluate.
    """
    table, label = cohort.table, cohort.label
    try:
        folds = make_folds(table, config["cv"], label, int(config["seed"]))
    except CardioError as e:
        return [str(e)]
    except ValueError as e:  # scikit-learn's own refusal of a split too small to stratify
        return [f"the split {config['cv']['method']} cannot be made on {table['patient_id'].nunique()} patients "
                f"({' '.join(str(e).split())[:160]})"]
    per_patient = table.groupby("patient_id")[label].max()
    problems = []
    for fold in folds:
        for part, rows in (("training", fold.train), ("test", fold.test)):
            counts = per_patient.loc[table["patient_id"].iloc[rows].unique()].value_counts()
            pos, neg = int(counts.get(1, 0)), int(counts.get(0, 0))
            need = MIN_TEST_PER_CLASS if (part == "test" and config["cv"]["method"] != "kfold") else 1
            if min(pos, neg) < need:
                problems.append(f"the {part} part of {fold.name} would hold {pos} positive and {neg} negative "
                                f"patients; it needs at least {need} of each (more patients, or other cv.ratios)")
    return problems


TIMINGS = "timings"  # <cache>/timings/<plugin>.json: the last finished run's size and time, for validate's estimate


def fits_of(config: dict) -> int:
    """The fits a run makes per model: its folds (x repeats, each x (1 + inner folds)), and the final model."""
    cv = config["cv"]
    fits = int(cv.get("folds", 1)) * int(cv.get("repeats", 1)) if cv["method"] == "kfold" else 1
    fits *= 1 + int(cv.get("inner_folds") or 0)
    return fits + (1 if config.get("final_model") else 0)


def record_timing(cache_dir: Path, plugin: str, n_records: int, fits: int, elapsed_s: float, device: str) -> None:
    """Keep a finished run's size and wall time in the cache (no id, no data): validate scales it."""
    write_text_atomic(Path(cache_dir) / TIMINGS / f"{plugin}.json", json.dumps(
        {"n_records": int(n_records), "fits": int(fits), "elapsed_s": float(elapsed_s), "device": device}))


def time_estimate(cache_dir: Path, plugin: str, n_records: int, fits: int) -> str:
    """The run's wall time, scaled from the last finished run of the plugin in this cache by records and fits."""
    try:
        last = json.loads((Path(cache_dir) / TIMINGS / f"{plugin}.json").read_text())
        scale = n_records / max(int(last["n_records"]), 1) * fits / max(int(last["fits"]), 1)
        minutes = float(last["elapsed_s"]) * scale / 60.0
    except (OSError, ValueError, KeyError, TypeError):
        return f"time: no finished {plugin} run in this cache to scale from"
    return (f"time: about {minutes:,.0f} min (a finished run of {last['n_records']} records and {last['fits']} fits "
            f"on {last['device']} took {float(last['elapsed_s']) / 60:,.1f} min; scaled by records and fits, the "
            "other settings taken as equal)")


def footprint(cohort: Cohort, config: dict | None = None) -> str:
    """What the run will read and make: the files the table names (count, size) and the fits to train."""
    root = Path(cohort.root) if cohort.root else None
    files: set[Path] = set()
    if root is not None:
        for column in cohort.table.columns:
            values = cohort.table[column]
            if values.dtype == object or pd.api.types.is_string_dtype(values):
                for v in values.dropna().astype(str).unique()[:100000]:
                    p = root / v
                    if len(v) < 512 and p.is_file():
                        files.add(p)
    size = sum(p.stat().st_size for p in files)
    text = f"input files: {len(files)}, {size / 1e6:,.1f} MB" if files else ""
    if config is not None:
        folds = fits_of(config) - (1 if config.get("final_model") else 0)
        text += (", " if text else "") + (f"fits per model: {folds} fold(s)"
                                          + (" + the final model" if config.get("final_model") else ""))
        cache = Path(config["cache_dir"]).expanduser() if config.get("cache_dir") else None
        if cache is not None and cache.exists():
            text += f", free at the cache ({cache}): {shutil.disk_usage(cache).free / 1e9:,.1f} GB"
    return text


def summary(cohort: Cohort, config: dict | None = None) -> str:
    """One line describing a cohort that passed its checks, with each target's missing values, the files the
    table names and, given the config, the fits the run will make."""
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
    work = footprint(cohort, config)
    return text + (f"; {work}" if work else "")
