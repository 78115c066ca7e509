"""No planted identifier (DICOM header, MRN-like file names and ids, free text) reaches anything a run writes:
figure titles, attention tables and Grad-CAM++ arrays name records by their pseudonyms (issue 27 item 1)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("cardio_mmode_septal_flash")

from cardio.cine import write_dicom_cine
from cardio.testing import PLANTS, invoke, plant_dicom, planted_in, plugin_config
from cardio_mmode_septal_flash import synthetic

FAST = ["profile=fast", "train.cpu_threads=1"]


def _planted_cohort(root: Path) -> tuple[Path, list[str]]:
    cfg = plugin_config("mmode_septal_flash", [*FAST, "mmode_septal_flash.synthetic.n_patients=20",
                                               "mmode_septal_flash.synthetic.n_sf=8",
                                               "mmode_septal_flash.synthetic.size=64"])["mmode_septal_flash"]
    synthetic.write_cohort(cfg["synthetic"], root)
    table = pd.read_csv(root / "labels.csv", dtype=str, keep_default_na=False)
    mrns = [PLANTS["PatientID"] if i == 0 else f"MRN-5{i:07d}" for i in range(len(table))]
    for old, mrn in zip(table["patient_id"], mrns):
        frames = np.load(root / "sequences" / f"{old}.npy")
        dcm = write_dicom_cine(root / "sequences" / f"{mrn}.dcm", frames, float(cfg["synthetic"]["frame_time_ms"]))
        plant_dicom(dcm)
        (root / "sequences" / f"{old}.npy").unlink()
        (root / "septum" / f"{old}.csv").rename(root / "septum" / f"{mrn}.csv")
    table["patient_id"] = mrns
    table["note"] = f"referred by {PLANTS['ReferringPhysicianName']} for {PLANTS['PatientName']}"
    table.to_csv(root / "labels.csv", index=False)
    return root, mrns


def test_no_identifier_reaches_any_output(tmp_path):
    cohort, mrns = _planted_cohort(tmp_path / "cohort")
    assert planted_in(cohort) == list(PLANTS.values())  # the detector finds every plant where it is
    result = invoke("run", "--plugin", "mmode_septal_flash", "--out", str(tmp_path / "run"),
                    "--set", f"cohort.dir={cohort}", "--set", f"cache_dir={tmp_path / 'cache'}",
                    *(f"--set={s}" for s in FAST), "--set", "stats.n_resamples=200",
                    "--set", "final_model=false")  # the bundle holds weights, mean images and hashed fingerprints
    assert result.exit_code == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / "attention").is_dir()  # the outputs that named patients are there
    found = planted_in(tmp_path / "run", tmp_path / "cache", text=result.stdout + result.stderr,
                       plants=mrns[1:])
    assert not found, f"identifiers in the outputs: {found}"
