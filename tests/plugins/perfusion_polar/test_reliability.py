"""Bad polar-map cohorts: one error naming the file, never a traceback or a read outside the cohort folder."""
from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("cardio_perfusion_polar")
from cardio.testing import check_refused, checksums, invoke
from cardio_perfusion_polar.synthetic import synthesize, write_cohort


@pytest.fixture(scope="module")
def good_cohort(tmp_path_factory) -> Path:
    table, maps = synthesize(24, 32, seed=1)
    return write_cohort(table, maps, tmp_path_factory.mktemp("perf") / "cohort")


def _first_map(d: Path) -> Path:
    return sorted((d / "maps").glob("*.npy"))[0]


def _csv(d: Path, edit) -> None:
    table = pd.read_csv(d / "labels.csv", dtype={"patient_id": str})
    edit(table).to_csv(d / "labels.csv", index=False)


CASES = [
    ("patient-id-escapes", lambda d: _csv(d, lambda t: t.assign(patient_id=["../../x"] + list(t["patient_id"][1:]))),
     "outside the cohort folder"),
    ("map-pickled", lambda d: _first_map(d).write_bytes(pickle.dumps({"a": 1})), ".npy"),
    ("map-object-array", lambda d: np.save(_first_map(d), np.array([{"a": 1}], dtype=object), allow_pickle=True),
     ".npy"),
    ("map-wrong-shape", lambda d: np.save(_first_map(d), np.zeros((2, 32, 32))), "must have shape (3, N, N)"),
    ("map-nan", lambda d: np.save(_first_map(d), np.full((3, 32, 32), np.nan)), "NaN"),
    ("map-missing", lambda d: _first_map(d).unlink(), "not found"),
    ("labels-missing-column", lambda d: _csv(d, lambda t: t.drop(columns=["mfr_seg05"])), "mfr_seg05"),
    ("labels-risk-not-binary", lambda d: _csv(d, lambda t: t.assign(smoking=2)), "'smoking' must be 0/1"),
    ("labels-empty-file", lambda d: (d / "labels.csv").write_text(""), "labels.csv"),
    ("labels-binary-file", lambda d: (d / "labels.csv").write_bytes(b"\xff\xfe\x00\x01"), "labels.csv"),
]


@pytest.mark.parametrize("case_id,corrupt,names", CASES, ids=[c[0] for c in CASES])
def test_bad_polar_map_cohort_is_one_line_and_changes_nothing(good_cohort, tmp_path, case_id, corrupt, names):
    d = shutil.copytree(good_cohort, tmp_path / "cohort")
    corrupt(d)
    before = checksums(d)
    result = invoke("run", "--plugin", "perfusion_polar", "--out", str(tmp_path / "run"),
                    "--set", f"perfusion.dir={d}", "--set", f"cache_dir={tmp_path / 'cache'}", "--set", "cv.folds=2")
    check_refused(result, names)
    assert checksums(d) == before

