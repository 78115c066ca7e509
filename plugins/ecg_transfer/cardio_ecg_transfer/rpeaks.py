"""R-peak detection: Chebyshev band-pass and Shannon energy envelope (after Manikandan & Soman 2012).

Steps, all on whole arrays (no Python loop over samples):
1. zero-phase Chebyshev type I band-pass (4th order, 8-20 Hz) and first difference;
2. Shannon energy of the difference after a local amplitude normalisation, smoothed by a
   zero-phase rectangular window (the Shannon energy envelope);
3. envelope peaks scored by their height against the local beat level (``q``) and against the
   envelope's mean over 0.6 s around them (``q2``: how peaked, which separates QRS complexes
   from noise bursts and flutter-like activity);
4. decisions: confident beats, then weaker but peaked ones well clear of the confident beats,
   then a search back in gaps much longer than the running median RR (loops over beats only);
5. each detection moved to the R maximum of the 0.5 Hz high-passed signal within +-60 ms.

No library ships this detector in a usable form: NeuroKit2's ``manikandan2012`` returns the
zero crossings of the Hilbert transform without the refinement, thresholds or search back, and
reaches a lower sensitivity and positive predictivity on MIT-BIH (see benchmarks/rpeaks_mitdb.py).
The decision thresholds below (strong_*, weak_*, fill_*, gap) were chosen on the 22 MIT-BIH DS1
records only (lead 0; `benchmarks/rpeaks_mitdb.py --tune` searches them), so that the DS2 records
score the detector on records it was not tuned on; the benchmark reports both.
"""
from __future__ import annotations

from typing import TypedDict

import numpy as np
from scipy import ndimage
from scipy import signal as sps

from cardio import CardioError


class Settings(TypedDict):
    """The detector's settings: the band-pass (Hz), times in seconds, thresholds."""

    band: tuple[float, float]
    smooth: float
    norm_window: float
    strong_q: float
    strong_q2: float
    weak_q: float
    weak_q2: float
    fill_q: float
    fill_q2: float
    gap: float
    sep: float
    refractory: float
    refine: float
    highpass_hz: float


#: Detector settings (times in seconds). strong_*: thresholds of confident beats; weak_*: of peaked
#: beats at least `sep` x RR (and 0.25 s) away from confident ones; fill_*: of beats searched
#: back in gaps longer than `gap` x the running median RR.
#: strong_q, strong_q2, weak_q2, fill_q and gap: the best of 432 settings on DS1 (benchmarks/rpeaks_mitdb.py --tune:
#: 296 FN + FP on DS1 against 337 for the earlier values 0.3, 1.4, 2.0, 0.08, 1.4 that were tuned on all 48 records).
SETTINGS = Settings(band=(8.0, 20.0), smooth=0.1, norm_window=2.0, strong_q=0.35, strong_q2=1.1,
                    weak_q=0.1, weak_q2=2.4, fill_q=0.08, fill_q2=1.2, gap=1.2, sep=0.25,
                    refractory=0.25, refine=0.06, highpass_hz=0.5)


def _bandpass(x: np.ndarray, fs: float, low: float, high: float) -> np.ndarray:
    sos = sps.cheby1(4, 1.0, [low, min(high, 0.45 * fs)], btype="bandpass", fs=fs, output="sos")
    return sps.sosfiltfilt(sos, x)


def _highpass(x: np.ndarray, fs: float, cutoff: float) -> np.ndarray:
    sos = sps.butter(2, cutoff, btype="highpass", fs=fs, output="sos")
    return sps.sosfiltfilt(sos, x)


