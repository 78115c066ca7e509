"""cardio_signal.same_signal at cohort size (issue 57): the pairs that share keys by chance are counted in NumPy,
only pairs whose shared runs sit at one lag are correlated, and all shifts of a window are correlated at once; a
re-export and a later cut of one recording are still found among 1,500 others, and nothing else is."""
from __future__ import annotations

import time

import numpy as np

from cardio_signal import same_signal as sr

FS = 250.0


def _cohort(n: int, seed: int, seconds: float = 10.0) -> dict[int | str, sr.Recording]:
    rng = np.random.default_rng(seed)
    out: dict[int | str, sr.Recording] = {}
    for i in range(n):
        events = np.cumsum(rng.normal(60 / rng.uniform(60, 90), 0.03, int(seconds * 1.6)).clip(0.3, 2.0))
        out[i] = sr.Recording(events, rng.normal(0, 1, int((events[-1] + 1) * FS)), FS)
    return out


def test_a_re_export_and_a_later_cut_are_found_among_many_and_nothing_else():
    records = _cohort(1500, 0, seconds=30.0)
    a, b = records[3], records[700]
    shift = 2 * int(FS)  # the copy cut 2 s later: its events and signal start 2 s into the original's
    records["cut"] = sr.Recording(a.events[a.events > 2.0] - 2.0, a.signal[shift:], FS)
    records["export"] = sr.Recording(b.events + 1 / FS, np.round(b.signal, 2), FS)  # re-exported: a sample later
    found = {(m.a, m.b): m for m in sr.same_recordings(records)}
    assert set(found) == {(3, "cut"), (700, "export")}, sorted(found, key=str)
    assert abs(found[(3, "cut")].lag_s - 2.0) < 0.05 and found[(700, "export")].r > 0.99


def test_the_correlation_of_every_shift_at_once_equals_the_loop_over_shifts():
    rng = np.random.default_rng(2)
    a = sr.Recording(np.arange(1.0, 20.0), rng.normal(0, 1, 20 * int(FS)), FS)
    b = sr.Recording(a.events, a.signal + rng.normal(0, 0.5, a.signal.size), FS)
    wa = sr._window(a.signal, FS, 5.0, sr.WINDOW_S)
    wb = sr._window(b.signal, FS, 5.0 - 0.05, sr.WINDOW_S + 0.1)
    unit = [(w - w.mean()) / (w.std() or 1.0) for w in (wb[k:k + wa.size] for k in range(wb.size - wa.size + 1))]
    assert abs(sr._correlation(a, b, 5.0, 0.0) - max(float(np.dot(wa, u)) / wa.size for u in unit)) < 1e-9


def test_chance_pairs_cost_no_correlation_unless_their_runs_sit_at_one_lag(monkeypatch):
    # 10-s records: chance runs of 4 intervals shared by two records grow with the cohort's square; those at
    # disagreeing lags must not reach the correlation (the step that cost 0.8 ms a pair)
    calls = []

    def counted(*a: object) -> float:
        calls.append(a)
        return 0.0

    monkeypatch.setattr(sr, "_correlation", counted)
    records = _cohort(2000, 3)
    sr.same_recordings(records)
    keys = [sr._keys(r.events) for r in records.values()]
    _, _, shared = sr._shared_counts(keys)
    assert shared.size > 10 * max(len(calls), 1), (shared.size, len(calls))


def test_its_time_grows_less_than_fourfold_faster_than_the_cohort():
    # side by side at n and 4n in one process (never an absolute time): 60-s records, the cost a cohort of Holter
    # strips or long rhythm strips meets; 10-s ones keep a share that grows as the square (see the module docstring)
    small, large = _cohort(300, 4, 60.0), _cohort(1200, 5, 60.0)

    def timed(records):
        started = time.perf_counter()
        sr.same_recordings(records)
        return time.perf_counter() - started

    ratios = [timed(large) / timed(small) for _ in range(2)]
    assert min(ratios) < 6, ratios
