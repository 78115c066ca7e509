"""A septal-flash cohort folder: labels.csv (SCHEMA, read by cardio.data.cohort.read_table), one A4C sequence and one
septum tracing per record.

Rows follow the core's patient -> study -> record hierarchy: a record is one sequence (the paper's 89
patients gave 143: baseline and 12-month follow-up), predicted on its own (level "record"); the core's
splits keep a patient's records together. Sequences are read by the core's cardio_imaging.cine (DICOM, AVI,
MP4, NumPy) when the M-modes are made; the table's own problems, the septum tracings' included, are
listed at once when it is read.

The outcome is the config's `label`: `septal_flash` by default (the paper's task), or another binary column of
the table, e.g. `responder` in a multimodal CRT cohort (run_schema); septal_flash is then another task's label,
an optional column declared as an outcome (never a covariate, permuted with the label in a null control).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from cardio import CardioError, Cohort, CoreSettings
from cardio.data.cohort import Column, Problems, Schema, csv_delimiter, decimal_mark, read_csv_text, read_table
from cardio_mmode_septal_flash.geometry import N_POINTS, check_points
from cardio_mmode_septal_flash.settings import SeptalFlashSettings

LABEL = "septal_flash"
SEQUENCE_SUFFIXES = (".dcm", ".avi", ".mp4", ".npy")
SEPTUM_SUFFIXES = (".csv", ".json")
MIN_CYCLE_FRAMES = 8
# Outcome-derived columns: the SF window exists for SF patients only, so it is permuted with the label.
OUTCOME_COLUMNS = ("sf_start_ms", "sf_end_ms")

SCHEMA = Schema(columns=(
    Column(LABEL, "binary", required=True, target=True,
           description="septal flash seen on the sequence: 0/1 or yes/no; empty = not assessed (masked)"),
    Column("cycle_start", "integer", low=0, description="frame index of the first R peak of the cycle"),
    Column("cycle_end", "integer", low=0, description="frame index of the next R peak (or give r_peaks_ms)"),
    Column("r_peaks_ms", "text", description='R peaks in ms from the first frame, e.g. "412;1230" (the first two '
                                            "give the cycle; instead of cycle_start/cycle_end)"),
    Column("frame_time_ms", "number", description="ms between frames, > 0; needed for NumPy sequences (DICOM, "
                                                  "AVI and MP4 carry it)"),
    Column("pixel_spacing_mm", "number", description="mm per pixel (square pixels), for clips without a calibration in "
                                                     "their header (AVI, MP4, NumPy); a DICOM's ultrasound regions "
                                                     "are used when this is empty"),
    Column("mvc_ms", "number", description="mitral valve closure, ms after the first R peak (default: "
                                           "mmode_septal_flash.events.mvc_ms); before avo_ms"),
    Column("avo_ms", "number", description="aortic valve opening, ms after the first R peak (default: "
                                           "mmode_septal_flash.events.avo_ms)"),
    Column("sf_start_ms", "number", description="start of an annotated SF window, ms after the first R peak "
                                                "(outcome-derived: permuted with the label in a null control)"),
    Column("sf_end_ms", "number", description="end of the annotated SF window, ms after the first R peak"),
    Column("sequence", "path", default="sequences/{record_id}", suffixes=SEQUENCE_SUFFIXES,
           description="the A4C B-mode sequence (multi-frame DICOM, AVI, MP4 or NumPy (T, H, W))"),
    Column("septum", "path", default="septum/{record_id}", suffixes=SEPTUM_SUFFIXES,
           description=f"{N_POINTS} septum points (x, y) on the end-diastolic frame, base to apex: CSV x,y or JSON"),
), table="labels.csv", level="record")


@dataclass(frozen=True)
class Sequence:
    """One record's cycle, ready for the M-mode: grey frames, frame time, cycle frames, septum points."""

    frames: np.ndarray  # (T, H, W) uint8
    frame_time_ms: float
    cycle: tuple[int, int]
    points: np.ndarray  # (62, 2) x, y
    path: Path
    spacing_mm: tuple[float, float] | None = None  # (row, column) mm per pixel; None: not calibrated


def label_of(config: dict) -> str:
    """The run's outcome column: the config's `label` (septal_flash, the plugin's default)."""
    return CoreSettings.of(config).label or LABEL


