"""No planted identifier (MRN-like map file names, CSV patient, study and record ids, a free-text column holding
every name of cardio.testing.PLANTS) reaches anything a perfusion_polar run writes."""
from __future__ import annotations

import pandas as pd
import pytest

pytest.importorskip("cardio_perfusion_polar")

from cardio.testing import PLANTS, invoke, planted_in
from cardio_perfusion_polar.synthetic import synthesize, write_cohort

TINY = ["perfusion_polar.step1.epochs=1", "perfusion_polar.step2.epochs=1", "perfusion_polar.cpu_threads=1",
        "cv.folds=2", "stats.n_resamples=100", "report.figures=false"]


def test_no_identifier_reaches_any_output(tmp_path):
    table, maps = synthesize(36, 32, seed=3)
    mrns = [PLANTS["PatientID"] if i == 0 else f"MRN-6{i:07d}" for i in range(len(table))]
    table = table.assign(patient_id=mrns, record_id=[f"{m}_{PLANTS['AccessionNumber']}" for m in mrns],
                         note=" / ".join(PLANTS.values()))
    root = write_cohort(table, maps, tmp_path / "cohort")  # maps/<record_id>.npy: the MRN in every file name
    assert set(planted_in(root, plants=mrns[1:])) == {*PLANTS.values(), *mrns[1:]}
    result = invoke("run", "--plugin", "perfusion_polar", "--out", str(tmp_path / "run"),
                    "--set", f"cohort.dir={root}", "--set", f"cache_dir={tmp_path / 'cache'}",
                    *(f"--set={s}" for s in TINY))
    assert result.exit_code == 0, result.stderr[-3000:]
    found = planted_in(tmp_path / "run", tmp_path / "cache", text=result.stdout + result.stderr, plants=mrns[1:])
    assert not found, f"identifiers in the outputs: {found}"
    assert pd.read_csv(tmp_path / "run" / "predictions.csv")["patient_id"].str.fullmatch(r"P[0-9A-F]{12}").all()
