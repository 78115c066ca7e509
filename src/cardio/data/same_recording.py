"""One recording under two ids, found by its signal rather than its bytes: a re-export (another format, another
rate, rounded values) or a copy cut later has other bytes and the same beats.

Any plugin whose records carry a 1-D signal with events (an ECG's R peaks, a cine's frame-intensity curve and its
beats) hands `same_recordings` each record's event times and signal. The comparison stays linear in the cohort: each
record is indexed under coarse keys (runs of `K` consecutive intervals between events, rounded to `STEP_S`), records
sharing many keys become candidates (keys held by more than `MAX_BUCKET` records say nothing and are dropped), and
only candidates are compared: their events aligned by the lag the shared keys agree on, then a normalised
cross-correlation of a short window of the two signals (`WINDOW_S`) around that lag. Two recordings of one patient
made at different times share no run of intervals to the millisecond; the same recording correlates near 1.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

K = 4                 # consecutive intervals per key
STEP_S = 0.02         # intervals rounded to this (s): a re-export at another rate moves an event by a sample or two
MAX_BUCKET = 32       # a key more records hold than this (a paced rhythm) identifies nothing
MIN_SHARED = 0.3      # share of the shorter record's keys two records must share to be compared
WINDOW_S = 8.0        # the fingerprint: this much signal, z-scored
SAME_R = 0.95         # normalised cross-correlation at or above which two windows are one recording

Id = TypeVar("Id", bound=Hashable)  # a record's id: its path, its row, whatever the caller keys it by


@dataclass(frozen=True)
class Recording:
    """A record's events (s, increasing) and its signal at `fs` Hz."""

    events: np.ndarray
    signal: np.ndarray
    fs: float


@dataclass(frozen=True)
class Match(Generic[Id]):
    """Records `a` and `b` hold one recording; `b`'s starts `lag_s` seconds into `a`'s (negative: before)."""

    a: Id
    b: Id
    lag_s: float
    r: float


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
    best = max(float(np.dot(wa, _unit(wb[k:k + len(wa)]))) / len(wa) for k in range(0, len(wb) - len(wa) + 1))
    return best


def _unit(w: np.ndarray) -> np.ndarray:
    return (w - w.mean()) / (w.std() or 1.0)


def same_recordings(records: Mapping[Id, Recording]) -> list[Match[Id]]:
    """Every pair of records that holds one recording (records at one rate `fs`), each pair once."""
    keys = {rid: _keys(rec.events) for rid, rec in records.items()}
    buckets: dict[tuple[int, ...], list[Id]] = defaultdict(list)
    for rid, ks in keys.items():
        for k in ks:
            buckets[k].append(rid)
    shared: Counter[tuple[Id, Id]] = Counter()
    for members in buckets.values():
        if 1 < len(members) <= MAX_BUCKET:
            for i, a in enumerate(members):
                for b in members[i + 1:]:
                    shared[(a, b)] += 1
    out: list[Match[Id]] = []
    for (a, b), n in shared.items():
        if n < MIN_SHARED * min(len(keys[a]), len(keys[b])):
            continue
        lags = [keys[a][k] - keys[b][k] for k in keys[a].keys() & keys[b].keys()]
        lag = float(np.median(lags))
        at = max(float(np.median([keys[a][k] for k in keys[a].keys() & keys[b].keys()])) - WINDOW_S / 2, lag, 0.0)
        r = _correlation(records[a], records[b], at, lag)
        if r >= SAME_R:
            out.append(Match(a, b, lag, r))
    return out
