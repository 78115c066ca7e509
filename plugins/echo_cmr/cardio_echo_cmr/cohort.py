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

Per-view labels come from `wma_view`/`lge_view`, or, where those are empty, from a 17-segment CMR report
(`wma_s1..wma_s17`, `lge_s1..lge_s17`) through cardio.aha17's map of the segments each view shows. With
`echo_date` and `cmr_date`, a study whose CMR lies more than `echo_cmr.max_days` from its echo keeps its clips (they
are still predicted) but loses its CMR labels: the pair is not used for training or scoring (the paper's rule).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cardio import Cohort, Features, aha17
from cardio.cohort import Column, Problems, Schema, read_table
from cardio_echo_cmr import video
from cardio_echo_cmr.synthetic import VIEWS, cached_cohort

BINARY = ("wma", "lge", "t1_abnormal", "t2_abnormal", "ecv_abnormal")
CONTINUOUS = ("t1_ms", "t2_ms", "ecv_pct")
FLAGS = {"t1_ms": "t1_abnormal", "t2_ms": "t2_abnormal", "ecv_pct": "ecv_abnormal"}  # value -> its abnormal flag
LABEL = "wma"
LABEL_PREFIXES = ("wma", "lge", "t1", "t2", "ecv")  # columns holding a CMR finding (labels, never covariates)

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
        Column("echo_date", "date", description="date of the echo study (with cmr_date: pairs over "
                                                "echo_cmr.max_days apart lose their CMR labels)"),
        Column("cmr_date", "date", description="date of the CMR the study's labels come from"),
        *(Column(f"{f}_s{k}", "binary", description=f"CMR {f.upper()} in AHA segment {k} ({aha17.NAMES[k - 1]}); "
                                                    f"fills {f}_view where that is empty")
          for f in ("wma", "lge") for k in range(1, aha17.N_SEGMENTS + 1)),
    ),
    table="labels.csv", level="study", aggregate="mean")

# Values of the study (its CMR), repeated on each of its rows; and values of a view of the study.
STUDY_COLUMNS = ("wma_global", "lge_global", *CONTINUOUS)
SEGMENT_COLUMNS = {f: tuple(f"{f}_s{k}" for k in range(1, aha17.N_SEGMENTS + 1)) for f in ("wma", "lge")}
DATE_COLUMNS = ("echo_date", "cmr_date")
VIEW_COLUMNS = ("wma_view", "lge_view")


def _study_values_agree(table: pd.DataFrame, problems: Problems) -> None:
    """A study's CMR findings are one value: rows of one study that disagree are problems (an empty cell is
    filled from the study's other rows)."""
    present = [c for c in (*DATE_COLUMNS, *SEGMENT_COLUMNS["wma"], *SEGMENT_COLUMNS["lge"]) if c in table]
    for col in (*STUDY_COLUMNS, *present):
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


def _from_segments(by_study, finding: str, view: str, index: pd.Index) -> pd.Series:
    """A view's finding from the study's 17-segment columns (NaN where they do not decide it)."""
    cols = SEGMENT_COLUMNS[finding]
    if not all(c in by_study.obj for c in cols):
        return pd.Series(np.nan, index=index)
    report = by_study[list(cols)].first().reindex(index).to_numpy(float)
    return pd.Series(aha17.view_finding(report, view), index=index)


def unpaired(table: pd.DataFrame, max_days: float) -> np.ndarray:
    """Studies whose CMR is more than max_days from the echo (both dates given); False where a date is missing."""
    if not all(c in table for c in DATE_COLUMNS):
        return np.zeros(len(table), bool)
    cmr, echo = (pd.to_datetime(table[c], errors="coerce") for c in ("cmr_date", "echo_date"))  # absent: all NaT
    days = (cmr - echo).dt.days.abs().to_numpy(dtype=float, na_value=np.nan)
    return np.nan_to_num(days, nan=0.0) > max_days


