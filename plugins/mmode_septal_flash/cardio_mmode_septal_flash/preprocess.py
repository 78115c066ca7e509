"""Featurize: every record's virtual M-modes (x11 along the septum), in the full and cropped variants.

Per patient: the sequence and its 62 septum points (cohort.py), the line through the 15th
septal point + k (0-based 14 + k, k = -offsets..offsets) along the mid-basal normal toward the LV
(geometry.py), one M-mode per line over the cycle (mmode.py, 500 x 500), then the two variants the paper
compares, resized to the network's input: the full M-mode, and the cropped one (upper half in depth, where the
septum lies; first half of the cycle in time, where the flash happens). Label-free: the
training fold's mean image and the contrast augmentation are applied in training.py.
"""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pandas as pd

from cardio import CardioError, Cohort, Features
from cardio_mmode_septal_flash.cohort import Sequence, read_sequence
from cardio_mmode_septal_flash.geometry import Line, mmode_line
from cardio_mmode_septal_flash.mmode import mmodes_torch, mmodes_vtk
from cardio_mmode_septal_flash.settings import MMode, SeptalFlashSettings

VARIANTS = ("full", "cropped")
BACKENDS = ("torch", "vtk")


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
    """x: per variant (N, K, s, s) uint8 network inputs, and the unshifted 500 x 500 M-modes for the figures; the
    table gains each record's timing and its line's length in mm (NaN where the clip has no calibration)."""
    size, names = s.model.input_size, list(s.model.variants)
    for name in names:
        variant(np.zeros((2, 2), np.uint8), name, 1)  # unknown names fail before any work
    table = cohort.table.copy()
    x: dict[str, list[np.ndarray]] = {name: [] for name in names}
    centre, timing = [], []
    rows = list(table.iterrows())
    for _, row in ctx.progress(rows, desc="virtual M-modes", total=len(rows)):
        seq = read_sequence(row)
        mm = patient_mmodes(seq, s.mmode, s.lv_side)
        for name in names:
            x[name].append(variant(mm, name, size))
        centre.append(mm[len(mm) // 2])
        cycle_ms = (seq.cycle[1] - seq.cycle[0]) * seq.frame_time_ms
        mvc = _number(row, "mvc_ms", s.events.mvc_ms)
        avo = _number(row, "avo_ms", s.events.avo_ms)
        start, end = _number(row, "sf_start_ms", mvc), _number(row, "sf_end_ms", avo)
        line_mm = septal_lines(seq, replace(s.mmode, offsets=0), s.lv_side)[0].length_mm
        timing.append({"cycle_ms": cycle_ms, "mvc_ms": mvc, "avo_ms": avo, "window_start_ms": start,
                       "window_end_ms": end, "n_frames": len(seq.frames),
                       "line_mm": np.nan if line_mm is None else line_mm})
    table = pd.concat([table.drop(columns=[c for c in ("mvc_ms", "avo_ms") if c in table.columns]),
                       pd.DataFrame(timing)], axis=1)
    arrays = {name: np.stack(v) for name, v in x.items()}
    arrays["mmode"] = np.stack(centre)
    return Features(table, x=arrays, label=cohort.label, targets=(cohort.label,))


def _number(row: pd.Series, column: str, default: float) -> float:
    """A row's value of an optional timing column, or the default when the column or value is missing."""
    v = row.get(column)
    return float(v) if v is not None and pd.notna(v) else float(default)
