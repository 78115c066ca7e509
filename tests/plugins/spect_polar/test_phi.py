"""Identifiers planted in DICOM headers, file names, CSV ids and a free-text column reach nothing a run writes."""
from __future__ import annotations

import shutil

import pandas as pd
import pydicom
import pytest

pytest.importorskip("cardio_spect_polar")
from cardio import Cache
from cardio.testing import PLANTS, invoke, planted_in
from cardio_spect_polar.cohort import write_default_cohort


def test_no_identifier_reaches_any_output(tmp_path):
    src = write_default_cohort(Cache(tmp_path / "src-cache"), n_patients=16, seed=6, gates=8,
                               progress=lambda it, **kw: it, slices=16, size=32)
    d = shutil.copytree(src, tmp_path / "cohort")
    table = pd.read_csv(d / "clinical.csv", dtype={"patient_id": str})
    new_ids = {pid: f"MRN-938475{i + 61:02d}" for i, pid in enumerate(table["patient_id"])}
    for i, (old, new) in enumerate(new_ids.items()):
        ds = pydicom.dcmread(d / "volumes" / f"{old}.dcm")
        for tag, value in PLANTS.items():  # every planted header, the MRN as PatientID of this file
            setattr(ds, tag, new if tag == "PatientID" else value)
        # file names carry the MRN or the patient's name; the CSV's `file` column lists them
        ds.save_as(d / "volumes" / (f"{new}.dcm" if i % 2 else f"Doe_Jane_{i:02d}.dcm"))
        (d / "volumes" / f"{old}.dcm").unlink()
    table["file"] = [f"volumes/{new}.dcm" if i % 2 else f"volumes/Doe_Jane_{i:02d}.dcm"
                     for i, new in enumerate(new_ids.values())]
    table["patient_id"] = table["patient_id"].map(new_ids)
    table["notes"] = f"referred by {PLANTS['InstitutionName']} for {PLANTS['PatientName']}"
    table.to_csv(d / "clinical.csv", index=False)
    mrns = list(new_ids.values())
    assert set(planted_in(d, plants=mrns)) == {*PLANTS.values(), *mrns}  # the detector finds each where it is
    result = invoke("run", "--plugin", "spect_polar", "--out", str(tmp_path / "run"), "--set", f"cohort.dir={d}",
                    "--set", f"cache_dir={tmp_path / 'cache'}", "--set", "cv.folds=2",
                    "--set", "spect_polar.autoencoder.iterations=20", "--set", "stats.n_resamples=200")
    assert result.exit_code == 0, result.stderr[-3000:]
    found = planted_in(tmp_path / "run", tmp_path / "cache", text=result.stdout + result.stderr, plants=mrns)
    assert not found, f"identifiers in the outputs: {found}"
