"""No planted identifier (CSV ids, file names, free text, WFDB header comments) reaches anything a run writes."""
from __future__ import annotations

import base64
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("cardio_ecg_transfer")
from cardio.testing import invoke
from cardio_ecg_transfer.synthetic import write_synthetic_cohort

PLANTED = ("Doe^Jane", "Doe_Jane", "MRN-93847561", "MRN-5", "19471103", "St Elsewhere Clinic")


def _planted_cohort(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    table = pd.read_csv(dst / "cohort.csv", dtype=str)
    for i in range(len(table)):
        old = dst / table.loc[i, "ecg"]
        new_name = f"Doe_Jane_{i:02d}"
        for ext in (".hea", ".dat"):
            (old.parent / f"{new_name}{ext}").write_bytes((old.parent / f"{old.name}{ext}").read_bytes())
            (old.parent / f"{old.name}{ext}").unlink()
        hea = old.parent / f"{new_name}.hea"
        text = hea.read_text().replace(old.name, new_name)
        hea.write_text(text + "# PatientName: Doe^Jane  DOB 19471103  St Elsewhere Clinic\n")
        table.loc[i, "ecg"] = str(Path(table.loc[i, "ecg"]).parent / new_name)
    table["patient_id"] = [f"MRN-{93847561 + i}" if i == 0 else f"MRN-5{i:07d}" for i in range(len(table))]
    table["record_id"] = [f"MRN-93847561-ecg{i}" if i == 0 else f"MRN-5{i:07d}-ecg" for i in range(len(table))]
    table["note"] = "seen by Dr X for Doe^Jane at St Elsewhere Clinic"
    table.to_csv(dst / "cohort.csv", index=False)
    return dst


def _written_text(folder: Path) -> str:
    chunks = []
    for p in folder.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            chunks.append(data.decode("latin-1"))
            if p.suffix == ".html":  # figures are embedded as base64: decode them too
                for b64 in re.findall(r"base64,([A-Za-z0-9+/=]+)", data.decode()):
                    chunks.append(base64.b64decode(b64).decode("latin-1"))
        chunks.append(p.name)
    return "\n".join(chunks)


def test_no_identifier_reaches_any_output(tmp_path):
    src = tmp_path / "src"
    write_synthetic_cohort(src, n_patients=16, seed=2, fs=360, seconds=4, leads=("II",))
    cohort = _planted_cohort(src, tmp_path / "cohort")
    assert all(p in _written_text(cohort) for p in PLANTED)  # the detector sees them where they are
    result = invoke("run", "--plugin", "ecg_transfer", "--out", str(tmp_path / "run"),
                    "--set", f"cohort.dir={cohort}", "--set", f"cache_dir={tmp_path / 'cache'}",
                    "--set", "cv.folds=2", "--set", "ecg_transfer.pretrain.enabled=false",
                    "--set", "ecg_transfer.finetune.transfer=false", "--set", "train.epochs=1",
                    "--set", "ecg_transfer.finetune.epochs=1", "--set", "stats.n_resamples=200")
    assert result.exit_code == 0, result.stderr[-3000:]
    written = _written_text(tmp_path / "run") + _written_text(tmp_path / "cache") + result.stdout + result.stderr
    found = [p for p in PLANTED if p in written]
    assert not found, f"identifiers in the outputs: {found}"
