"""One recording under two ids, found by its signal rather than its bytes: a re-export (another format, another
rate, rounded values) or a copy cut later has other bytes and the same beats.

Any plugin whose records carry a 1-D signal with events (an ECG's R peaks, a cine's frame-intensity curve and its
beats) hands `same_recordings` each record's event times and signal, and the kernel's
cardio.data.same_recording.copy_problems names each pair it returns that two patients hold. Each record is indexed
under coarse keys (runs of `K` consecutive intervals between events, rounded to `STEP_S`); records sharing many keys
at one lag become candidates (keys held by more than `MAX_BUCKET` records say nothing and are dropped), and only
candidates are compared: their events aligned by the lag the shared keys agree on, then a normalised
cross-correlation of a short window of the two signals (`WINDOW_S`) around that lag. Two recordings of one patient
made at different times share no run of intervals to the millisecond; the same recording correlates near 1.

Cost (issue 57): indexing is linear in the cohort. Pairs sharing a key by chance grow with its square until the
buckets fill (at most MAX_BUCKET - 1 pairs a key); they are counted in NumPy, and those whose runs sit at one lag by
chance (runs of 6 matching intervals: about 1 pair in 6,000 of 10-s ECGs) are correlated, all shifts at once. At
3,000 random 10-s ECGs that is 0.9 s (2.8 s before); at 60-s ones 0.5 s (2.5 s), and linear.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from cardio.data.same_recording import Id, Match

K = 4                 # consecutive intervals per key
STEP_S = 0.02         # intervals rounded to this (s): a re-export at another rate moves an event by a sample or two
MAX_BUCKET = 32       # a key more records hold than this (a paced rhythm) identifies nothing
MIN_SHARED = 0.3      # share of the shorter record's keys two records must share, at one lag, to be compared
LAG_TOL_S = 0.1       # a shared run's lag within this of the pair's median lag (a re-export moves events by ms)
EVENT_TOL_S = 0.012   # one recording's events, aligned, agree to this (a sample or two at another rate)
EVENTS_AGREE = 0.8    # share of the overlap's events that must agree: runs equal after rounding by chance drift
WINDOW_S = 8.0        # the fingerprint: this much signal, z-scored
SAME_R = 0.99         # normalised cross-correlation at or above which two windows are one recording (a re-export:
                      # 0.999 and more; two synthetic patients, beats alike and events within 2 samples: 0.97)


@dataclass(frozen=True)
class Recording:
    """A record's events (s, increasing) and its signal at `fs` Hz."""

    events: np.ndarray
    signal: np.ndarray
    fs: float


def _keys(events: np.ndarray) -> dict[tuple[int, ...], float]:
    """Each run of K rounded intervals -> the time of its first event (the first such run, if it recurs)."""
    rr = np.round(np.diff(np.asarray(events, dtype=float)) / STEP_S).astype(np.int64)
    out: dict[tuple[int, ...], float] = {}
    for i in range(len(rr) - K + 1):
        out.setdefault(tuple(rr[i:i + K].tolist()), float(events[i]))
    return out


def _window(x: np.ndarray, fs: float, start_s: float, seconds: float) -> np.ndarray:
    i = max(int(round(start_s * fs)), 0)
    w = np.asarray(x[i:i + int(seconds * fs)], dtype=np.float64)
    return (w - w.mean()) / (w.std() or 1.0)


def _correlation(a: Recording, b: Recording, at_a: float, lag: float) -> float:
    """The highest normalised cross-correlation of a's window at `at_a` with b's at `at_a - lag`, within +-50 ms."""
    wa = _window(a.signal, a.fs, at_a, WINDOW_S)
    shift = int(0.05 * b.fs)
    wb = _window(b.signal, b.fs, at_a - lag - shift / b.fs, WINDOW_S + 2 * shift / b.fs)
    if a.fs != b.fs or len(wa) < a.fs or len(wb) < len(wa):
        return 0.0
    # every shift at once: wa sums to 0, so its dot with a z-scored window is its dot with the raw one over the
    # window's SD (a constant window, SD 0, correlates 0)
    windows = np.lib.stride_tricks.sliding_window_view(wb, len(wa))
    sd = windows.std(axis=1)
    r = np.divide(windows @ wa, sd * len(wa), out=np.zeros(len(sd)), where=sd > 0)
    return float(r.max())


