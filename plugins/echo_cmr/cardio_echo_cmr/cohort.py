"""An echo cohort: labels.csv (one row per clip), or EchoNet-Dynamic's FileList.csv, read through the core's cohort
contract, then one record per study with the clips of each view.

The table's schema follows the config (`schema(cfg)`: the views, the targets of targets.py, the layout) and is read
by `cardio.data.cohort.read_table` (kinds, paths confined to the cohort folder, every problem listed at once); the two
checks below are the ones it cannot make: a study's values, and a view's labels, must agree between its rows.

Why one record per study: the paper predicts per study, and the view fusion needs one score per view per study.
Each record keeps a tuple of clips per view (several A4C clips of one study are allowed, and a view may be absent);
training uses every clip with its study's labels, and at test time a view's score of a study is the mean of its
clips' scores (each clip itself averaged over its non-overlapping windows), so the fusion sees one score per view.
The cohort's level is therefore "study": patients with several studies keep them as several records, always in the
same fold (splits group by patient).

View-level labels come from their column (`wma_view`/`lge_view` in the CMR set), or, where that is empty, from a
17-segment report (`wma_s1..wma_s17`...) through cardio_imaging.aha17's map of the segments each view shows. With
`echo_date` and `cmr_date`, a study whose CMR lies more than `echo_cmr.max_days` from its echo keeps its clips (they
are still predicted) but loses its labels: the pair is not used for training or scoring (the paper's rule).
EchoNet-Dynamic's FileList.csv names no patient: each video is its own patient and study (read_echonet).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from cardio import Cohort, CoreSettings, Features
from cardio.data.cohort import CohortProblems, Column, Problems, Schema, read_csv_text, read_table
from cardio_echo_cmr import video
from cardio_echo_cmr.settings import Clip, EchoSettings
from cardio_echo_cmr.synthetic import VIEWS, cached_cohort
from cardio_echo_cmr.targets import DEFAULT, Target, parse
from cardio_imaging import aha17

LABEL = "wma"  # the default targets' label (the first study-level target; cohort_label)
DATE_COLUMNS = ("echo_date", "cmr_date")
ECHONET_TABLE = "FileList.csv"
# The CMR set's column texts (a configured target's column is described from its title otherwise).
DESCRIPTIONS = {
    "wma_view": "CMR wall-motion abnormality in the AHA segments this view shows (empty: unknown)",
    "lge_view": "CMR LGE in the segments this view shows (empty: unknown)",
    "wma_global": "CMR wall-motion abnormality anywhere (the study's; empty: missing label)",
    "lge_global": "CMR late gadolinium enhancement anywhere (the study's; empty: missing label)",
    "t1_ms": "native T1 (ms) of the study's CMR; empty: missing",
    "t2_ms": "T2 (ms) of the study's CMR; empty: missing",
    "ecv_pct": "extracellular volume (%) of the study's CMR; empty: missing",
}
#: The paper's baseline characteristics (its Table 1): optional columns of labels.csv, carried to the study table for
#: Table 1 alone (never an input or a label).
BASELINE = (
    Column("age", "number", low=0, high=120, description="age at the echo study (years); Table 1 only"),
    Column("female", "binary", description="1 female, 0 male; Table 1 only"),
    Column("bmi", "number", low=5, high=100, description="body-mass index (kg/m²); Table 1 only"),
    Column("hypertension", "binary", description="hypertension (1/0); Table 1 only"),
    Column("hyperlipidemia", "binary", description="hyperlipidemia (1/0); Table 1 only"),
    Column("diabetes", "binary", description="diabetes (1/0); Table 1 only"),
    Column("lvef_cmr", "number", low=0, high=100, description="LVEF (%) by the study's CMR; Table 1 only"),
    Column("lvef_echo", "number", low=0, high=100, description="LVEF (%) by the echo report; Table 1 only"),
)
RANGES = {"t1_ms": (0, None), "t2_ms": (0, None), "ecv_pct": (0, 100), "EF": (0, 100), "ESV": (0, None),
          "EDV": (0, None)}


def _is_flag(t: Target, thresholds: dict) -> bool:
    """A binary target read from a value column with a threshold (T1 -> T1 abnormal)."""
    return t.binary and t.source in (thresholds or {})


def segment_columns(t: Target) -> tuple[str, ...]:
    """The 17-segment report columns that fill a view-level target (wma_view: wma_s1 ... wma_s17)."""
    prefix = t.name.removesuffix("_view")
    return tuple(f"{prefix}_s{k}" for k in range(1, aha17.N_SEGMENTS + 1))


def target_columns(targets: tuple[Target, ...], thresholds: dict) -> list[Column]:
    """One column per source of the targets: study-level ones required (a value may be empty: a missing label),
    view-level ones optional (a clip row's label of its view's segments)."""
    out: dict[str, Column] = {}
    for t in sorted(targets, key=lambda t: t.level != "view"):  # the view columns first, as the table shows them
        if t.source in out:
            continue
        kind = "binary" if t.binary and not _is_flag(t, thresholds) else "number"
        low, high = RANGES.get(t.source, (None, None))
        text = DESCRIPTIONS.get(t.source) or f"{t.title}{f' ({t.unit})' if t.unit else ''}: the {t.level}'s " \
                                             f"{t.kind} target; empty: missing"
        study = t.level == "study"
        out[t.source] = Column(t.source, kind, required=study, target=study, low=low if kind == "number" else None,
                               high=high if kind == "number" else None, description=text)
    return list(out.values())


def schema(s: EchoSettings) -> Schema:
    """The cohort table of the configured layout, views and targets (`echo_cmr.layout`: labels | echonet)."""
    targets, views, thresholds = parse(s.targets), s.views, dict(s.thresholds)
    if s.layout == "echonet":
        return echonet_schema(targets, thresholds)
    segments = [Column(c, "binary", description=f"CMR {t.name.removesuffix('_view').upper()} in AHA segment "
                                                f"{k} ({aha17.NAMES[k - 1]}); fills {t.source} where that is empty")
                for t in targets if t.level == "view" and t.binary for k, c in enumerate(segment_columns(t), 1)]
    return Schema(columns=(
        Column("view", "category", required=True, values=views, description="the echo view of the clip"),
        Column("file", "path", required=True,
               description="the clip: a multi-frame ultrasound DICOM or an AVI/MP4 inside the cohort folder"),
        *target_columns(targets, thresholds),
        Column("echo_date", "date", description="date of the echo study (with cmr_date: pairs over "
                                                "echo_cmr.max_days apart lose their CMR labels)"),
        Column("cmr_date", "date", description="date of the CMR the study's labels come from"),
        *BASELINE, *segments), table="labels.csv", level="study", aggregate="mean")


def echonet_schema(targets: tuple[Target, ...], thresholds: dict) -> Schema:
    """EchoNet-Dynamic's FileList.csv: one row per video, `Videos/<FileName>.avi`, its Split; no patient column, so
    each video is its own patient and study (a `patient_id` column, when added, is used)."""
    declared = target_columns(targets, thresholds)
    names = {c.name for c in declared}
    plain = [Column(c, "number", low=0, description=f"{c} (mL), EchoNet-Dynamic's; not a target here (an outcome: "
                                                    "never a covariate)") for c in ("ESV", "EDV") if c not in names]
    return Schema(columns=(
        Column("FileName", "text", required=True, description="the video's name (Videos/<FileName>.avi); also its "
                                                               "patient and study"),
        Column("file", "path", default="Videos/{record_id}", suffixes=(".avi",),
               description="the video (default Videos/<FileName>.avi)"),
        Column("view", "category", values=("A4C",), description="the view (EchoNet-Dynamic: A4C, filled in)"),
        Column("Split", "category", required=True, values=("TRAIN", "VAL", "TEST"),
               description="the dataset's split, used by cv.method: predefined (column split)"),
        *declared, *plain,
        Column("FPS", "number", low=0, description="frame rate (the container's rate is read from the video)"),
        *(Column(c, "integer", low=0, description=f"{c} as the dataset lists it (not used)")
          for c in ("FrameHeight", "FrameWidth", "NumberOfFrames"))),
        table=ECHONET_TABLE, level="study", aggregate="mean")


SCHEMA = schema(EchoSettings())  # the CMR set, three views, the paper's thresholds


def _study_values_agree(targets: tuple[Target, ...]):
    def check(table: pd.DataFrame, problems: Problems) -> None:
        """A study's dates, segment report and baseline characteristics are one value: rows of one study that
        disagree are problems (an empty cell is filled from the study's other rows). Its targets are the core
        reader's to check (a study's target that differs between its lines names both)."""
        views = [t for t in targets if t.level == "view" and t.binary]
        present = [c for c in (*DATE_COLUMNS, *(c for t in views for c in segment_columns(t)),
                               *(c.name for c in BASELINE)) if c in table]
        for col in present:
            n = table.groupby("study_id")[col].transform("nunique")
            problems.rows((n > 1).to_numpy(), "differs between rows of one study (a study has one value)", col)
    return check


def _view_values_agree(targets: tuple[Target, ...]):
    def check(table: pd.DataFrame, problems: Problems) -> None:
        """The clips of one view in one study show the same segments: their view-level labels must agree."""
        for col in dict.fromkeys(t.source for t in targets if t.level == "view"):
            n = table.groupby(["study_id", "view"])[col].transform("nunique")
            problems.rows((n > 1).to_numpy(), "differs between clips of one view in one study", col)
    return check


def _clips_readable(table: pd.DataFrame, problems: Problems) -> None:
    """Each clip's header and size (cardio_imaging.cine.probe, nothing decoded): a truncated or unreadable clip is a
    listed problem of cardio validate, not a failure minutes into featurizing."""
    from cardio import CardioError
    from cardio_imaging.cine import probe

    for i, path in enumerate(table["file"]):
        if path is None or not Path(path).is_file():
            continue  # listed by the reader already
        try:
            probe(path)
        except CardioError as e:
            problems.add(str(e), i + 2, "file")  # the clip by its path in the cohort folder


#: A table's FPS and a video's own rate that differ by more than this share are a row and a file mixed up.
RATE_TOLERANCE = 0.05


def _clips_whole(clip: Clip, progress=None):
    """read_table check (cohort.records: read, what cardio validate sets): every clip decoded by the reader featurize
    uses (cardio_imaging.cine.read_cine), each failure a problem of its line: a blank, frozen or saturated clip
    (cardio_imaging.cine.cine_problem), a rate the table's FPS contradicts, a clip with fewer frames at clip.fps than
    one clip takes (featurize would pad it with copies of its last frame)."""
    from cardio import CardioError
    from cardio.data.cohort import read_records
    from cardio.data.same_recording import copy_problems
    from cardio_imaging.cine import cine_problem, frame_time_problem, read_cine
    from cardio_imaging.same_image import cine_prints, same_cines

    def check(table: pd.DataFrame, problems: Problems) -> None:
        given = table["FPS"] if "FPS" in table else pd.Series(np.nan, index=table.index)
        shown: dict[int, tuple[np.ndarray, float | None]] = {}  # row -> its frames' prints (cardio_imaging.same_image)

        def read(path: Path, i: int) -> None:
            cine = read_cine(path)
            problem = cine_problem(cine.frames) or frame_time_problem(cine.frame_time_ms)
            if problem:
                raise CardioError(f"{path}: {problem}")
            shown[i] = (cine_prints(cine.frames), cine.frame_time_ms)
            fps, stated = cine.fps, given.iloc[i]
            if not fps and clip.fps:  # what the run refuses (video.read_frames)
                raise CardioError(f"{path}: no frame timing in its header (FrameTime, FrameTimeVector, CineRate or a "
                                  "video's rate), and a run resamples every clip to echo_cmr.clip.fps: export it with "
                                  "its timing (echo_cmr.clip.fps null keeps every clip's own frames)")
            if fps and pd.notna(stated) and abs(float(stated) - fps) > RATE_TOLERANCE * fps:
                raise CardioError(f"{path}: the table's FPS says {float(stated):g}, the video's header {fps:g} frames "
                                  "per second (the header's is the one read): correct the FPS cell")
            n = len(video.resample_times(cine.n_frames, fps, float(clip.fps))) if fps and clip.fps else cine.n_frames
            if n < clip.frames:
                raise CardioError(f"{path}: {cine.n_frames} frames ({n} at echo_cmr.clip.fps), fewer than the "
                                  f"{clip.frames} of one clip (echo_cmr.clip.frames): a run pads it with copies of "
                                  "its last frame; export a longer clip (a beat or more), or leave it out")

        read_records(table, problems, "file", read, progress=progress, desc="echo clips")
        # one clip under two patients, by content: a re-encoded or shortened copy has other bytes
        copy_problems(table, problems, "file", same_cines(shown), "clip", "their frames, aligned,")
    return check


def _checks(targets: tuple[Target, ...], s: EchoSettings, records: str, progress=None) -> tuple:
    """The plugin's table checks; with `records` "read" (cohort.records: cardio validate), every clip decoded too."""
    whole = (_clips_whole(s.clip, progress),) if records == "read" else ()
    return _study_values_agree(targets), _view_values_agree(targets), _clips_readable, *whole


