"""Cohort ECGs that are MIT-BIH recordings the backbone was pretrained on, found by their content, not their names.

A recording's heart rhythm is its fingerprint: the run of R-R intervals of a few beats, found in a MIT-BIH record's
reference beat annotations (its .atr) to within RR_TOLERANCE_S each, marks a candidate place in that record, and
the waveform there confirms it (Pearson r of the cohort ECG's first seconds against each MIT-BIH channel at that place,
within a small shift, above MIN_CORRELATION). Rates, units, formats and file names do not matter: the signals are
compared at 360 Hz after removing their means. Regular rhythms match the R-R intervals of many places; the waveform
check is what decides. Written here: no library matches ECG segments across databases.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import wfdb
from scipy.signal import resample_poly

from cardio_ecg_transfer.records import BEAT_SYMBOLS
from cardio_ecg_transfer.rpeaks import detect_rpeaks

MITDB_FS = 360.0
RR_BEATS = 6            # consecutive R-R intervals compared
RR_TOLERANCE_S = 0.03   # each within 30 ms of the reference annotation's
WINDOW_S = 4.0          # waveform compared over the first seconds after the first matched R peak
SHIFT_S = 0.05          # R peak found by the detector vs annotated by MIT-BIH's readers
MIN_CORRELATION = 0.95
MAX_CANDIDATES = 30     # places whose rhythm matches best, checked by waveform (each reads 4 s of a record)


@dataclass(frozen=True)
class Match:
    record_id: str
    mitdb_record: str
    correlation: float


def _beats(root: Path, record: str) -> np.ndarray:
    ann = wfdb.rdann(str(root / record), "atr")
    keep = np.array([s in BEAT_SYMBOLS for s in ann.symbol], dtype=bool)
    return np.asarray(ann.sample)[keep]


def _at_360(signal: np.ndarray, fs: float) -> np.ndarray:
    up, down = 360, int(round(fs))
    g = np.gcd(up, down)
    return resample_poly(np.asarray(signal, dtype=np.float64), up // g, down // g)


def _correlations(segment: np.ndarray, reference: np.ndarray, lags: int) -> np.ndarray:
    """Pearson r of `segment` against reference[lag:lag + len(segment)] for each lag below `lags` (0 where either
    is flat), the windows as the rows of one array: a Python loop over them was most of find's time."""
    windows = np.lib.stride_tricks.sliding_window_view(np.ascontiguousarray(reference), len(segment))[:lags]
    a, b = segment - segment.mean(), windows - windows.mean(axis=1, keepdims=True)
    denominator = np.sqrt((a * a).sum() * (b * b).sum(axis=1))
    flat = ~(denominator > 0)
    return np.where(flat, 0.0, (a * b).sum(axis=1) / np.where(flat, 1.0, denominator))


class _Records:
    """The MIT-BIH records' samples as stored (int16: 2.6 MB a record), each read once by `find`: a read of each
    window with rdrecord parsed the record's header again every time (up to MAX_CANDIDATES windows a cohort ECG),
    most of find's time. A window's physical values are wfdb's own conversion of its samples (Record.dac), the
    numbers rdrecord(sampfrom, sampto) gives."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.read: dict[str, wfdb.Record] = {}

    def window(self, record: str, start: int, stop: int) -> np.ndarray:
        if record not in self.read:
            self.read[record] = wfdb.rdrecord(str(self.root / record), physical=False, return_res=16)
        whole = self.read[record]
        if stop > whole.sig_len:  # past the record's end: rdrecord's own error
            return wfdb.rdrecord(str(self.root / record), sampfrom=start, sampto=stop).p_signal
        part = copy.copy(whole)
        part.d_signal = whole.d_signal[start:stop]
        return part.dac(return_res=64)


def _confirm(sig360: np.ndarray, first_r: int, records: _Records, record: str, at: int) -> float:
    """The best waveform correlation of the cohort ECG with the record's channels near `at` (its annotated R)."""
    n = int(WINDOW_S * MITDB_FS)
    shift = int(SHIFT_S * MITDB_FS)
    segment = sig360[first_r:first_r + n]
    if len(segment) < n // 2:
        return 0.0
    start = max(at - shift, 0)
    ref = records.window(record, start, at + shift + len(segment))
    lags = min(2 * shift, ref.shape[0] - len(segment)) + 1
    best = 0.0
    for channel in range(ref.shape[1] if lags > 0 else 0):
        r = np.abs(_correlations(segment, ref[:, channel], lags))
        r = r[~np.isnan(r)]
        best = max(best, float(r.max())) if r.size else best
    return best


def find(signals: dict[str, np.ndarray], fs: float, root: Path, records: list[str]) -> list[Match]:
    """The cohort ECGs (record_id -> one lead at `fs`) that are segments of the MIT-BIH `records` in `root`."""
    reference = {r: _beats(root, r) for r in records if (root / f"{r}.atr").is_file()}
    rr_ref = {r: np.diff(b) / MITDB_FS for r, b in reference.items()}
    windows = _Records(root)
    found = []
    for rid, signal in signals.items():
        sig = np.asarray(signal, dtype=np.float64)
        peaks = detect_rpeaks(sig, fs)
        if len(peaks) < RR_BEATS + 2:
            continue
        rr = np.diff(peaks[1:RR_BEATS + 2]) / fs  # from the second peak: the first may be cut
        sig360 = _at_360(sig, fs)
        first_r = int(round(peaks[1] * MITDB_FS / fs))
        candidates = []  # (largest R-R error, record, beat): the closest rhythms first
        for record, ref_rr in rr_ref.items():
            if len(ref_rr) < len(rr):
                continue
            error = np.abs(np.lib.stride_tricks.sliding_window_view(ref_rr, len(rr)) - rr).max(axis=1)
            candidates += [(float(error[j]), record, int(j)) for j in np.flatnonzero(error < RR_TOLERANCE_S)]
        best: Match | None = None
        for _, record, j in sorted(candidates)[:MAX_CANDIDATES]:  # a regular rhythm matches many places: bounded
            r = _confirm(sig360, first_r, windows, record, int(reference[record][j]))
            if r >= MIN_CORRELATION and (best is None or r > best.correlation):
                best = Match(rid, record, round(r, 4))
            if best is not None and best.correlation > 0.999:
                break
        if best is not None:
            found.append(best)
    return found
