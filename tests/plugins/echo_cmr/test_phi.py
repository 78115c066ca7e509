"""No planted identifier (every DICOM tag of cardio.testing.PLANTS, MRN-like file names, CSV ids and study ids,
a free-text column) reaches anything an echo_cmr run writes: run folder, clip cache, stdout, stderr."""
from __future__ import annotations

import pandas as pd
import pytest

pytest.importorskip("cardio_echo_cmr")

from cardio.testing import PLANTS, invoke, plant_dicom, planted_in
from cardio_echo_cmr import synthetic

TINY = ["echo_cmr.clip.size=16", "echo_cmr.clip.frames=4", "echo_cmr.clip.period=2", "echo_cmr.train.epochs=1",
        "echo_cmr.train.batch_size=4", "echo_cmr.train.cpu_threads=1", "echo_cmr.workers=1",
        "train.val_fraction=0", "cv.folds=2", "stats.n_resamples=100", "report.figures=false",
        "echo_cmr.thresholds.t1_ms=1030", "echo_cmr.thresholds.t2_ms=53", "echo_cmr.thresholds.ecv_pct=29"]


def test_no_identifier_reaches_any_output(tmp_path):
    root = synthetic.write_cohort(tmp_path / "cohort", 16, seed=4, n_frames=8, height=48, width=64)
    table = pd.read_csv(root / "labels.csv", dtype=str, keep_default_na=False)
    patients = table["patient_id"].unique()
    mrns = {pid: PLANTS["PatientID"] if i == 0 else f"MRN-7{i:07d}" for i, pid in enumerate(patients)}
    for i, row in table.iterrows():
        old = root / row["file"]
        new = old.with_name(old.name.replace(row["patient_id"], mrns[row["patient_id"]]))
        old.rename(new)
        if new.suffix == ".dcm":
            plant_dicom(new)
        table.loc[i, "file"] = f"videos/{new.name}"
    table["study_id"] = [f"ACC-{mrns[p]}-{s}" for p, s in zip(table["patient_id"], table["study_id"])]
    table["patient_id"] = table["patient_id"].map(mrns)
    table["comment"] = f"{PLANTS['PatientName']} sent by {PLANTS['ReferringPhysicianName']}"
    table.to_csv(root / "labels.csv", index=False)
    others = sorted(set(mrns.values()) - {PLANTS["PatientID"]})
    assert set(planted_in(root, plants=others)) == {*PLANTS.values(), *others}  # the detector finds every plant
    result = invoke("run", "--plugin", "echo_cmr", "--out", str(tmp_path / "run"), "--set", f"cohort.dir={root}",
                    "--set", f"cache_dir={tmp_path / 'cache'}", *(f"--set={s}" for s in TINY))
    assert result.exit_code == 0, result.stderr[-3000:]
    found = planted_in(tmp_path / "run", tmp_path / "cache", text=result.stdout + result.stderr, plants=others)
    assert not found, f"identifiers in the outputs: {found}"
