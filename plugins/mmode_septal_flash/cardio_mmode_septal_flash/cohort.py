"""A septal-flash cohort folder: labels.csv, one A4C sequence and one septum tracing per patient, checked.

labels.csv columns: patient_id, septal_flash (0/1 or yes/no), the cycle as cycle_start/cycle_end
(frame indices of two successive R peaks) or r_peaks_ms ("412;1230", read with the frame time);
optional frame_time_ms (needed for NumPy sequences; DICOM and video carry it), mvc_ms/avo_ms
(valve events, ms after the first R peak), sf_start_ms/sf_end_ms (a known SF window), sequence and
septum (paths inside the folder; by default sequences/<id>.{dcm,avi,mp4,npy} and
septum/<id>.{csv,json}). Sequences are read by the core's cardio.cine (DICOM, AVI, MP4, NumPy).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cardio import CardioError, Cohort, confined_path
from cardio_mmode_septal_flash.geometry import N_POINTS, check_points

LABEL = "septal_flash"
SEQUENCE_SUFFIXES = (".dcm", ".avi", ".mp4", ".npy")
SEPTUM_SUFFIXES = (".csv", ".json")
MIN_CYCLE_FRAMES = 8
# Outcome-derived columns: the SF window exists for SF patients only, so it is permuted with the label.
OUTCOME_COLUMNS = ("sf_start_ms", "sf_end_ms")


@dataclass(frozen=True)
class Sequence:
    """One patient's cycle, ready for the M-mode: grey frames, frame time, cycle frames, septum points."""

    frames: np.ndarray  # (T, H, W) uint8
    frame_time_ms: float
    cycle: tuple[int, int]
    points: np.ndarray  # (62, 2) x, y
    path: Path


def _yes_no(values: pd.Series, csv: Path) -> pd.Series:
    text = values.astype(str).str.strip().str.lower()
    mapped = text.map({"1": 1, "0": 0, "1.0": 1, "0.0": 0, "yes": 1, "no": 0, "true": 1, "false": 0})
    if mapped.isna().any():
        bad = values[mapped.isna()].iloc[0]
        raise CardioError(f"{csv}: column {LABEL!r} must be 0/1 or yes/no, found {bad!r}")
    return mapped.astype(int)


def _find(root: Path, folder: str, pid: str, suffixes: tuple[str, ...], csv: Path) -> str:
    for suffix in suffixes:
        p = root / folder / f"{pid}{suffix}"
        if p.is_file():
            return str(p)
    raise CardioError(f"{csv}: no {folder}/{pid}{{{','.join(suffixes)}}} for patient {pid!r}")


def read_labels(root: Path) -> pd.DataFrame:
    """labels.csv of a cohort folder, checked; adds record_id and the sequence and septum paths."""
    root = Path(root)
    csv = root / "labels.csv"
    if not csv.is_file():
        raise CardioError(f"septal-flash cohort {root}: labels.csv not found")
    try:
        table = pd.read_csv(csv, dtype={"patient_id": str, "sequence": str, "septum": str, "r_peaks_ms": str})
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise CardioError(f"{csv}: unreadable CSV ({str(e).splitlines()[0]})") from None
    missing = [c for c in ("patient_id", LABEL) if c not in table.columns]
    if missing:
        raise CardioError(f"{csv}: column(s) {missing} missing")
    if table.empty:
        raise CardioError(f"{csv}: no patients (the CSV has a header only)")
    if table["patient_id"].isna().any() or table["patient_id"].duplicated().any():
        raise CardioError(f"{csv}: patient_id values must be present and unique")
    if not ({"cycle_start", "cycle_end"} <= set(table.columns) or "r_peaks_ms" in table.columns):
        raise CardioError(f"{csv}: give the cycle as cycle_start and cycle_end (frame indices of two R peaks) "
                          "or as r_peaks_ms")
    table[LABEL] = _yes_no(table[LABEL], csv)
    pids = table["patient_id"].astype(str)
    odd = [p for p in pids if p in (".", "..") or "/" in p or "\\" in p or not p.strip()]
    if odd:
        raise CardioError(f"{csv}: patient_id {odd[0]!r} is not a plain file name")
    table["record_id"] = pids
    for col, folder, suffixes in (("sequence", "sequences", SEQUENCE_SUFFIXES), ("septum", "septum", SEPTUM_SUFFIXES)):
        given = table[col] if col in table.columns else pd.Series([None] * len(table))
        table[f"{col}_path"] = [str(confined_path(root, g, what=f"{csv.name} {col}")) if isinstance(g, str) and g
                                else _find(root, folder, p, suffixes, csv) for g, p in zip(given, pids)]
    return table