def run_schema(label: str) -> Schema:
    """SCHEMA for a run predicting `label`: SCHEMA itself for septal_flash; for another label (e.g. responder) that
    label is the binary target and septal_flash an optional column."""
    if label == LABEL:
        return SCHEMA
    sf = replace(SCHEMA.column(LABEL), required=False, target=False,
                 description="septal flash seen on the sequence (0/1), optional; another task's label, so an outcome "
                             "column of this run (never a covariate, permuted with the label in a null control)")
    target = Column(label, "binary", required=True, target=True,
                    description=f"the run's outcome (config `label`: {label}): 0/1 or yes/no; empty = unknown (masked)")
    return replace(SCHEMA, columns=(target, *(sf if c.name == LABEL else c for c in SCHEMA.columns)))


def outcome_columns(label: str) -> tuple[str, ...]:
    """Columns that define or derive from an outcome, besides the label: the SF window, and septal_flash itself
    when it is not the label."""
    return OUTCOME_COLUMNS if label == LABEL else (LABEL, *OUTCOME_COLUMNS)


def r_peaks(text: str, decimal_comma: bool = False) -> list[float]:
    """R-peak times (ms) of an r_peaks_ms cell: "412;1230", "412 1230", or "412,1230" (commas separate); where the cell
    holds a ";" (or `decimal_comma`: the table is written with decimal commas) its commas are decimal commas
    ("412,5;1230,0")."""
    text = str(text)
    if ";" in text or decimal_comma:
        return [float(v.replace(",", ".")) for v in text.replace(";", " ").split()]
    return [float(v) for v in text.replace(",", " ").split()]


#: Heart rates (a minute) a cycle of an echo may span: outside, the R peaks or the frame time are wrong.
HEART_RATES = (30.0, 150.0)


def check_cycle(table: pd.DataFrame, problems: Problems) -> None:
    """Every row gives its cycle: two R peaks in r_peaks_ms (used first), else cycle_start/cycle_end spanning
    MIN_CYCLE_FRAMES frames or more (R peaks in ms are turned into frames with the clip's frame time on load)."""
    frames = table[["cycle_start", "cycle_end"]].notna().all(axis=1)
    peaks = table["r_peaks_ms"].notna()
    if not (frames | peaks).any():
        problems.add("give the cycle as cycle_start and cycle_end (frame indices of two R peaks) or as r_peaks_ms")
        return
    problems.rows(~(frames | peaks), "gives no cycle: fill cycle_start and cycle_end, or r_peaks_ms", "cycle_start")
    short = frames & ~peaks & ~((table["cycle_end"] - table["cycle_start"]) >= MIN_CYCLE_FRAMES)
    problems.rows(short, f"the cycle (cycle_start to cycle_end) must span at least {MIN_CYCLE_FRAMES} frames",
                  "cycle_end")
    european = csv_delimiter(problems.file) != ","  # its number cells may hold decimal commas
    for i in np.flatnonzero(peaks.to_numpy()):
        cell = table["r_peaks_ms"].iloc[i]
        try:
            times = r_peaks(cell, european)
        except ValueError:
            times = []
        comma = ("; in a table written with ';' between values a comma is a decimal comma: separate the times with "
                 "';' or spaces" if european and "," in str(cell) else "")
        if len(times) < 2 or times[0] < 0 or times[1] <= times[0]:
            problems.add(f"must list two increasing R-peak times in ms (>= 0), found {cell!r} (read as {times}){comma}",
                         int(i) + 2, "r_peaks_ms")
        elif not HEART_RATES[0] <= 60000.0 / (times[1] - times[0]) <= HEART_RATES[1]:
            problems.add(f"its R peaks {times[0]:g} and {times[1]:g} ms are {times[1] - times[0]:g} ms apart, a heart "
                         f"rate of {60000.0 / (times[1] - times[0]):.0f} a minute (outside {HEART_RATES[0]:g}-"
                         f"{HEART_RATES[1]:g}): are they the cycle's two R peaks, in ms?", int(i) + 2, "r_peaks_ms")


def frame_size(path: str | Path) -> tuple[int, int] | None:
    """(height, width) of a clip's frames from its header, nothing decoded (None where the header does not say)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        from cardio.data.files import npy_header

        shape = npy_header(path)[0]
        return (int(shape[1]), int(shape[2])) if len(shape) >= 3 else None
    if suffix in (".avi", ".mp4"):
        import cv2

        cap = cv2.VideoCapture(str(path))
        try:
            h, w = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        finally:
            cap.release()
        return (h, w) if h and w else None
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Rows", "Columns"])
    return (int(ds.Rows), int(ds.Columns)) if "Rows" in ds and "Columns" in ds else None


def _peak_frames(table: pd.DataFrame, i: int) -> int | None:
    """The last frame a row's R-peak cycle needs, where r_peaks_ms and frame_time_ms are both in the table."""
    peaks, ms = table["r_peaks_ms"].iloc[i], table["frame_time_ms"].iloc[i]
    if not isinstance(peaks, str) or pd.isna(ms) or ms <= 0:
        return None
    try:
        return int(round(r_peaks(peaks)[1] / ms))
    except (ValueError, IndexError):
        return None  # listed by check_cycle