def _events_agree(a: np.ndarray, b: np.ndarray, lag: float) -> bool:
    """Whether EVENTS_AGREE of a's events where the two overlap have one of b's (shifted by `lag`) within
    EVENT_TOL_S. Two patients' rhythms can share runs of intervals equal to STEP_S and, synthetic or paced, beats
    that correlate; their events drift apart by milliseconds a beat, one recording's do not (issue 57: two of 300
    synthetic ECGs correlated at r = 0.97)."""
    b = np.asarray(b, dtype=float) + lag
    a = np.asarray(a, dtype=float)
    a = a[(a >= b[0] - EVENT_TOL_S) & (a <= b[-1] + EVENT_TOL_S)]
    if a.size < K + 1:
        return False
    at = np.clip(np.searchsorted(b, a), 1, b.size - 1)
    gap = np.minimum(np.abs(a - b[at - 1]), np.abs(b[at] - a))
    return bool(np.mean(gap <= EVENT_TOL_S) >= EVENTS_AGREE)


def _shared_counts(keys: list[dict[tuple[int, ...], float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a, b, keys shared) of every pair of records (positions, a < b) that share a key held by at most MAX_BUCKET
    records. Chance collisions make the pairs grow with the square of the cohort until the buckets fill, so they are
    counted in NumPy, a bucket size at a time (a Counter of tuples cost 1 s at 2,400 ECGs; issue 57)."""
    buckets: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for i, ks in enumerate(keys):
        for k in ks:
            buckets[k].append(i)
    by_size: dict[int, list[list[int]]] = defaultdict(list)
    for members in buckets.values():
        if 1 < len(members) <= MAX_BUCKET:
            by_size[len(members)].append(members)
    n, codes = max(len(keys), 1), [np.empty(0, dtype=np.int64)]
    for m, groups in by_size.items():
        rows, (first, second) = np.asarray(groups, dtype=np.int64), np.triu_indices(m, 1)  # members increasing
        codes.append((rows[:, first] * n + rows[:, second]).ravel())
    pair, count = np.unique(np.concatenate(codes), return_counts=True)
    return pair // n, pair % n, count


def same_recordings(records: Mapping[Id, Recording]) -> list[Match[Id]]:
    """Every pair of records that holds one recording (records at one rate `fs`), each pair once."""
    ids = list(records)
    keys = [_keys(records[rid].events) for rid in ids]
    a_at, b_at, shared = _shared_counts(keys)
    sizes = np.array([len(k) for k in keys], dtype=np.int64)
    near = shared >= MIN_SHARED * np.minimum(sizes[a_at], sizes[b_at])
    out: list[Match[Id]] = []
    for i, j in zip(a_at[near].tolist(), b_at[near].tolist()):
        ka, kb = keys[i], keys[j]
        common = ka.keys() & kb.keys()
        lags = np.array([ka[k] - kb[k] for k in common])
        lag = float(np.median(lags))
        # one recording's shared runs sit at one lag; chance ones (their number grows with the cohort's square) at
        # any: only the first are worth a correlation
        if np.sum(np.abs(lags - lag) <= LAG_TOL_S) < MIN_SHARED * min(len(ka), len(kb)):
            continue
        if not _events_agree(records[ids[i]].events, records[ids[j]].events, lag):
            continue
        at = max(float(np.median([ka[k] for k in common])) - WINDOW_S / 2, lag, 0.0)
        r = _correlation(records[ids[i]], records[ids[j]], at, lag)
        if r >= SAME_R:
            out.append(Match(ids[i], ids[j], lag, r))
    return out
