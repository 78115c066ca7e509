"""cardio validate lists, at once, every damage of a SPECT cohort that a run would refuse or crash on, each naming
its line and column; the run refuses the same cohort at load, before any analysis (issue 26 item 1)."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pydicom
import pytest

pytest.importorskip("cardio_spect_polar")

from cardio import Cache
from cardio_spect_polar import cohort
from cardio_spect_polar.dicom_io import write_gated_dicom
from cardio_spect_polar.phantom import make_phantom
from cardio_testing.harness import invoke

SLICES, SIZE = 16, 32


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("spect_validate")
    src = cohort.write_default_cohort(Cache(tmp / "cache"), n_patients=24, seed=6, slices=SLICES, size=SIZE,
                                      progress=lambda it, **kw: it)
    return src, tmp


def _copy(clean, name: str):
    src, tmp = clean
    root = shutil.copytree(src, tmp / name)
    table = pd.read_csv(root / "clinical.csv", dtype=str, keep_default_na=False)
    table.insert(1, "record_id", table["patient_id"])
    return root, table


def _validate(root, tmp):
    return invoke("validate", "--plugin", "spect_polar", "--set", f"cohort.dir={root}",
                  "--set", f"cache_dir={tmp / 'cache'}")


def _damage(root, table: pd.DataFrame) -> dict[str, str]:
    """Eleven damages in ten ways and more; what each problem line must say, by CSV line and column (the
    duplicated record id is listed on both its rows)."""
    vol = root / "volumes"
    (vol / "P0001.dcm").write_text("patient_id,responder\nP0001,1\n")  # a text file named .dcm
    table.loc[1, "sex"] = "M"  # coded 1/0 in this cohort
    table.loc[2, "qrs_ms"] = "abc"
    (vol / "P0004.dcm").unlink()
    data = (vol / "P0005.dcm").read_bytes()
    (vol / "P0005.dcm").write_bytes(data[: len(data) * 2 // 3])  # cut inside the pixel data
    table.loc[5, "record_id"] = table.loc[6, "record_id"]  # two rows, one record id
    shutil.copy(vol / "P0008.dcm", root.parent / "outside.dcm")
    table.loc[7, "file"] = "../outside.dcm"
    ds = pydicom.dcmread(vol / "P0009.dcm")
    ds.NumberOfFrames = int(ds.NumberOfFrames) + 8  # more frames declared than the file holds
    ds.save_as(vol / "P0009.dcm")
    four = make_phantom(3, gates=4, slices=SLICES, size=SIZE, pixel_mm=240 / SIZE, slice_mm=144 / SLICES).volume
    write_gated_dicom(vol / "P0010.dcm", four)
    table.loc[10, "responder"] = "2"
    ds = pydicom.dcmread(vol / "P0012.dcm")
    ds.Modality = "CT"
    ds.save_as(vol / "P0012.dcm")
    table.to_csv(root / "clinical.csv", index=False)
    return {"line 2, column 'file'": "not a DICOM file", "line 3, column 'sex'": "'M'",
            "line 4, column 'qrs_ms'": "'abc'", "line 5, column 'file'": "P0004",
            "line 6, column 'file'": "pixel data", "line 7, column 'record_id'": "more than one row",
            "line 8, column 'record_id'": "more than one row",
            "line 9, column 'file'": "outside", "line 10, column 'file'": "NumberOfFrames",
            "line 11, column 'file'": "4 gates", "line 12, column 'responder'": "'2'",
            "line 13, column 'file'": "Modality is 'CT'"}


def test_validate_lists_every_damage_at_once_and_the_run_refuses_them(clean):
    _, tmp = clean
    root, table = _copy(clean, "damaged")
    expected = _damage(root, table)
    result = _validate(root, tmp)
    assert result.exit_code == 2, result.stderr[-2000:]
    problems = [line for line in result.stderr.splitlines() if line.startswith("problem:")]
    for where, what in expected.items():
        found = [line for line in problems if where in line]
        assert found and any(what in line for line in found), (where, what, problems)
    # nothing else: every line names a damaged row (the duplicated id is also a shared study and file there)
    damaged = {where.split(",")[0] for where in expected}
    assert all(any(f"{line_no}," in p for line_no in damaged) for p in problems), problems
    # the run refuses the same cohort at load, in one line, before any analysis
    run = invoke("run", "--plugin", "spect_polar", "--set", f"cohort.dir={root}", "--set",
                 f"cache_dir={tmp / 'cache'}", "--out", str(tmp / "run"))
    assert run.exit_code == 2 and run.stderr.strip().splitlines()[-1].startswith("cardio: error: ")
    assert "clinical.csv: line 2, column 'file'" in run.stderr.strip().splitlines()[-1]
    assert "stage featurize" not in run.stderr


def test_a_cohort_validate_passes_loads_and_too_few_responders_is_listed(clean):
    _, tmp = clean
    root, table = _copy(clean, "few")
    table.to_csv(root / "clinical.csv", index=False)
    ok = _validate(root, tmp)
    assert ok.exit_code == 0 and "cohort OK" in ok.stdout, ok.stderr[-2000:]
    responders = np.flatnonzero(table["responder"].to_numpy() == "1")
    table.loc[responders[1:], "responder"] = "0"  # one responder left
    # and nothing for the papers' rule (cardio_response.volumetric) to derive them back from
    table.loc[responders[1:], [c for c in ("lvesv_reduction_pct", "esv_followup") if c in table]] = ""
    table.to_csv(root / "clinical.csv", index=False)
    few = _validate(root, tmp)
    assert few.exit_code == 2
    problems = [line for line in few.stderr.splitlines() if line.startswith("problem:")]
    assert problems == ["problem: cv.folds=5 but the rarer outcome has only 1 patients; lower cv.folds"], problems
