"""Beat segmentation: windows of 1.2 RR intervals around each R peak, resampled to a fixed length.

The paper segments "into 1.2 RR intervals" without saying where the window sits. Here the window
of beat i runs from R_i - (rr_factor / 3) * RR_prev to R_i + (2 * rr_factor / 3) * RR_next, i.e.
R - 0.4 RR_prev ... R + 0.8 RR_next for rr_factor = 1.2: the P wave before and the T wave after
each R peak, 1.2 RR long in a regular rhythm, stretched or shrunk with the neighbouring
intervals. The first and last beat (no RR on one side) and beats whose window leaves the signal
are dropped. Each window is linearly interpolated to `length` samples, all beats at once.
"""
from __future__ import annotations

import numpy as np

from cardio import CardioError


def beat_bounds(rpeaks: np.ndarray, rr_factor: float = 1.2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(index into rpeaks of the beats that have both neighbours, window start, window end) in samples."""
    r = np.asarray(rpeaks, dtype=np.float64)
    if len(r) < 3:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
    inner = np.arange(1, len(r) - 1)
    start = r[inner] - rr_factor / 3.0 * (r[inner] - r[inner - 1])
    end = r[inner] + 2.0 * rr_factor / 3.0 * (r[inner + 1] - r[inner])
    return inner, start, end


def segment_beats(signal: np.ndarray, rpeaks: np.ndarray, fs: float, length: int = 256,
                  rr_factor: float = 1.2) -> tuple[np.ndarray, np.ndarray]:
    """Beat windows (n, length) float32 and the R peaks they belong to (a subset of `rpeaks`).

    `signal` is one lead (1-D) sampled at `fs` Hz; `rpeaks` are sample indices (sorted here).
    """
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim != 1:
        raise CardioError(f"segment_beats expects one lead (1-D), got shape {x.shape}")
    if length < 2 or rr_factor <= 0 or fs <= 0:
        raise CardioError(f"segment_beats: length={length}, rr_factor={rr_factor}, fs={fs} must be positive "
                          "(length >= 2)")
    r = np.sort(np.asarray(rpeaks, dtype=np.int64).ravel())
    if len(r) and (r[0] < 0 or r[-1] >= len(x)):
        raise CardioError(f"segment_beats: R peaks outside the signal of {len(x)} samples")
    r = np.unique(r)
    inner, start, end = beat_bounds(r, rr_factor)
    ok = (start >= 0) & (end <= len(x) - 1) & (end > start)
    inner, start, end = inner[ok], start[ok], end[ok]
    if not len(inner):
        return np.zeros((0, length), np.float32), np.zeros(0, np.int64)
    # sample positions of every output point of every beat, then one vectorized linear interpolation
    pos = start[:, None] + (end - start)[:, None] * np.linspace(0.0, 1.0, length)[None, :]
    i0 = np.clip(np.floor(pos).astype(np.int64), 0, len(x) - 2)
    frac = pos - i0
    beats = x[i0] * (1.0 - frac) + x[i0 + 1] * frac
    return beats.astype(np.float32), r[inner]