def check_sequences(table: pd.DataFrame, problems: Problems) -> None:
    """A sequence's header (cardio_imaging.cine.probe, nothing decoded): readable, complete, long enough for the cycle
    it is given, and with frames that hold the record's septum points."""
    from cardio_imaging.cine import probe

    flagged = problems.refused("septum")
    for i, path in enumerate(table["sequence"]):
        if path is None or not Path(path).is_file():
            continue  # listed by the reader already
        try:
            n = probe(path)
        except CardioError as e:
            problems.add(str(e), i + 2, "sequence")  # the clip by its path in the cohort folder
            continue
        end = table["cycle_end"].iloc[i] if pd.isna(table["r_peaks_ms"].iloc[i]) else _peak_frames(table, i)
        if end is not None and pd.notna(end) and end > n - 1:
            what, column = (f"cycle_end {int(end)}", "cycle_end") if pd.isna(table["r_peaks_ms"].iloc[i]) else \
                (f"the second R peak (frame {int(end)})", "r_peaks_ms")
            problems.add(f"{what} lies past the clip's last frame ({n} frames)", i + 2, column)
        size = frame_size(path)
        if size is not None and i + 2 not in flagged and table["septum"].iloc[i] is not None:
            try:
                check_points(read_septum(table["septum"].iloc[i]), size, table["septum"].iloc[i])
            except CardioError as e:
                problems.add(str(e), i + 2, "septum")


def check_timing(table: pd.DataFrame, problems: Problems) -> None:
    """A positive frame time and pixel spacing, MVC before AVO, and an SF window that starts before it ends."""
    problems.rows(table["frame_time_ms"] <= 0, "must be > 0 ms", "frame_time_ms")
    problems.rows(table["pixel_spacing_mm"] <= 0, "must be > 0 mm", "pixel_spacing_mm")
    problems.rows(table["mvc_ms"] >= table["avo_ms"], "mvc_ms must be before avo_ms (the two columns swapped?)",
                  "mvc_ms")
    problems.rows(table["sf_start_ms"] >= table["sf_end_ms"], "sf_start_ms must be before sf_end_ms", "sf_start_ms")


def check_septum(table: pd.DataFrame, problems: Problems) -> None:
    """Each septum file holds 62 readable, finite (x, y) points (inside the frames: check_sequences)."""
    flagged = problems.refused("septum")  # missing or refused files: listed already
    for i, path in enumerate(table["septum"]):
        if i + 2 in flagged or path is None:
            continue
        try:
            read_septum(path)
        except CardioError as e:
            problems.add(str(e), i + 2, "septum")


#: A table's frame_time_ms and a clip's own that differ by more than this share are a row and a file mixed up.
RATE_TOLERANCE = 0.05


def sequences_whole(progress=None):
    """read_table check (cohort.records: read, what cardio validate sets): every record read whole by the reader the
    M-modes are made with (read_sequence: the clip decoded, its cycle and septum against it), each failure a problem
    of its line, and a blank, frozen or saturated clip (cardio_imaging.cine.cine_problem) or a frame time the table
    gives against the clip's header. Rows with a problem already listed are not read again."""
    from cardio.data.cohort import read_records
    from cardio.data.same_recording import copy_problems
    from cardio_imaging.cine import cine_problem, read_cine
    from cardio_imaging.same_image import cine_prints, same_cines

    def check(table: pd.DataFrame, problems: Problems) -> None:
        listed = {p.line for p in problems.items if not p.readable}
        shown: dict[int, tuple[np.ndarray, float | None]] = {}  # row -> its frames' prints (cardio_imaging.same_image)

        def read(path: Path, i: int) -> None:
            if i + 2 in listed:
                return
            cine = read_cine(path, min_frames=2)
            problem = cine_problem(cine.frames)
            if problem:
                raise CardioError(f"{path}: {problem}")
            shown[i] = (cine_prints(cine.frames), cine.frame_time_ms)
            given, stated = table["frame_time_ms"].iloc[i], cine.frame_time_ms
            if stated and pd.notna(given) and abs(float(given) - stated) > RATE_TOLERANCE * stated:
                raise CardioError(f"{path}: the table's frame_time_ms says {float(given):g} ms, the clip's header "
                                  f"{stated:g} ms (the table's is the one used): correct the cell, or leave it empty")
            spacing, regions = table["pixel_spacing_mm"].iloc[i], cine.pixel_spacing_mm
            if regions and pd.notna(spacing) and abs(float(spacing) - regions[1]) > RATE_TOLERANCE * regions[1]:
                raise CardioError(f"{path}: the table's pixel_spacing_mm says {float(spacing):g} mm, the clip's "
                                  f"ultrasound regions {regions[1]:.3g} mm per pixel (the table's is the one used): "
                                  "correct the cell, or leave it empty")
            plausible(sequence_from(table.iloc[i], cine), "table" if pd.notna(given) else "header")

        read_records(table, problems, "sequence", read, progress=progress, desc="sequences")
        # one clip under two patients, by content: a re-encoded or shortened copy has other bytes
        copy_problems(table, problems, "sequence", same_cines(shown), "clip", "their frames, aligned,")
    return check