def shannon_energy_envelope(x: np.ndarray, fs: float) -> np.ndarray:
    """Smoothed Shannon energy of the band-passed first difference, one value per sample."""
    s = SETTINGS
    bp = _bandpass(np.asarray(x, dtype=np.float64), fs, *s["band"])
    d = np.abs(np.diff(bp, append=bp[-1]))
    # Local normalisation (running maximum over 2 s) so that one artefact does not flatten every
    # beat. The local maximum maps to 0.6, just below the Shannon-energy maximum at e^-1/2, so the
    # transform stays monotonic and only compresses large amplitudes relative to small ones.
    scale = ndimage.maximum_filter1d(d, max(3, int(s["norm_window"] * fs)), mode="nearest")
    scale = np.maximum(scale, np.percentile(scale, 10) + 1e-12)
    z = np.clip(0.6 * d / scale, 1e-12, 0.6)
    se = -(z ** 2) * np.log(z ** 2)
    w = max(3, int(s["smooth"] * fs) | 1)
    # a rectangular window run forwards and backwards = zero-phase triangular smoothing
    return ndimage.uniform_filter1d(ndimage.uniform_filter1d(se, w), w)


def _running_rr(beats: np.ndarray, fs: float, default: float = 0.8) -> np.ndarray:
    """Median of the 9 RR intervals around each beat (s); one value per beat."""
    rr = np.diff(beats) / fs
    if len(rr) < 3:
        return np.full(len(beats), default)
    med = ndimage.median_filter(rr, 9, mode="nearest")
    return np.r_[med, med[-1]]


def _refractory(c: np.ndarray, h: np.ndarray, idx: np.ndarray, dist: int) -> np.ndarray:
    """Among selected candidates closer than `dist` samples keep the highest, as scipy's find_peaks."""
    if len(idx) < 2:
        return idx
    pos = c[idx]
    if np.all(np.diff(pos) >= dist):
        return idx
    keep = np.ones(len(idx), bool)
    for k in np.argsort(-h[idx], kind="stable"):  # a loop over beats, highest first
        if not keep[k]:
            continue
        lo, hi = np.searchsorted(pos, pos[k] - dist + 1), np.searchsorted(pos, pos[k] + dist)
        keep[lo:hi] = False
        keep[k] = True
    return idx[keep]


def _search_back(c, h, q, q2, sel, fs, s: dict) -> np.ndarray:
    """Add the highest acceptable candidate in every gap longer than `gap` x running RR, repeatedly."""
    sel = np.asarray(sel, int)
    while len(sel) >= 2:
        beats = c[sel]
        rr = _running_rr(beats, fs)
        gaps = np.nonzero(np.diff(beats) / fs > s["gap"] * rr[:-1])[0]
        if not len(gaps):
            break
        sep = np.maximum(s["sep"] * rr[gaps], 0.25) * fs
        lo = np.searchsorted(c, beats[gaps] + sep)
        hi = np.searchsorted(c, beats[gaps + 1] - sep)
        add = []
        for a, b in zip(lo, hi):  # a loop over gaps
            if b > a:
                k = a + int(np.argmax(h[a:b]))
                if q[k] >= s["fill_q"] and q2[k] >= s["fill_q2"]:
                    add.append(k)
        if not add:
            break
        sel = np.union1d(sel, add)
    return sel


def _refine(x: np.ndarray, peaks: np.ndarray, fs: float, hp: np.ndarray | None = None) -> np.ndarray:
    """Move each detection to the R maximum of the high-passed signal (`hp`, made when None) within +-refine s."""
    if not len(peaks):
        return peaks.astype(np.int64)
    hp = _highpass(x, fs, SETTINGS["highpass_hz"]) if hp is None else hp
    half = max(1, int(SETTINGS["refine"] * fs))
    idx = np.clip(peaks[:, None] + np.arange(-half, half + 1)[None, :], 0, len(x) - 1)
    seg = hp[idx]
    rows = np.arange(len(seg))
    # the record's dominant QRS polarity; a beat whose opposite deflection is 1.5x larger (an
    # ectopic beat, say) is placed on that deflection instead
    pol = np.sign(np.median(seg[rows, np.argmax(np.abs(seg), axis=1)])) or 1.0
    main, other = (pol * seg).max(axis=1), (-pol * seg).max(axis=1)
    sign = np.where(other > 1.5 * main, -pol, pol)
    return np.unique(idx[rows, np.argmax(sign[:, None] * seg, axis=1)]).astype(np.int64)


