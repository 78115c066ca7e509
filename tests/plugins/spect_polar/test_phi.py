"""Identifiers planted in DICOM headers, file names, CSV ids and a free-text column reach nothing a run writes."""
from __future__ import annotations

import base64
import re
import shutil
from pathlib import Path

import pandas as pd
import pydicom
import pytest

pytest.importorskip("cardio_spect_polar")
from cardio import Cache
from cardio.testing import invoke
from cardio_spect_polar.cohort import write_default_cohort

PLANTED = ("Doe^Jane", "Doe_Jane", "MRN-938475", "MRN-93847561", "19471103", "St Elsewhere Clinic", "ACC-55512")


def _text(folder: Path) -> str:
    chunks = []
    for p in folder.rglob("*"):
        chunks.append(p.name)
        if p.is_file():
            data = p.read_bytes()
            chunks.append(data.decode("latin-1"))
            if p.suffix == ".html":
                chunks += [base64.b64decode(b).decode("latin-1")
                           for b in re.findall(r"base64,([A-Za-z0-9+/=]+)", data.decode())]
    return "\n".join(chunks)


def test_no_identifier_reaches_any_output(tmp_path):
    src = write_default_cohort(Cache(tmp_path / "src-cache"), n_patients=16, seed=6, gates=8,
                               progress=lambda it, **kw: it, slices=16, size=32)
    d = shutil.copytree(src, tmp_path / "cohort")
    table = pd.read_csv(d / "clinical.csv", dtype={"patient_id": str})
    new_ids = {pid: f"MRN-938475{i + 61:02d}" for i, pid in enumerate(table["patient_id"])}
    for i, (old, new) in enumerate(new_ids.items()):
        ds = pydicom.dcmread(d / "volumes" / f"{old}.dcm")
        ds.PatientName, ds.PatientID, ds.PatientBirthDate = "Doe^Jane", new, "19471103"
        ds.InstitutionName, ds.AccessionNumber = "St Elsewhere Clinic", "ACC-55512"
        # file names carry the MRN or the patient's name; the CSV's `file` column lists them
        ds.save_as(d / "volumes" / (f"{new}.dcm" if i % 2 else f"Doe_Jane_{i:02d}.dcm"))
        (d / "volumes" / f"{old}.dcm").unlink()
    table["file"] = [f"volumes/{new}.dcm" if i % 2 else f"volumes/Doe_Jane_{i:02d}.dcm"
                     for i, new in enumerate(new_ids.values())]
    table["patient_id"] = table["patient_id"].map(new_ids)
    table["notes"] = "referred by St Elsewhere Clinic for Doe^Jane"
    table.to_csv(d / "clinical.csv", index=False)
    assert all(p in _text(d) for p in PLANTED)  # the detector sees them where they are
    result = invoke("run", "--plugin", "spect_polar", "--out", str(tmp_path / "run"), "--set", f"cohort.dir={d}",
                    "--set", f"cache_dir={tmp_path / 'cache'}", "--set", "cv.folds=2",
                    "--set", "spect_polar.autoencoder.iterations=20", "--set", "stats.n_resamples=200")
    assert result.exit_code == 0, result.stderr[-3000:]
    written = _text(tmp_path / "run") + _text(tmp_path / "cache") + result.stdout + result.stderr
    assert not [p for p in PLANTED if p in written]