def studies(clips: pd.DataFrame, thresholds: dict, max_days: float = 30) -> pd.DataFrame:
    """One row per study: record_id (= study_id), patient_id, study_id, video_<VIEW> (a tuple of clip paths, empty
    when the view is absent), wma_<VIEW>, lge_<VIEW>, the global labels and T1/T2/ECV with their abnormal flags at
    the configured thresholds (NaN where missing; every CMR label NaN where the pair is over max_days apart)."""
    by_study = clips.groupby("study_id", sort=True)
    dates = [c for c in DATE_COLUMNS if c in clips]
    table = by_study[["patient_id", *STUDY_COLUMNS, *dates]].first()  # first non-missing value (agree: checked)
    table = table.rename(columns={"wma_global": "wma", "lge_global": "lge"})
    for view in VIEWS:
        part = clips[clips["view"] == view].groupby("study_id", sort=True)
        paths = part["file"].agg(tuple).reindex(table.index)
        table[f"video_{view}"] = [p if isinstance(p, tuple) else () for p in paths]
        for finding in ("wma", "lge"):
            given = part[f"{finding}_view"].first().reindex(table.index)
            table[f"{finding}_{view}"] = given.fillna(_from_segments(by_study, finding, view, table.index))
    for value, flag in FLAGS.items():
        table[flag] = _flag(table[value], thresholds[value])
    far = unpaired(table, max_days)
    table.loc[far, [c for c in table.columns if c.startswith(LABEL_PREFIXES)]] = np.nan
    table = table.reset_index()
    table.insert(0, "record_id", table["study_id"])
    return table


def read_cohort(root: Path, thresholds: dict, *, max_days: float = 30, allow_outside: bool = False,
                log=None) -> pd.DataFrame:
    """The cohort folder's studies (see `studies`)."""
    return studies(read_clips(root, allow_outside=allow_outside, log=log), thresholds, max_days)


def targets(table: pd.DataFrame) -> tuple[str, ...]:
    """What the networks learn: the global labels, T1/T2/ECV, and each view's WMA and LGE where the cohort has any."""
    per_view = tuple(f"{f}_{v}" for f in ("wma", "lge") for v in VIEWS if table[f"{f}_{v}"].notna().any())
    return (*BINARY, *CONTINUOUS, *per_view)


def load(config: dict, ctx) -> Cohort:
    cfg, where = config["echo_cmr"], config["cohort"]["dir"]
    root = Path(where).expanduser() if where else cached_cohort(ctx.cache, cfg["synthetic"])
    table = read_cohort(root, cfg["thresholds"], max_days=float(cfg["max_days"]),
                        allow_outside=bool(config["cohort"]["allow_outside_paths"]), log=ctx.log)
    far = int(unpaired(table, float(cfg["max_days"])).sum())
    if far:
        ctx.log.warning("echo_cmr: %d of %d studies have their CMR more than %s days from the echo "
                        "(echo_cmr.max_days): their CMR labels are not used", far, len(table), cfg["max_days"])
    outcomes = tuple(c for c in table.columns if c.startswith(LABEL_PREFIXES) and c != LABEL)
    return Cohort(table, label=LABEL, root=root, outcomes=outcomes, targets=targets(table), level=SCHEMA.level,
                  aggregate=SCHEMA.aggregate)


def featurize(cohort: Cohort, cfg: dict, ctx) -> Features:
    """Every clip preprocessed once into the clip cache (parallel, progress bar); x[view] holds, per study, the
    tuple of its clips' cache paths."""
    table = cohort.table.copy()
    x, padded = {}, 0
    for view in VIEWS:
        per_study = table[f"video_{view}"].tolist()
        built = iter(video.preprocess_all([p for clips in per_study for p in clips], cfg["clip"], ctx,
                                          cfg.get("workers")))
        x[view] = [tuple(next(built) for _ in clips) for clips in per_study]
        need = int(cfg["clip"]["frames"]) * int(cfg["clip"]["period"])
        padded += sum(len(np.load(p, mmap_mode="r")) < need for clips in x[view] for p in clips)
    if padded:
        ctx.log.warning("echo_cmr: %d video(s) are shorter than a clip (%d frames at period %d); their clips are "
                        "padded by repeating the last frame", padded, cfg["clip"]["frames"], cfg["clip"]["period"])
    return Features(table, x=x, label=LABEL, targets=cohort.targets)