def read_clips(root: Path, *, allow_outside: bool = False, log=None, s: EchoSettings | None = None,
               records: str = "headers", progress=None) -> pd.DataFrame:
    """labels.csv as typed by the schema of `s` (None: the defaults, the CMR set at the paper's thresholds), one row
    per clip (raises CohortProblems listing every problem)."""
    s = s or EchoSettings()
    return read_table(root, schema(s), allow_outside=allow_outside, log=log,
                      checks=_checks(parse(s.targets), s, records, progress))


def read_echonet(root: Path, s: EchoSettings, *, allow_outside: bool = False, log=None, records: str = "headers",
                 progress=None) -> pd.DataFrame:
    """EchoNet-Dynamic's FileList.csv as clips, through the core's reader: FileList.csv has no patient column, so
    each video becomes its own patient (patient_id = record_id = FileName; a patient_id column, when added, is kept)
    and its view A4C. The reader reads a copy with those columns added (same rows, so the same CSV lines); its
    problems name FileList.csv."""
    import dataclasses
    import tempfile

    from cardio.data.cohort import Problem

    csv = Path(root).expanduser() / ECHONET_TABLE
    table_schema = schema(s)
    if not csv.is_file():  # missing: the reader's own one-line error
        return read_table(root, table_schema, allow_outside=allow_outside, log=log)
    raw, _ = read_csv_text(csv)  # its delimiter, a BOM and headers in any case, as the reader reads it
    raw = raw.rename(columns={c: "FileName" for c in raw.columns if c.casefold() == "filename"})
    if "FileName" not in raw.columns:
        raise CohortProblems([Problem(str(csv), f"lacks column(s) ['FileName']; it has {list(raw.columns)}")])
    name = raw["FileName"].fillna("").str.strip()
    raw = raw.assign(**{c: v for c, v in (("patient_id", name), ("record_id", name), ("view", "A4C"))
                        if c not in raw.columns})
    with tempfile.TemporaryDirectory(prefix="echonet-") as tmp:
        copy = Path(tmp) / ECHONET_TABLE
        raw.to_csv(copy, index=False)
        try:
            return read_table(root, table_schema, allow_outside=allow_outside, log=log, table=str(copy),
                              checks=_checks((), s, records, progress)[2:])
        except CohortProblems as e:
            raise CohortProblems([dataclasses.replace(p, file=str(csv)) for p in e.problems]) from None


