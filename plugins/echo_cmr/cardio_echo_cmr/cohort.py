"""An echo-CMR cohort: labels.csv (one row per clip) read through the core's cohort contract, then one record per
study with the clips of each view.

The table is `SCHEMA`, read by `cardio.cohort.read_table` (kinds, paths confined to the cohort folder, every problem
listed at once); the two checks below are the ones it cannot make: a study's CMR findings, and a view's labels,
must agree between its rows.

Why one record per study: the paper predicts per study, and the view fusion needs one score per view per study.
Each record keeps a tuple of clips per view (several A4C clips of one study are allowed, and a view may be absent);
training uses every clip with its study's labels, and at test time a view's score of a study is the mean of its
clips' scores (each clip itself averaged over its non-overlapping windows), so the fusion sees one score per view.
The cohort's level is therefore "study": patients with several studies keep them as several records, always in the
same fold (splits group by patient).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cardio import Cohort, Features
from cardio.cohort import Column, Problems, Schema, read_table
from cardio_echo_cmr import video
from cardio_echo_cmr.synthetic import VIEWS, cached_cohort

BINARY = ("wma", "lge", "t1_abnormal", "t2_abnormal", "ecv_abnormal")
CONTINUOUS = ("t1_ms", "t2_ms", "ecv_pct")
FLAGS = {"t1_ms": "t1_abnormal", "t2_ms": "t2_abnormal", "ecv_pct": "ecv_abnormal"}  # value -> its abnormal flag
LABEL = "wma"

SCHEMA = Schema(
    columns=(
        Column("view", "category", required=True, values=VIEWS, description="the echo view of the clip"),
        Column("file", "path", required=True,
               description="the clip: a multi-frame ultrasound DICOM or an AVI/MP4 inside the cohort folder"),
        Column("wma_view", "binary",
               description="CMR wall-motion abnormality in the AHA segments this view shows (empty: unknown)"),
        Column("lge_view", "binary", description="CMR LGE in the segments this view shows (empty: unknown)"),
        Column("wma_global", "binary", required=True, target=True,
               description="CMR wall-motion abnormality anywhere (the study's; empty: missing label)"),
        Column("lge_global", "binary", required=True, target=True,
               description="CMR late gadolinium enhancement anywhere (the study's; empty: missing label)"),
        Column("t1_ms", "number", required=True, target=True, low=0,
               description="native T1 (ms) of the study's CMR; empty: missing"),
        Column("t2_ms", "number", required=True, target=True, low=0,
               description="T2 (ms) of the study's CMR; empty: missing"),
        Column("ecv_pct", "number", required=True, target=True, low=0, high=100,
               description="extracellular volume (%) of the study's CMR; empty: missing"),
    ),
    table="labels.csv", level="study", aggregate="mean")

# Values of the study (its CMR), repeated on each of its rows; and values of a view of the study.
STUDY_COLUMNS = ("wma_global", "lge_global", *CONTINUOUS)
VIEW_COLUMNS = ("wma_view", "lge_view")


def _study_values_agree(table: pd.DataFrame, problems: Problems) -> None:
    """A study's CMR findings are one value: rows of one study that disagree are problems (an empty cell is
    filled from the study's other rows)."""
    for col in STUDY_COLUMNS:
        n = table.groupby("study_id")[col].transform("nunique")
        problems.rows((n > 1).to_numpy(), "differs between rows of one study (its CMR has one value)", col)


def _view_values_agree(table: pd.DataFrame, problems: Problems) -> None:
    """The clips of one view in one study show the same segments: their wma_view / lge_view must agree."""
    for col in VIEW_COLUMNS:
        n = table.groupby(["study_id", "view"])[col].transform("nunique")
        problems.rows((n > 1).to_numpy(), "differs between clips of one view in one study", col)


def _clips_readable(table: pd.DataFrame, problems: Problems) -> None:
    """Each clip's header and size (cardio.cine.probe, nothing decoded): a truncated or unreadable clip is a
    listed problem of cardio validate, not a failure minutes into featurizing."""
    from cardio import CardioError
    from cardio.cine import probe

    for i, path in enumerate(table["file"]):
        if path is None or not Path(path).is_file():
            continue  # listed by the reader already
        try:
            probe(path)
        except CardioError as e:
            problems.add(str(e).replace(f"{path}: ", f"{Path(path).name}: "), i + 2, "file")


