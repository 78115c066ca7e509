"""Bad SPECT inputs through the real CLI: one error line naming the file, exit 2, the cohort folder unchanged."""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pydicom
import pytest

pytest.importorskip("cardio_spect_polar")
from cardio import Cache, CardioError
from cardio.testing import check_refused, checksums, invoke
from cardio_spect_polar.cohort import load_cohort, write_default_cohort


@pytest.fixture(scope="module")
def good_cohort(tmp_path_factory) -> Path:
    """A small user-style cohort folder: clinical.csv and volumes/P0001.dcm ..."""
    cache = tmp_path_factory.mktemp("spect_cache")
    folder = write_default_cohort(Cache(cache), n_patients=12, seed=4, gates=8, progress=lambda it, **kw: it,
                                  slices=16, size=32)
    return folder


def _csv(d: Path, edit) -> None:
    table = pd.read_csv(d / "clinical.csv", dtype={"patient_id": str})
    table = edit(table)
    table.to_csv(d / "clinical.csv", index=False)


def _with_file_column(d: Path, first: str) -> None:
    def edit(t):
        t["file"] = [f"volumes/{p}.dcm" for p in t["patient_id"]]
        t.loc[0, "file"] = first
        return t
    _csv(d, edit)


def _dicom(d: Path, name: str, change) -> None:
    path = d / "volumes" / name
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path)


CASES = [
    ("file-parent", lambda d: _with_file_column(d, "../elsewhere/P0001.dcm"), "outside the cohort folder"),
    ("file-absolute", lambda d: _with_file_column(d, "/etc/hostname"), "outside the cohort folder"),
    ("dicom-300-bytes", lambda d: (d / "volumes" / "P0002.dcm").write_bytes((d / "volumes" / "P0002.dcm")
                                                                          .read_bytes()[:300]), "truncated"),
    ("dicom-frames-0", lambda d: _dicom(d, "P0003.dcm", lambda ds: setattr(ds, "NumberOfFrames", 0)),
     "NumberOfFrames"),
    ("dicom-no-pixels", lambda d: _dicom(d, "P0004.dcm", lambda ds: delattr(ds, "PixelData")), "no pixel data"),
    ("dicom-ct", lambda d: _dicom(d, "P0005.dcm", lambda ds: setattr(ds, "Modality", "CT")), "must be NM"),
    ("dicom-not-dicom", lambda d: (d / "volumes" / "P0006.dcm").write_text("hello"), "P0006.dcm"),
    ("label-2", lambda d: _csv(d, lambda t: t.assign(responder=[2] + list(t["responder"][1:]))), "must be 0/1"),
    ("label-missing", lambda d: _csv(d, lambda t: t.drop(columns=["responder"])), "responder"),
    ("covariate-missing", lambda d: _csv(d, lambda t: t.drop(columns=["lvef"])), "lvef"),
    ("patient-without-volume", lambda d: (d / "volumes" / "P0007.dcm").unlink(), "no volume or polar map"),
    ("csv-header-only", lambda d: _csv(d, lambda t: t.iloc[:0]), "no patients"),
    ("csv-duplicate-patient", lambda d: _csv(d, lambda t: pd.concat([t, t.iloc[:1]])), "duplicated"),
]


@pytest.mark.parametrize("case_id,corrupt,names", CASES, ids=[c[0] for c in CASES])
def test_bad_spect_input_is_one_line_and_changes_nothing(good_cohort, tmp_path, case_id, corrupt, names):
    d = shutil.copytree(good_cohort, tmp_path / "cohort")
    corrupt(d)
    before = checksums(d)
    result = invoke("run", "--plugin", "spect_polar", "--out", str(tmp_path / "run"), "--set", f"data.dir={d}",
                    "--set", f"cache_dir={tmp_path / 'cache'}", "--set", "cv.folds=2",
                    "--set", "autoencoder.iterations=2")
    check_refused(result, names)
    assert checksums(d) == before


def test_outside_paths_only_with_the_switch(good_cohort, tmp_path):
    d = shutil.copytree(good_cohort, tmp_path / "cohort")
    shutil.copytree(d / "volumes", tmp_path / "elsewhere")
    _with_file_column(d, "../elsewhere/P0001.dcm")
    with pytest.raises(CardioError, match="outside the cohort folder"):
        load_cohort(d, label="responder")
    table = load_cohort(d, label="responder", allow_outside=True)
    assert table.loc[0, "path"].endswith("elsewhere/P0001.dcm") and len(table) == 12