def _clean(sig: np.ndarray) -> np.ndarray:
    x = np.asarray(sig, dtype=np.float64)
    if x.ndim != 1:
        raise CardioError(f"detect_rpeaks expects one lead (a 1-D array), got shape {x.shape}")
    bad = ~np.isfinite(x)
    if bad.all():
        raise CardioError("detect_rpeaks got a lead with no finite sample")
    if bad.any():  # short gaps (NaN in WFDB) are bridged linearly
        x = x.copy()
        x[bad] = np.interp(np.nonzero(bad)[0], np.nonzero(~bad)[0], x[~bad])
    return x - np.median(x)


def candidates(signal: np.ndarray, fs: float) -> dict | None:
    """The envelope peaks of one lead with their scores (c: positions, h: height, q: against the local beat
    level, q2: peakedness) and the high-passed lead; None when the lead has no candidate. The decision
    thresholds are not used here, so a search over them computes this once per record."""
    fs = float(fs)
    if fs < 100:
        raise CardioError(f"detect_rpeaks needs a sampling rate of at least 100 Hz, got {fs:g} Hz")
    x = _clean(signal)
    if len(x) < int(fs) or np.ptp(x) == 0:
        return None
    env = shannon_energy_envelope(x, fs)
    c, _ = sps.find_peaks(env, distance=max(1, int(0.1 * fs)))
    if not len(c):
        return None
    h = env[c]
    # beat level: running maximum over 1.5 s, then its running median over 8 s (on the envelope
    # decimated to ~36 Hz, which is smooth enough for it and 10x cheaper)
    step = max(1, int(fs // 36))
    ds = env[::step]
    fs_ds = fs / step
    level = ndimage.median_filter(ndimage.maximum_filter1d(ds, max(1, int(1.5 * fs_ds))),
                                  int(8 * fs_ds) | 1, mode="nearest")
    q = h / np.maximum(level[np.minimum(c // step, len(level) - 1)], 1e-12)
    q2 = h / np.maximum(ndimage.uniform_filter1d(env, max(1, int(0.6 * fs)))[c], 1e-12)
    return {"x": x, "fs": fs, "c": c, "h": h, "q": q, "q2": q2, "hp": _highpass(x, fs, SETTINGS["highpass_hz"])}


def decide(cand: dict | None, settings: dict | None = None) -> np.ndarray:
    """R peaks (int64, sorted) chosen among `cand` (from `candidates`) with the decision thresholds
    `settings` (SETTINGS, with any given values over them)."""
    if cand is None:
        return np.zeros(0, dtype=np.int64)
    s = {**SETTINGS, **(settings or {})}
    c, h, q, q2, fs = cand["c"], cand["h"], cand["q"], cand["q2"], cand["fs"]
    refractory = max(1, int(s["refractory"] * fs))
    strong = np.nonzero((q >= s["strong_q"]) & (q2 >= s["strong_q2"]))[0]
    strong = _refractory(c, h, strong, refractory)
    sel = strong
    weak = np.setdiff1d(np.nonzero((q >= s["weak_q"]) & (q2 >= s["weak_q2"]))[0], strong)
    if len(strong) and len(weak):
        rr = _running_rr(c[strong], fs)
        j = np.searchsorted(c[strong], c[weak])
        prev = c[strong][np.maximum(j - 1, 0)]
        nxt = c[strong][np.minimum(j, len(strong) - 1)]
        sep = np.maximum(s["sep"] * rr[np.maximum(j - 1, 0)], 0.25) * fs
        clear = (np.abs(c[weak] - prev) >= sep) & (np.abs(nxt - c[weak]) >= sep)
        sel = _refractory(c, h, np.union1d(strong, weak[clear]), refractory)
    sel = _search_back(c, h, q, q2, sel, fs, s)
    return _refine(cand["x"], c[sel], fs, cand["hp"])


def detect_rpeaks(signal: np.ndarray, fs: float, settings: dict | None = None) -> np.ndarray:
    """Sample indices (int64, sorted) of the R peaks of one ECG lead sampled at `fs` Hz.

    `settings`: decision thresholds to use instead of SETTINGS' (the tuning search of the benchmark)."""
    return decide(candidates(signal, fs), settings)