CHECKS = (_study_values_agree, _view_values_agree, _clips_readable)


def read_clips(root: Path, *, allow_outside: bool = False, log=None) -> pd.DataFrame:
    """labels.csv as typed by SCHEMA, one row per clip (raises CohortProblems listing every problem)."""
    return read_table(root, SCHEMA, allow_outside=allow_outside, log=log, checks=CHECKS)


def _flag(values: pd.Series, threshold: float) -> pd.Series:
    """1.0 at or above the threshold, 0.0 below, NaN where the value is missing."""
    return (values >= threshold).astype(float).where(values.notna())


def studies(clips: pd.DataFrame, thresholds: dict) -> pd.DataFrame:
    """One row per study: record_id (= study_id), patient_id, study_id, video_<VIEW> (a tuple of clip paths, empty
    when the view is absent), wma_<VIEW>, lge_<VIEW>, the global labels and T1/T2/ECV with their abnormal flags at
    the configured thresholds (NaN where missing)."""
    by_study = clips.groupby("study_id", sort=True)
    table = by_study[["patient_id", *STUDY_COLUMNS]].first()  # first non-missing value (they agree: checked)
    table = table.rename(columns={"wma_global": "wma", "lge_global": "lge"})
    for view in VIEWS:
        part = clips[clips["view"] == view].groupby("study_id", sort=True)
        paths = part["file"].agg(tuple).reindex(table.index)
        table[f"video_{view}"] = [p if isinstance(p, tuple) else () for p in paths]
        table[f"wma_{view}"] = part["wma_view"].first().reindex(table.index)
        table[f"lge_{view}"] = part["lge_view"].first().reindex(table.index)
    for value, flag in FLAGS.items():
        table[flag] = _flag(table[value], thresholds[value])
    table = table.reset_index()
    table.insert(0, "record_id", table["study_id"])
    return table


def read_cohort(root: Path, thresholds: dict, *, allow_outside: bool = False, log=None) -> pd.DataFrame:
    """The cohort folder's studies (see `studies`)."""
    return studies(read_clips(root, allow_outside=allow_outside, log=log), thresholds)


def targets(table: pd.DataFrame) -> tuple[str, ...]:
    """What the networks learn: the global labels, T1/T2/ECV, and each view's WMA where the cohort has any."""
    per_view = tuple(f"wma_{v}" for v in VIEWS if table[f"wma_{v}"].notna().any())
    return (*BINARY, *CONTINUOUS, *per_view)


def load(config: dict, ctx) -> Cohort:
    cfg, where = config["echo_cmr"], config["cohort"]["dir"]
    root = Path(where).expanduser() if where else cached_cohort(ctx.cache, cfg["synthetic"])
    table = read_cohort(root, cfg["thresholds"], allow_outside=bool(config["cohort"]["allow_outside_paths"]),
                        log=ctx.log)
    outcomes = tuple(c for c in table.columns if c.startswith(("wma", "lge", "t1", "t2", "ecv")) and c != LABEL)
    return Cohort(table, label=LABEL, root=root, outcomes=outcomes, targets=targets(table), level=SCHEMA.level,
                  aggregate=SCHEMA.aggregate)


def featurize(cohort: Cohort, cfg: dict, ctx) -> Features:
    """Every clip preprocessed once into the clip cache (parallel, progress bar); x[view] holds, per study, the
    tuple of its clips' cache paths."""
    table = cohort.table.copy()
    size = int(cfg["clip"]["size"])
    x, padded = {}, 0
    for view in VIEWS:
        per_study = table[f"video_{view}"].tolist()
        built = iter(video.preprocess_all([p for clips in per_study for p in clips], size, ctx, cfg.get("workers")))
        x[view] = [tuple(next(built) for _ in clips) for clips in per_study]
        need = int(cfg["clip"]["frames"]) * int(cfg["clip"]["period"])
        padded += sum(len(np.load(p, mmap_mode="r")) < need for clips in x[view] for p in clips)
    if padded:
        ctx.log.warning("echo_cmr: %d video(s) are shorter than a clip (%d frames at period %d); their clips are "
                        "padded by repeating the last frame", padded, cfg["clip"]["frames"], cfg["clip"]["period"])
    return Features(table, x=x, label=LABEL, targets=cohort.targets, meta={"padded_videos": padded, "size": size})