#: Septum lengths (mm, base to apex along the points) of an adult heart; outside, the points or the spacing are in
#: another unit. Uncalibrated: the septum spans at least this share of the frame's height.
SEPTUM_MM = (25.0, 150.0)
SEPTUM_SHARE = 0.2


def plausible(seq: Sequence, timing: str) -> None:
    """A record's frame time, its cycle's heart rate and its septum's length as an echo of a heart has them."""
    from cardio_imaging.cine import frame_time_problem

    problem = frame_time_problem(seq.frame_time_ms, f"the {timing}'s frame_time_ms" if timing == "table" else
                                 "its header")
    if problem:
        raise CardioError(f"{seq.path}: {problem}")
    rr = (seq.cycle[1] - seq.cycle[0]) * seq.frame_time_ms
    if not HEART_RATES[0] <= 60000.0 / rr <= HEART_RATES[1]:
        raise CardioError(f"{seq.path}: its cycle (frames {seq.cycle[0]} to {seq.cycle[1]} at {seq.frame_time_ms:g} "
                          f"ms) lasts {rr:g} ms, a heart rate of {60000.0 / rr:.0f} a minute (outside "
                          f"{HEART_RATES[0]:g}-{HEART_RATES[1]:g}): is the frame time, or the cycle, right?")
    length = float(np.hypot(*np.diff(seq.points, axis=0).T).sum())
    if seq.spacing_mm:
        mm = length * float(np.mean(seq.spacing_mm))
        if not SEPTUM_MM[0] <= mm <= SEPTUM_MM[1]:
            raise CardioError(f"{seq.path}: its septum points trace a septum {mm:.0f} mm long at "
                              f"{float(np.mean(seq.spacing_mm)):.3g} mm per pixel (an adult's is {SEPTUM_MM[0]:g}-"
                              f"{SEPTUM_MM[1]:g} mm): are the points in pixels, and the spacing right?")
    elif length < SEPTUM_SHARE * seq.frames.shape[1]:
        raise CardioError(f"{seq.path}: its septum points trace a septum {length:.0f} pixels long, under "
                          f"{100 * SEPTUM_SHARE:.0f}% of the {seq.frames.shape[1]}-pixel frame: are the points in "
                          "pixels?")


def read_labels(root: Path, allow_outside: bool = False, log=None, label: str = LABEL, records: str = "headers",
                progress=None) -> pd.DataFrame:
    """labels.csv of a cohort folder, typed and checked against the schema of a run predicting `label` (SCHEMA for
    septal_flash); every problem at once (CohortProblems). With `records` "read" (cardio validate) every sequence
    is read whole as the M-modes read it (sequences_whole)."""
    checks = [check_cycle, check_timing, check_septum, check_sequences,
              *([sequences_whole(progress)] if records == "read" else [])]
    return read_table(root, run_schema(label), allow_outside=allow_outside, log=log, checks=checks)