def _flag(values: pd.Series, threshold: float) -> pd.Series:
    """1.0 at or above the threshold, 0.0 below, NaN where the value is missing."""
    return (values >= threshold).astype(float).where(values.notna())


def _from_segments(by_study, t: Target, view: str, index: pd.Index) -> pd.Series:
    """A view's finding from the study's 17-segment columns (NaN where they do not decide it)."""
    cols = segment_columns(t)
    if not t.binary or not all(c in by_study.obj for c in cols):
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


def studies(clips: pd.DataFrame, thresholds: dict, max_days: float = 30, targets: tuple[Target, ...] = DEFAULT,
            views: tuple[str, ...] = VIEWS) -> pd.DataFrame:
    """One row per study: record_id (= study_id), patient_id, study_id, video_<VIEW> (a tuple of clip paths, empty
    when the view is absent), each view-level target per view (wma_<VIEW>...), each study-level target (a flag at
    its configured threshold), NaN where missing; every label NaN where the echo-CMR pair is over max_days apart;
    `split` (lower case) where the table has a Split column."""
    by_study = clips.groupby("study_id", sort=True)
    dates = [c for c in DATE_COLUMNS if c in clips]
    study = [t for t in targets if t.level == "study"]
    sources = list(dict.fromkeys(t.source for t in study))
    baseline = [c.name for c in BASELINE if c.name in clips and c.name not in sources]
    table = by_study[["patient_id", *sources, *dates, *baseline]].first()  # first non-missing value (agree: checked)
    plain = [t for t in study if not _is_flag(t, thresholds)]
    named = {t.name for t in targets}
    table = table.rename(columns={t.source: t.name for t in plain if t.source != t.name and t.source not in named
                                  and sum(u.source == t.source for u in study) == 1})
    for t in plain:
        if t.name not in table:
            table[t.name] = table[t.source]
    for view in views:
        part = clips[clips["view"] == view].groupby("study_id", sort=True)
        paths = part["file"].agg(tuple).reindex(table.index)
        table[f"video_{view}"] = [p if isinstance(p, tuple) else () for p in paths]
        for t in (t for t in targets if t.level == "view"):
            given = part[t.source].first().reindex(table.index)
            table[t.task(view)] = given.fillna(_from_segments(by_study, t, view, table.index))
    for t in study:
        if _is_flag(t, thresholds):
            table[t.name] = _flag(table[t.source], thresholds[t.source])
    far = unpaired(table, max_days)
    labels = [c for c in table.columns if c in label_columns(targets, views)]
    table.loc[far, labels] = np.nan
    if "Split" in clips:
        table["split"] = by_study["Split"].first().str.lower()
    table = table.reset_index()
    table.insert(0, "record_id", table["study_id"])
    return table


