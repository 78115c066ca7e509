"""No planted identifier (CSV ids, file names, free text, WFDB header comments holding every name of
cardio.testing.PLANTS) reaches anything a run writes. ECGs from carts come as WFDB here: DICOM waveform files, and
their header tags, come with the DICOM reader (issue 25)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("cardio_ecg_transfer")
from cardio.testing import PLANTS, invoke, planted_in
from cardio_ecg_transfer.synthetic import write_synthetic_cohort


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
        hea.write_text(text + "".join(f"# {tag}: {value}\n" for tag, value in PLANTS.items()))
        table.loc[i, "ecg"] = str(Path(table.loc[i, "ecg"]).parent / new_name)
    table["patient_id"] = [f"MRN-{93847561 + i}" if i == 0 else f"MRN-5{i:07d}" for i in range(len(table))]
    table["record_id"] = [f"MRN-93847561-ecg{i}" if i == 0 else f"MRN-5{i:07d}-ecg" for i in range(len(table))]
    table["note"] = f"seen by {PLANTS['ReferringPhysicianName']} for {PLANTS['PatientName']}"
    table.to_csv(dst / "cohort.csv", index=False)
    return dst


def test_no_identifier_reaches_any_output(tmp_path):
    src = tmp_path / "src"
    write_synthetic_cohort(src, n_patients=16, seed=2, fs=360, seconds=4, leads=("II",))
    cohort = _planted_cohort(src, tmp_path / "cohort")
    mrns = ["MRN-5"]  # the prefix of every other patient's id
    assert set(planted_in(cohort, plants=mrns)) == {*PLANTS.values(), *mrns}  # the detector sees them where they are
    result = invoke("run", "--plugin", "ecg_transfer", "--out", str(tmp_path / "run"),
                    "--set", f"cohort.dir={cohort}", "--set", f"cache_dir={tmp_path / 'cache'}",
                    "--set", "cv.folds=2", "--set", "ecg_transfer.pretrain.enabled=false",
                    "--set", "ecg_transfer.finetune.transfer=false", "--set", "stats.reference=null",
                    "--set", "train.epochs=1",
                    "--set", "ecg_transfer.finetune.epochs=1", "--set", "stats.n_resamples=200")
    assert result.exit_code == 0, result.stderr[-3000:]
    found = planted_in(tmp_path / "run", tmp_path / "cache", text=result.stdout + result.stderr, plants=mrns)
    assert not found, f"identifiers in the outputs: {found}"