def read_septum(path: str | Path) -> np.ndarray:
    """62 ordered (x, y) septum points from a CSV (columns x, y) or JSON ([[x, y], ...] or {"points": ...})."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text())
            data = data.get("points") if isinstance(data, dict) else data
            pts = np.asarray(data, dtype=float)
        else:  # ",", ";" or tab between values, decimal commas where ";" or tab separates them (the core's rules)
            frame, delimiter = read_csv_text(path)
            frame.columns = [c.lower() for c in frame.columns]
            if not {"x", "y"} <= set(frame.columns):
                raise CardioError(f"{path}: septum CSV needs columns x and y, has {list(frame.columns)}")
            cells = frame[["x", "y"]]
            if decimal_mark(cells.stack().astype(str), delimiter, path) == ",":
                cells = cells.apply(lambda c: c.str.replace(",", ".", regex=False))
            pts = cells.to_numpy(dtype=float)
    except (ValueError, TypeError, OSError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise CardioError(f"{path}: unreadable septum points ({' '.join(str(e).split())[:200]})") from None
    if pts.ndim != 2 or pts.shape[1:] != (2,) or len(pts) != N_POINTS:
        n = len(pts) if pts.ndim == 2 and pts.shape[1:] == (2,) else f"shape {pts.shape}"
        raise CardioError(f"{path}: {n} septum points, expected {N_POINTS} ordered (x, y) points (base to apex)")
    bad = ~np.isfinite(pts).all(axis=1)
    if bad.any():
        raise CardioError(f"{path}: {int(bad.sum())} septum point(s) with an empty or non-finite coordinate "
                          f"(first: point {int(np.flatnonzero(bad)[0])}, counted from 0 at the base)")
    return pts


def _cycle(row: pd.Series, frame_time_ms: float, n_frames: int, path: Path) -> tuple[int, int]:
    """The cycle's frames (checked in the table) against the clip: the clip must hold them."""
    if isinstance(row.get("r_peaks_ms"), str):
        t0, t1 = (int(round(p / frame_time_ms)) for p in r_peaks(row["r_peaks_ms"])[:2])
        if t1 - t0 < MIN_CYCLE_FRAMES:
            raise CardioError(f"{path}: the cycle (frames {t0}..{t1}) must span at least {MIN_CYCLE_FRAMES} frames")
    else:
        t0, t1 = int(row["cycle_start"]), int(row["cycle_end"])
    if t1 > n_frames - 1:
        raise CardioError(f"{path}: {n_frames} frames, shorter than one cycle (R peaks at frames {t0} and {t1})")
    return t0, t1


def read_sequence(row: pd.Series) -> Sequence:
    """A record's grey frames, frame time, cycle, septum points and pixel spacing (the table's, else the DICOM's
    ultrasound regions, else None), all checked against each other."""
    from cardio_imaging.cine import read_cine

    given = row.get("frame_time_ms")
    has_time = given is not None and pd.notna(given)
    return sequence_from(row, read_cine(Path(row["sequence"]), min_frames=2, need_frame_time=not has_time))


def sequence_from(row: pd.Series, cine) -> Sequence:
    """read_sequence's checks of a decoded clip (a cardio_imaging.cine.Cine) against its row."""
    from cardio_imaging.cine import to_gray

    path = Path(row["sequence"])
    given = row.get("frame_time_ms")
    has_time = given is not None and pd.notna(given)
    frame_time = float(given) if has_time else cine.frame_time_ms
    if frame_time is None or not np.isfinite(frame_time) or frame_time <= 0:
        raise CardioError(f"{path}: no usable frame time (give frame_time_ms in labels.csv)")
    spacing = row.get("pixel_spacing_mm")
    spacing = (float(spacing),) * 2 if spacing is not None and pd.notna(spacing) else cine.pixel_spacing_mm
    frames = to_gray(cine.frames)
    frames = frames if frames.dtype == np.uint8 else np.clip(frames, 0, 255).astype(np.uint8)
    cycle = _cycle(row, frame_time, len(frames), path)
    septum = Path(row["septum"])
    points = check_points(read_septum(septum), frames.shape[1:], septum)
    return Sequence(frames, frame_time, cycle, points, path, spacing)


def load(config: dict, ctx) -> Cohort:
    """The user's folder (cohort.dir) or the synthetic cohort, written once into the run's cache; the outcome is
    the config's `label`."""
    from cardio_mmode_septal_flash.synthetic import cached_cohort

    where, label = CoreSettings.of(config).cohort, label_of(config)
    if not where.dir and label != LABEL:
        raise CardioError(f"label: the synthetic cohort's outcome column is {LABEL!r}, not {label!r} (set cohort.dir "
                          "to a cohort folder that has it, e.g. one written by cardio_write_synthetic)")
    synthetic = SeptalFlashSettings.of(config).synthetic
    root = Path(where.dir).expanduser() if where.dir else cached_cohort(ctx.cache, synthetic, ctx.progress)
    table = read_labels(root, where.allow_outside_paths, ctx.log, label, records=where.records,
                        progress=ctx.progress)
    rows = {rid: row for rid, (_, row) in zip(table["record_id"], table.iterrows())}
    return Cohort(table, loader=lambda rid: read_sequence(rows[rid]), label=label, root=root,
                  outcomes=outcome_columns(label), targets=(label,), level=SCHEMA.level, aggregate=SCHEMA.aggregate)