def label_columns(targets: tuple[Target, ...], views: tuple[str, ...]) -> tuple[str, ...]:
    """Every column of the study table that holds a label or its source value."""
    tasks = [t.task(v) for t in targets if t.level == "view" for v in views]
    return tuple(dict.fromkeys([*(t.name for t in targets if t.level == "study"), *tasks,
                                *(t.source for t in targets if t.level == "study")]))


def read_cohort(root: Path, thresholds: Mapping[str, float], *, max_days: float = 30, allow_outside: bool = False,
                log=None, s: EchoSettings | None = None, records: str = "headers", progress=None) -> pd.DataFrame:
    """The cohort folder's studies (see `studies`); `s` names the layout, views and targets (None: labels.csv and
    the CMR set), and with `records` "read" every clip is decoded and checked."""
    s = replace(s or EchoSettings(), thresholds=thresholds)
    targets, views = parse(s.targets), s.views
    if s.layout == "echonet":
        clips = read_echonet(root, s, allow_outside=allow_outside, log=log, records=records, progress=progress)
    else:
        clips = read_clips(root, allow_outside=allow_outside, log=log, s=s, records=records, progress=progress)
    return studies(clips, dict(thresholds), max_days, targets, views)


def cohort_label(targets: tuple[Target, ...]) -> str:
    """The cohort's label (folds are stratified by it when binary): the first study-level binary target, else the
    first study-level target."""
    study = [t for t in targets if t.level == "study"]
    if not study:
        from cardio import CardioError

        raise CardioError("echo_cmr.targets needs at least one study-level target (the run's label)")
    return next((t.name for t in study if t.binary), study[0].name)


