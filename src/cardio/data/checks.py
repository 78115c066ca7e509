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
    # an inner fold's training part is fitted as an outer one is (cv.inner_folds): it must hold both classes too
    parts = [(fold, part, rows) for f in folds for fold, part, rows in
             [(f, "training", f.train), (f, "test", f.test), *((i, "training", i.train) for i in f.inner)]]
    for fold, part, rows in parts:
        counts = per_patient.loc[table["patient_id"].iloc[rows].unique()].value_counts()
        pos, neg = int(counts.get(1, 0)), int(counts.get(0, 0))
        need = MIN_TEST_PER_CLASS if (part == "test" and config["cv"]["method"] != "kfold") else 1
        if min(pos, neg) < need:
            problems.append(f"the {part} part of {fold.name} would hold {pos} positive and {neg} negative "
                            f"patients; it needs at least {need} of each (more patients, or other cv.ratios)")
    return problems


TIMINGS = "timings"  # <cache>/timings/<plugin>.json: finished runs' sizes, times and settings, for validate's estimate
KEPT_TIMINGS = 12     # the latest finished run of each of this many settings

# Settings that change what a run costs are every key but these: who, where, what is written about it, and the
# cohort itself (its size enters as the records counted). The estimate names every other key that differs.
FREE_OF_COST = ("seed", "device", "label", "cache_dir", "cohort.", "cv.patients", "cv.test_sites", "cv.column",
                "report.", "executor.", "profiles", "stats.level", "stats.reference", "train.keep_checkpoints",
                "train.tensorboard", "train.checkpoint_every")


def fits_of(config: dict) -> int:
    """The fits a run makes per model: its folds (x repeats, each x (1 + inner folds)), and the final model."""
    cv = config["cv"]
    fits = int(cv.get("folds", 1)) * int(cv.get("repeats", 1)) if cv["method"] == "kfold" else 1
    fits *= 1 + int(cv.get("inner_folds") or 0)
    return fits + (1 if config.get("final_model") else 0)


def cost_settings(config: dict) -> dict[str, str]:
    """Every setting of a config that can change what its run costs (epochs, sizes, models, the profile, the split),
    flattened to `a.b.c -> value` (as YAML writes it)."""
    flat: dict[str, str] = {}

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict) and node:
            for k, v in node.items():
                walk(v, f"{where}{k}.")
        elif not where.startswith(FREE_OF_COST):
            flat[where[:-1]] = json.dumps(node, sort_keys=True, default=str)

    walk(config, "")
    return flat


def _timings(cache_dir: Path, plugin: str) -> list[dict]:
    try:
        kept = json.loads((Path(cache_dir) / TIMINGS / f"{plugin}.json").read_text())
    except (OSError, ValueError):
        return []
    runs = kept.get("runs", [kept]) if isinstance(kept, dict) else []  # an older file held the last run alone
    return [r for r in runs if isinstance(r, dict) and {"n_records", "fits", "elapsed_s"} <= set(r)]


def record_timing(cache_dir: Path, plugin: str, n_records: int, fits: int, elapsed_s: float, device: str,
                  config: dict | None = None) -> None:
    """Keep a finished run's size, wall time and cost settings in the cache (no id, no data): validate scales it."""
    settings = cost_settings(config) if config is not None else {}
    entry = {"n_records": int(n_records), "fits": int(fits), "elapsed_s": float(elapsed_s), "device": device,
             "profile": (config or {}).get("profile"), "settings": settings}
    runs = [r for r in _timings(cache_dir, plugin) if r.get("settings") != settings][-(KEPT_TIMINGS - 1):]
    write_text_atomic(Path(cache_dir) / TIMINGS / f"{plugin}.json", json.dumps({"runs": [*runs, entry]}))


def time_estimate(cache_dir: Path, plugin: str, n_records: int, fits: int, config: dict | None = None) -> str:
    """The run's wall time, scaled by records and fits from a finished run of the plugin in this cache: one with the
    same cost settings where there is one, else the latest, with every setting that differs named (not scaled for:
    the basis is said, not guessed)."""
    runs = _timings(cache_dir, plugin)
    if not runs:
        return f"time: no finished {plugin} run in this cache to scale from"
    settings = cost_settings(config) if config is not None else None
    same = [r for r in runs if settings is not None and r.get("settings") == settings]
    last = (same or runs)[-1]
    try:
        scale = n_records / max(int(last["n_records"]), 1) * fits / max(int(last["fits"]), 1)
        minutes = float(last["elapsed_s"]) * scale / 60.0
    except (ValueError, TypeError):
        return f"time: no finished {plugin} run in this cache to scale from"
    basis = (f"a finished run of {last['n_records']} records and {last['fits']} fits on {last.get('device')}, "
             f"profile {last.get('profile')}, took {float(last['elapsed_s']) / 60:,.1f} min")
    if same:
        return f"time: about {minutes:,.0f} min ({basis}, with these settings; scaled by records and fits)"
    if settings is None or "settings" not in last:
        return (f"time: about {minutes:,.0f} min ({basis}; scaled by records and fits, the other settings taken as "
                "equal)")
    before = last["settings"]
    changed = sorted(k for k in set(before) | set(settings) if before.get(k) != settings.get(k))
    shown = "; ".join(f"{k} {before.get(k, '(none)')} -> {settings.get(k, '(none)')}" for k in changed[:8])
    return (f"time: about {minutes:,.0f} min if the settings below cost nothing ({basis}; scaled by records and fits "
            f"only). Not scaled for, and the estimate's basis is that run alone: {len(changed)} setting(s) that "
            f"drive cost differ: {shown}{' ...' if len(changed) > 8 else ''}")


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
