"""The synthetic cohort at 300 patients passes its own same-recording check (issue 57: `benchmarks/scale.py` found
two of its patients, crt110 and crt288, named as one recording: six R-R intervals within 2 samples by chance and
beats alike, r = 0.97), while a re-export and a later cut of one of its ECGs are still found."""
from __future__ import annotations

import numpy as np

from cardio_ecg_transfer.beat_images import highpass
from cardio_ecg_transfer.rpeaks import detect_rpeaks
from cardio_ecg_transfer.synthetic import cohort_table, synthesize_ecg
from cardio_signal.same_signal import Recording, same_recordings

FS = 360.0


def _recording(row) -> Recording:
    signal = np.asarray(synthesize_ecg(row, 0, FS, 10.0, ("II",)), dtype=float).reshape(-1)
    filtered = highpass(signal, FS, 0.5)
    return Recording(detect_rpeaks(filtered, FS) / FS, filtered, FS)


def test_two_synthetic_patients_alike_are_not_one_recording_and_copies_are():
    table = cohort_table(300, 0)  # rows as the cohort writer hands them (synthesize_ecg seeds by the row's position)
    at = {rid: i for i, rid in enumerate(table["record_id"])}
    records = {rid: _recording(table.iloc[at[rid]]) for rid in ("crt110", "crt288")}
    assert same_recordings(records) == []
    a = records["crt110"]
    cut = 2 * int(FS)
    records["cut"] = Recording(a.events[a.events >= 2.0] - 2.0, a.signal[cut:], FS)
    records["export"] = Recording(records["crt288"].events + 1 / FS, np.round(records["crt288"].signal, 3), FS)
    assert {(m.a, m.b) for m in same_recordings(records)} == {("crt110", "cut"), ("crt288", "export")}