def cohort_targets(table: pd.DataFrame, targets: tuple[Target, ...], views: tuple[str, ...]) -> tuple[str, ...]:
    """What the networks learn: the study-level targets, then each view's view-level ones where the cohort has
    any."""
    per_view = tuple(t.task(v) for t in targets if t.level == "view" for v in views if table[t.task(v)].notna().any())
    return (*(t.name for t in targets if t.level == "study"), *per_view)


def load(config: dict, ctx) -> Cohort:
    s, where = EchoSettings.of(config), CoreSettings.of(config).cohort
    targets, views = parse(s.targets), s.views
    root = Path(where.dir).expanduser() if where.dir else cached_cohort(ctx.cache, s.synthetic, views)
    table = read_cohort(root, s.thresholds, max_days=float(s.max_days), allow_outside=where.allow_outside_paths,
                        log=ctx.log, s=s, records=where.records, progress=ctx.progress)
    if s.layout == "echonet":
        ctx.log.info("echo_cmr: EchoNet-Dynamic layout, %d videos; FileList.csv names no patient, so each video is "
                     "its own patient and study", len(table))
    far = int(unpaired(table, float(s.max_days)).sum())
    if far:
        ctx.log.warning("echo_cmr: %d of %d studies have their CMR more than %s days from the echo "
                        "(echo_cmr.max_days): their CMR labels are not used", far, len(table), s.max_days)
    label = cohort_label(targets)
    outcomes = tuple(c for c in table.columns if c in label_columns(targets, views) and c != label)
    return Cohort(table, label=label, root=root, outcomes=outcomes, targets=cohort_targets(table, targets, views),
                  level="study", aggregate="mean")


def featurize(cohort: Cohort, s: EchoSettings, ctx) -> Features:
    """Every clip preprocessed once into the clip cache (parallel, progress bar); x[view] holds, per study, the
    tuple of its clips' cache paths."""
    table = cohort.table.copy()
    x, padded = {}, 0
    for view in s.views:
        per_study = table[f"video_{view}"].tolist()
        built = iter(video.preprocess_all([p for clips in per_study for p in clips], s.clip, ctx, s.workers))
        x[view] = [tuple(next(built) for _ in clips) for clips in per_study]
        need = s.clip.frames * s.clip.period
        padded += sum(len(np.load(p, mmap_mode="r")) < need for clips in x[view] for p in clips)
    if padded:
        ctx.log.warning("echo_cmr: %d video(s) are shorter than a clip (%d frames at period %d); their clips are "
                        "padded by repeating the last frame", padded, s.clip.frames, s.clip.period)
    return Features(table, x=x, label=cohort.label, targets=cohort.targets)
