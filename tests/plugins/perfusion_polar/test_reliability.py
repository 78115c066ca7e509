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


def _first(t: pd.DataFrame, column: str, value) -> pd.DataFrame:
    return t.assign(**{column: [value] + list(t[column][1:])})


def _csv(d: Path, edit) -> None:
    table = pd.read_csv(d / "labels.csv", dtype={"patient_id": str})
    edit(table).to_csv(d / "labels.csv", index=False)


CASES = [
    # patient ids name the map files: maps/<patient_id>.npy
    ("patient-id-escapes", lambda d: _csv(d, lambda t: _first(t, "patient_id", "../../x")), "not a plain file name"),
    ("patient-id-absolute", lambda d: _csv(d, lambda t: _first(t, "patient_id", "/etc/passwd")),
     "not a plain file name"),
    ("patient-id-empty", lambda d: _csv(d, lambda t: _first(t, "patient_id", None)), "lack a patient_id"),
    ("patient-id-duplicated", lambda d: _csv(d, lambda t: pd.concat([t, t.iloc[:1]])), "duplicated patient_id"),
    # the maps
    ("map-pickled", lambda d: _first_map(d).write_bytes(pickle.dumps({"a": 1})), ".npy"),
    ("map-object-array", lambda d: np.save(_first_map(d), np.array([{"a": 1}], dtype=object), allow_pickle=True),
     ".npy"),
    ("map-empty-file", lambda d: _first_map(d).write_bytes(b""), ".npy"),
    ("map-truncated", lambda d: _first_map(d).write_bytes(_first_map(d).read_bytes()[:300]), ".npy"),
    ("map-strings", lambda d: np.save(_first_map(d), np.full((3, 32, 32), "a")), "real numbers"),
    ("map-complex", lambda d: np.save(_first_map(d), np.ones((3, 32, 32), np.complex64)), "real numbers"),
    ("map-wrong-shape", lambda d: np.save(_first_map(d), np.zeros((2, 32, 32))), "must have shape (3, N, N)"),
    ("map-not-square", lambda d: np.save(_first_map(d), np.zeros((3, 32, 24))), "must have shape (3, N, N)"),
    ("map-other-size", lambda d: np.save(sorted((d / "maps").glob("*.npy"))[1], np.ones((3, 16, 16))), ".npy"),
    ("map-nan", lambda d: np.save(_first_map(d), np.full((3, 32, 32), np.nan)), "NaN"),
    ("map-missing", lambda d: _first_map(d).unlink(), "not found"),
    # labels.csv
    ("labels-missing-column", lambda d: _csv(d, lambda t: t.drop(columns=["mfr_seg05"])), "mfr_seg05"),
    ("labels-risk-not-binary", lambda d: _csv(d, lambda t: t.assign(smoking=2)), "'smoking' must be 0/1"),
    ("labels-risk-text", lambda d: _csv(d, lambda t: _first(t, "diabetes", "yes")), "'diabetes' must be 0/1"),
    ("labels-label-not-binary", lambda d: _csv(d, lambda t: _first(t, "impaired_mfr", 2)), "'impaired_mfr'"),
    ("labels-risk-constant", lambda d: _csv(d, lambda t: t.assign(diabetes=0)), "'diabetes' is 0 for every patient"),
    ("labels-label-constant", lambda d: _csv(d, lambda t: t.assign(impaired_mfr=1)),
     "'impaired_mfr' is 1 for every patient"),
    ("labels-label-computed-constant",
     lambda d: _csv(d, lambda t: t.drop(columns=["impaired_mfr"]).assign(**{f"mfr_seg{i:02d}": 3.0
                                                                             for i in range(1, 18)})),
     "impaired_mfr (mean segment MFR < 2.0) is 0 for every patient"),
    ("labels-mfr-text", lambda d: _csv(d, lambda t: _first(t, "mfr_seg01", "high")), "mfr_seg01"),
    ("labels-mfr-inf", lambda d: _csv(d, lambda t: _first(t, "mfr_seg01", np.inf)), "mfr_seg01"),
    ("labels-mfr-missing-value", lambda d: _csv(d, lambda t: _first(t, "mfr_seg01", None)), "mfr_seg01"),
    ("labels-header-only", lambda d: _csv(d, lambda t: t.iloc[:0]), "no patients"),
    ("labels-empty-file", lambda d: (d / "labels.csv").write_text(""), "labels.csv"),
    ("labels-binary-file", lambda d: (d / "labels.csv").write_bytes(b"\xff\xfe\x00\x01"), "labels.csv"),
    ("labels-missing", lambda d: (d / "labels.csv").unlink(), "labels.csv"),
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

