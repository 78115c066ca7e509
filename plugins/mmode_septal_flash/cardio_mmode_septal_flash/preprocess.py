"""Featurize: every record's virtual M-modes (x11 along the septum), in the full and cropped variants.

Per patient: the sequence and its 62 septum points (cohort.py), the line through the 15th
septal point + k (0-based 14 + k, k = -offsets..offsets) along the mid-basal normal toward the LV
(geometry.py), one M-mode per line over the cycle (mmode.py, 500 x 500), then the two variants the paper
compares, resized to the network's input: the full M-mode, and the cropped one (upper half in depth, where the
septum lies; first half of the cycle in time, where the flash happens). Label-free: the
training fold's mean image and the contrast augmentation are applied in training.py.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from cardio import CardioError, Cohort, Features
from cardio_mmode_septal_flash import store
from cardio_mmode_septal_flash.cohort import Sequence, read_sequence
from cardio_mmode_septal_flash.geometry import Line, mmode_line
from cardio_mmode_septal_flash.mmode import mmodes_torch, mmodes_vtk
from cardio_mmode_septal_flash.settings import MMode, SeptalFlashSettings
from cardio_mmode_septal_flash.store import StoredArray

VARIANTS = ("full", "cropped")
BACKENDS = ("torch", "vtk")
CACHE_NAMESPACE, CACHE_VERSION = "mmode_septal_flash_mmodes", 1
TIMING = "timing.json"
TIMING_KEYS = ("cycle_ms", "mvc_ms", "avo_ms", "window_start_ms", "window_end_ms", "n_frames", "line_mm")


def variant(mmodes: np.ndarray, name: str, size: int) -> np.ndarray:
    """(..., D, W) uint8 M-modes as the network sees them: (..., size, size), full or cropped."""
    if name not in VARIANTS:
        raise CardioError(f"mmode_septal_flash.model.variants: unknown variant {name!r}; use {list(VARIANTS)}")
    lead = mmodes.shape[:-2]
    flat = mmodes.reshape(-1, *mmodes.shape[-2:])
    if name == "cropped":
        d, w = flat.shape[-2:]
        flat = flat[:, : d // 2, : w // 2]
    out = np.stack([cv2.resize(m, (size, size), interpolation=cv2.INTER_AREA) for m in flat])
    return out.reshape(*lead, size, size)


def septal_lines(seq: Sequence, m: MMode, lv_side: str) -> list[Line]:
    """The 2 * offsets + 1 lines of one record, the unshifted one in the middle: `mmode.length_mm` long where the
    clip is calibrated, else `mmode.length` x the image width in pixels."""
    k = m.offsets
    return [mmode_line(seq.points, seq.frames.shape[2], lv_side, m.length, m.rv_share, offset=o,
                       spacing_mm=seq.spacing_mm, length_mm=None if m.length_mm is None else float(m.length_mm))
            for o in range(-k, k + 1)]


def patient_mmodes(seq: Sequence, m: MMode, lv_side: str) -> np.ndarray:
    """(2 * offsets + 1, depth, time) uint8 M-modes of one patient, the unshifted line in the middle."""
    lines = septal_lines(seq, m, lv_side)
    depth, time = m.size
    size = (depth, time)
    if m.backend == "vtk":
        return mmodes_vtk(seq.frames, lines, *seq.cycle, size=size)
    if m.backend != "torch":
        raise CardioError(f"mmode_septal_flash.mmode.backend must be one of {list(BACKENDS)}, got {m.backend!r}")
    return mmodes_torch(seq.frames, [lines], [seq.cycle], size=size)[0]


def featurize(cohort: Cohort, s: SeptalFlashSettings, ctx) -> Features:
    """x: per variant (N, K, s, s) uint8 network inputs, and the unshifted 500 x 500 M-modes for the figures, each a
    StoredArray in one cache entry (store.py: read per batch, never held whole); the table gains each record's
    timing and its line's length in mm (NaN where the clip has no calibration). The entry is keyed by the cohort's
    table but its outcomes (a null control's permuted labels read the same M-modes), the bytes and times of its
    files and the settings the M-modes depend on."""
    for name in s.model.variants:
        variant(np.zeros((2, 2), np.uint8), name, 1)  # unknown names fail before any work
    table = cohort.table.copy()
    shapes = array_shapes(len(table), s)
    folder = ctx.cache.get(CACHE_NAMESPACE, cache_key(cohort, s), lambda tmp: _write(tmp, table, s, shapes, ctx),
                           version=CACHE_VERSION,
                           check=lambda p: store.intact(p, shapes) and _timing(p, len(table)) is not None)
    timing = _timing(folder, len(table))
    assert timing is not None  # the entry passed its check
    table = pd.concat([table.drop(columns=[c for c in ("mvc_ms", "avo_ms") if c in table.columns]),
                       pd.DataFrame(timing)], axis=1)
    arrays = {name: StoredArray(folder / f"{name}.npy", shape) for name, shape in shapes.items()}
    return Features(table, x=arrays, label=cohort.label, targets=(cohort.label,))


def array_shapes(n: int, s: SeptalFlashSettings) -> dict[str, tuple[int, ...]]:
    """The stored arrays of n records: each variant's (n, lines, input, input) and the figures' (n, depth, time)."""
    lines, size = 2 * s.mmode.offsets + 1, s.model.input_size
    shapes: dict[str, tuple[int, ...]] = {name: (n, lines, size, size) for name in s.model.variants}
    shapes["mmode"] = (n, *s.mmode.size)
    return shapes


def cache_key(cohort: Cohort, s: SeptalFlashSettings) -> dict:
    """What the M-modes depend on: the table but its outcomes, each record file's path, size and time, and the
    settings of the line, the M-mode, the events and the network input."""
    drop = [c for c in dict.fromkeys([cohort.label, *cohort.outcomes]) if c in cohort.table.columns]
    table = cohort.table.drop(columns=drop)
    digest = hashlib.sha256(json.dumps([str(c) for c in table.columns]).encode())
    digest.update(pd.util.hash_pandas_object(table.astype(str), index=False).to_numpy().tobytes())
    for path in (p for col in ("sequence", "septum") if col in table.columns for p in table[col].astype(str)):
        try:
            st = os.stat(path)
        except OSError as e:
            raise CardioError(f"{path}: {e.strerror}") from None
        digest.update(f"{os.path.realpath(path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return {"records": digest.hexdigest(), "lv_side": s.lv_side, "events": s.events.as_dict(),
            "mmode": s.mmode.as_dict(), "input_size": s.model.input_size, "variants": list(s.model.variants)}


def _write(folder: Path, table: pd.DataFrame, s: SeptalFlashSettings, shapes: dict[str, tuple[int, ...]],
           ctx) -> None:
    """The cache entry: every record's M-modes appended to its arrays one record at a time, and the timing."""
    folder.mkdir()
    writers = {name: store.ArrayWriter(folder / f"{name}.npy", shape) for name, shape in shapes.items()}
    timing = []
    try:
        for _, row in ctx.progress(table.iterrows(), desc="virtual M-modes", total=len(table)):
            seq = read_sequence(row)
            mm = patient_mmodes(seq, s.mmode, s.lv_side)
            for name in s.model.variants:
                writers[name].append(variant(mm, name, s.model.input_size))
            writers["mmode"].append(mm[len(mm) // 2])
            timing.append(_record_timing(row, seq, s))
    except BaseException:  # the record that stopped the writing is what to report, not the arrays left short
        for w in writers.values():
            w.abandon()
        raise
    for w in writers.values():
        w.close()
    (folder / TIMING).write_text(json.dumps(timing))


def _record_timing(row: pd.Series, seq: Sequence, s: SeptalFlashSettings) -> dict:
    """A record's cycle length, valve events and SF window (ms), frame count and line length (mm, NaN uncalibrated)."""
    cycle_ms = (seq.cycle[1] - seq.cycle[0]) * seq.frame_time_ms
    mvc = _number(row, "mvc_ms", s.events.mvc_ms)
    avo = _number(row, "avo_ms", s.events.avo_ms)
    start, end = _number(row, "sf_start_ms", mvc), _number(row, "sf_end_ms", avo)
    line_mm = septal_lines(seq, replace(s.mmode, offsets=0), s.lv_side)[0].length_mm
    return {"cycle_ms": cycle_ms, "mvc_ms": mvc, "avo_ms": avo, "window_start_ms": start, "window_end_ms": end,
            "n_frames": len(seq.frames), "line_mm": np.nan if line_mm is None else line_mm}


def _timing(folder: Path, n: int) -> list[dict] | None:
    """The entry's timing rows, or None when they are not n rows of TIMING_KEYS (a damaged or foreign entry)."""
    try:
        rows = json.loads((folder / TIMING).read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(rows, list) and len(rows) == n and all(
        isinstance(r, dict) and list(r) == list(TIMING_KEYS) for r in rows)
    return rows if ok else None


def _number(row: pd.Series, column: str, default: float) -> float:
    """A row's value of an optional timing column, or the default when the column or value is missing."""
    v = row.get(column)
    return float(v) if v is not None and pd.notna(v) else float(default)