def read_septum(path: str | Path) -> np.ndarray:
    """62 ordered (x, y) septum points from a CSV (columns x, y) or JSON ([[x, y], ...] or {"points": ...})."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text())
            data = data.get("points") if isinstance(data, dict) else data
            pts = np.asarray(data, dtype=float)
        else:
            frame = pd.read_csv(path)
            if not {"x", "y"} <= set(frame.columns):
                raise CardioError(f"{path}: septum CSV needs columns x and y, has {list(frame.columns)}")
            pts = frame[["x", "y"]].to_numpy(dtype=float)
    except (ValueError, TypeError, OSError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise CardioError(f"{path}: unreadable septum points ({' '.join(str(e).split())[:200]})") from None
    if pts.ndim != 2 or pts.shape[1:] != (2,) or len(pts) != N_POINTS:
        n = len(pts) if pts.ndim == 2 and pts.shape[1:] == (2,) else f"shape {pts.shape}"
        raise CardioError(f"{path}: {n} septum points, expected {N_POINTS} ordered (x, y) points (base to apex)")
    return pts


def _cycle(row: pd.Series, frame_time_ms: float, n_frames: int, path: Path) -> tuple[int, int]:
    if "r_peaks_ms" in row and isinstance(row["r_peaks_ms"], str) and row["r_peaks_ms"].strip():
        try:
            peaks = [float(v) for v in row["r_peaks_ms"].replace(",", ";").split(";") if v.strip()]
        except ValueError:
            raise CardioError(f"{path}: r_peaks_ms {row['r_peaks_ms']!r} is not a list of times") from None
        if len(peaks) < 2:
            raise CardioError(f"{path}: r_peaks_ms needs two R peaks, got {row['r_peaks_ms']!r}")
        t0, t1 = (int(round(p / frame_time_ms)) for p in peaks[:2])
    else:
        try:
            t0, t1 = int(row["cycle_start"]), int(row["cycle_end"])
        except (TypeError, ValueError):
            raise CardioError(f"{path}: cycle_start/cycle_end must be frame indices") from None
    if t1 - t0 < MIN_CYCLE_FRAMES or t0 < 0:
        raise CardioError(f"{path}: the cycle (frames {t0}..{t1}) must span at least {MIN_CYCLE_FRAMES} frames")
    if t1 > n_frames - 1:
        raise CardioError(f"{path}: {n_frames} frames, shorter than one cycle (R peaks at frames {t0} and {t1})")
    return t0, t1


def read_sequence(row: pd.Series) -> Sequence:
    """A patient's grey frames, frame time, cycle and septum points, all checked against each other."""
    from cardio.cine import read_cine, to_gray

    path = Path(row["sequence_path"])
    given = row.get("frame_time_ms")
    has_time = given is not None and pd.notna(given)
    cine = read_cine(path, min_frames=2, need_frame_time=not has_time)
    frame_time = float(given) if has_time else cine.frame_time_ms
    if frame_time is None or not np.isfinite(frame_time) or frame_time <= 0:
        raise CardioError(f"{path}: no usable frame time (give frame_time_ms in labels.csv)")
    frames = to_gray(cine.frames)
    frames = frames if frames.dtype == np.uint8 else np.clip(frames, 0, 255).astype(np.uint8)
    cycle = _cycle(row, frame_time, len(frames), path)
    septum = Path(row["septum_path"])
    points = check_points(read_septum(septum), frames.shape[1:], septum)
    return Sequence(frames, frame_time, cycle, points, path)


def load(cfg: dict, ctx) -> Cohort:
    """The user's folder (septal_flash.dir) or the synthetic cohort, written once into the run's cache."""
    from cardio_mmode_septal_flash.synthetic import cached_cohort

    root = Path(cfg["dir"]).expanduser() if cfg["dir"] else cached_cohort(ctx.cache, cfg["synthetic"], ctx.progress)
    table = read_labels(root)
    rows = {rid: row for rid, (_, row) in zip(table["record_id"], table.iterrows())}
    return Cohort(table, loader=lambda rid: read_sequence(rows[rid]), label=LABEL, root=root,
                  outcomes=tuple(c for c in OUTCOME_COLUMNS if c in table.columns))
