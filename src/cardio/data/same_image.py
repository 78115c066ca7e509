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
