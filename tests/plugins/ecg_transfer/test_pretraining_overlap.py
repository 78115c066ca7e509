"""Issue 55: a cohort whose ECGs are MIT-BIH records (those the transfer backbone pretrains on) is named as such, by
content: two real MIT-BIH excerpts exported as .npy at 500 Hz (MIT-BIH's: 360 Hz) under new ids are found (and which
record), the cohort's other ECGs are not, and the count reaches the report's section."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("cardio_ecg_transfer")

from scipy.signal import resample_poly

from cardio_ecg_transfer import cohort_ecg, pretraining_overlap, report, synthetic
from cardio_testing.harness import cpu_context, plugin_config


def _excerpt(mitdb_dir, record: str, start_s: float, seconds: float = 10.0) -> np.ndarray:
    import wfdb

    sig = wfdb.rdrecord(str(mitdb_dir / record), sampfrom=int(start_s * 360),
                        sampto=int((start_s + seconds) * 360), channels=[0]).p_signal[:, 0]
    return resample_poly(sig, 25, 18)  # 360 -> 500 Hz


def test_mitdb_records_in_a_cohort_are_found_by_content_and_reported(mitdb_dir, tmp_path):
    folder = synthetic.write_synthetic_cohort(tmp_path / "cohort", n_patients=8, seed=3, fs=500, seconds=10).parent
    table = pd.read_csv(folder / "cohort.csv")
    for i, (record, start) in enumerate([("101", 300.0), ("106", 1200.0)]):  # DS1 records: pretrained on
        np.save(folder / f"copied{i}.npy", _excerpt(mitdb_dir, record, start)[:, None])
        table.loc[i, "ecg"], table.loc[i, "fs"] = f"copied{i}.npy", 500
    table.to_csv(folder / "cohort.csv", index=False)
    config = plugin_config("ecg_transfer", [f"cohort.dir={folder}", f"ecg_transfer.mitdb_dir={mitdb_dir}"])
    ctx = cpu_context(tmp_path / "run")
    cohort = cohort_ecg.load(config, ctx)
    overlap = cohort.stage.pretraining_overlap
    ids = table["record_id"].astype(str) if "record_id" in table.columns else table["patient_id"].astype(str)
    assert [(rid, rec) for rid, rec, _ in overlap] == [(ids[0], "101"), (ids[1], "106")], overlap
    assert all(r >= pretraining_overlap.MIN_CORRELATION for _, _, r in overlap)
    text = report.overlap_text(overlap, len(cohort))
    assert text.startswith(f"**2 of the cohort's {len(cohort)} ECGs are MIT-BIH recordings**") and "MIT-BIH 106" in text
    # a DS2 record (not pretrained on) in the same cohort is not named
    found = pretraining_overlap.find({"x": _excerpt(mitdb_dir, "100", 60.0)}, 500.0, mitdb_dir,
                                     ["101", "106", "108"])
    assert found == []
