"""One scan under two ids, found by its content rather than its bytes: a re-export (another format, resampled,
rescaled, rounded) has other bytes and the same image.

A plugin hands `same_images` one fingerprint per record (a short vector of what the scan shows: a polar map's
segment means, a volume's coarse blocks). Fingerprints are centred on the cohort's mean (what every scan of a
modality shows alike, the bull's-eye's shape, says nothing about who it is) and scaled to unit length; two records
are one scan when theirs correlate at `SAME_R` or above. The comparison stays linear in the cohort: random
hyperplanes split the fingerprints into `BANDS` buckets of `BITS` signs each (SimHash), and only records sharing a
bucket are compared. Two fingerprints at r >= 0.99 differ by < 0.15 rad, so they miss all bands with a chance
below 1e-4; unrelated ones (near-orthogonal once centred) share one with a chance near 2^-BITS.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

import numpy as np

from cardio.data.same_recording import Id, Match

SAME_R = 0.99   # correlation of the centred fingerprints at or above which two records hold one scan
BANDS = 8
BITS = 12


def _unit_rows(x: np.ndarray) -> np.ndarray:
    if len(x) >= 3:  # the cohort's mean is only the scans' shared shape when there are a few of them
        x = x - x.mean(axis=0)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def same_images(fingerprints: Mapping[Id, np.ndarray], same_r: float = SAME_R) -> list[Match[Id]]:
    """Every pair of records whose fingerprints (grouped by length) hold one scan, each pair once (lag_s 0)."""
    groups: dict[int, list[Id]] = defaultdict(list)
    for rid, f in fingerprints.items():
        if np.isfinite(f).all():
            groups[len(f)].append(rid)
    out: list[Match[Id]] = []
    for length, ids in groups.items():
        if len(ids) < 2:
            continue
        unit = _unit_rows(np.stack([np.asarray(fingerprints[i], dtype=np.float64) for i in ids]))
        planes = np.random.default_rng(0).normal(size=(length, BANDS * BITS))
        signs = (unit @ planes > 0).reshape(len(ids), BANDS, BITS)
        codes = signs @ (1 << np.arange(BITS))
        pairs: set[tuple[int, int]] = set()
        for band in range(BANDS):
            buckets: dict[int, list[int]] = defaultdict(list)
            for row, code in enumerate(codes[:, band].tolist()):
                buckets[code].append(row)
            pairs.update((a, b) for rows in buckets.values() for k, a in enumerate(rows) for b in rows[k + 1:])
        for a, b in sorted(pairs):
            r = float(unit[a] @ unit[b])
            if r >= same_r:
                out.append(Match(ids[a], ids[b], 0.0, r))
    return out


CINE_SIDE = 24      # each frame on a CINE_SIDE x CINE_SIDE grid, its fine structure (speckle, edges) kept
CINE_FRAMES = 48    # the first frames of a clip that are compared (a copy cut a few frames later shares most)


def cine_prints(frames: np.ndarray) -> np.ndarray:
    """(T, CINE_SIDE ** 2), what same_cines compares: each of a cine's first CINE_FRAMES frames ((T, H, W[, 3])) by
    its fine structure (the frame minus its blur), standardised."""
    import cv2

    grey = (frames.mean(axis=-1) if frames.ndim == 4 else frames)[:CINE_FRAMES].astype(np.float32)
    out = []
    for image in grey:
        small = cv2.resize(image, (CINE_SIDE, CINE_SIDE), interpolation=cv2.INTER_AREA)
        fine = small - cv2.GaussianBlur(small, (0, 0), 2.0)
        out.append(((fine - fine.mean()) / (fine.std() + 1e-9)).ravel())
    return np.stack(out)


def same_cines(clips: Mapping[Id, tuple[np.ndarray, float | None]], same_r: float = SAME_R) -> list[Match[Id]]:
    """Every pair of cines (cine_prints of their frames, frame time in ms or None) that holds one clip, each pair once.

    An echo clip holds one to three beats, too few for same_recording's runs of intervals, and clips of one view look
    alike (a synthetic cohort's to r = 0.97 frame by frame): what identifies a clip is its frames in their order. Every
    frame (its fine structure, centred on the cohort's mean frame) goes into same_images' SimHash buckets; clips
    sharing a bucket are compared at every lag, and one whose aligned frames (half the shorter clip, 4 at least)
    correlate at a median of `same_r` or above is the same clip, re-encoded, resized or cut later. `lag_s`: where b's
    first frame lies in a (a's frame time; 0 when it has none)."""
    prints = {rid: p for rid, (p, _) in clips.items()}
    mean = np.concatenate(list(prints.values())).mean(axis=0) if prints else None
    unit = {rid: _unit_rows(p - mean) if len(p) else p for rid, p in prints.items()}
    planes = np.random.default_rng(0).normal(size=(CINE_SIDE ** 2, BANDS * BITS))
    buckets: dict[tuple[int, int], set[Id]] = defaultdict(set)
    for rid, u in unit.items():
        codes = ((u @ planes > 0).reshape(len(u), BANDS, BITS) @ (1 << np.arange(BITS)))
        for band in range(BANDS):
            for code in set(codes[:, band].tolist()):
                buckets[(band, code)].add(rid)
    pairs = {tuple(sorted((a, b), key=str)) for members in buckets.values() for a in members for b in members
             if str(a) < str(b)}
    out: list[Match[Id]] = []
    for a, b in sorted(pairs, key=str):
        lag, r = _best_lag(unit[a], unit[b])
        if r >= same_r:
            out.append(Match(a, b, lag * (clips[a][1] or 0.0) / 1000.0, r))
    return out


def _best_lag(a: np.ndarray, b: np.ndarray) -> tuple[int, float]:
    """(lag, median r of the aligned frames) at the lag where b's frames match a's best (b's frame 0 at a's `lag`)."""
    r = a @ b.T
    need = max(4, min(len(a), len(b)) // 2)
    best = (0, -1.0)
    for lag in range(-(len(b) - need), len(a) - need + 1):
        aligned = np.diagonal(r, offset=-lag)
        if len(aligned) >= need and float(np.median(aligned)) > best[1]:
            best = (lag, float(np.median(aligned)))
    return best
