"""Bad polar-map cohorts: one error naming the file (and the line and column of labels.csv), never a traceback or a
read outside the cohort folder."""
from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("cardio_perfusion_polar")
from cardio_perfusion_polar.synthetic import synthesize, write_cohort
from cardio_testing.harness import check_refused, checksums, invoke


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


def _map_column(value: str):
    """labels.csv gets a `map` column naming the default files, and `value` in its first row."""
    return lambda d: _csv(d, lambda t: t.assign(map=[value] + [f"maps/{p}.npy" for p in t["patient_id"][1:]]))



def _noise(shape: tuple[int, ...]) -> np.ndarray:
    """A map of another shape whose pixels vary (a constant map is a problem of its own: a blank export), its values
    plausible (rest and stress in %, a flow reserve: implausible values are problems of their own)."""
    scale = np.array([100, 100, 4], np.float32)[:, None, None]
    return np.random.default_rng(0).random(shape, dtype=np.float32) * scale[:shape[0]]


CASES = [
    # the maps' paths: maps/<record_id>.npy by default (the record is the patient here), or the `map` column;
    # whichever names them, they stay inside the cohort folder (cohort.allow_outside_paths is off)
    ("patient-id-escapes", lambda d: _csv(d, lambda t: _first(t, "patient_id", "../../x")),
     "outside the cohort folder"),
    ("patient-id-absolute", lambda d: _csv(d, lambda t: _first(t, "patient_id", "/etc/passwd")), "not a file"),
    ("map-column-escapes", _map_column("../x.npy"), "'map': names '../x.npy', outside the cohort folder"),
    ("map-column-absolute", _map_column("/etc/passwd"), "'map': names '/etc/passwd', outside the cohort folder"),
    ("patient-id-empty", lambda d: _csv(d, lambda t: _first(t, "patient_id", None)), "'patient_id': is empty"),
    # a repeated row is a second record of the patient (record_id PF0001#2), whose map is not there
    ("patient-id-duplicated", lambda d: _csv(d, lambda t: pd.concat([t, t.iloc[:1]])), "PF0001#2"),
    # the maps
    ("map-pickled", lambda d: _first_map(d).write_bytes(pickle.dumps({"a": 1})), ".npy"),
    ("map-object-array", lambda d: np.save(_first_map(d), np.array([{"a": 1}], dtype=object), allow_pickle=True),
     ".npy"),
    ("map-empty-file", lambda d: _first_map(d).write_bytes(b""), ".npy"),
    ("map-truncated", lambda d: _first_map(d).write_bytes(_first_map(d).read_bytes()[:300]), ".npy"),
    ("map-strings", lambda d: np.save(_first_map(d), np.full((3, 32, 32), "a")), "real numbers"),
    ("map-complex", lambda d: np.save(_first_map(d), np.ones((3, 32, 32), np.complex64)), "real numbers"),
    # shapes are read from the .npy headers with the table: listed by cardio validate, before any run
    ("map-wrong-shape", lambda d: np.save(_first_map(d), np.zeros((2, 32, 32))), "a map is (3, N, N)"),
    ("map-not-square", lambda d: np.save(_first_map(d), np.zeros((3, 32, 24))), "a map is (3, N, N)"),
    ("map-other-size", lambda d: np.save(sorted((d / "maps").glob("*.npy"))[1], _noise((3, 16, 16))),
     "PF0002.npy is a 16x16 map; the cohort's maps are 32x32"),
    ("map-nan", lambda d: np.save(_first_map(d), np.full((3, 32, 32), np.nan)), "NaN"),
    ("map-missing", lambda d: _first_map(d).unlink(), "'map': names maps/PF0001{.npy,.csv}, which is not a file"),
    # labels.csv (an empty target cell is a missing label, not a problem)
    ("labels-missing-column", lambda d: _csv(d, lambda t: t.drop(columns=["mfr_seg05"])), "mfr_seg05"),
    ("labels-risk-not-binary", lambda d: _csv(d, lambda t: t.assign(smoking=2)), "must be 0/1 (or yes/no), found '2'"),
    ("labels-risk-text", lambda d: _csv(d, lambda t: _first(t, "diabetes", "maybe")), "'diabetes': must be 0/1"),
    ("labels-label-not-binary", lambda d: _csv(d, lambda t: _first(t, "impaired_mfr", 2)), "'impaired_mfr'"),
    ("labels-risk-constant", lambda d: _csv(d, lambda t: t.assign(diabetes=0)),
     "'diabetes': the column is 0 in every one of its 24 row(s)"),
    ("labels-risk-all-missing", lambda d: _csv(d, lambda t: t.assign(smoking=None)),
     "target column(s) ['smoking'] hold no value at all"),
    ("labels-targets-absent", lambda d: _csv(d, lambda t: t.drop(columns=["smoking"])),
     "target column(s) ['smoking'] hold no value at all (absent from the cohort table"),
    ("labels-label-constant", lambda d: _csv(d, lambda t: t.assign(impaired_mfr=1)),
     "'impaired_mfr': the column is 1 in every"),
    ("labels-label-computed-constant",
     lambda d: _csv(d, lambda t: t.drop(columns=["impaired_mfr"]).assign(**{f"mfr_seg{i:02d}": 3.0
                                                                             for i in range(1, 18)},
                                                                          global_mfr=3.0)),
     "impaired_mfr (derived: mean of the 17 segment MFRs < 2.0) is 0 in every"),
    ("labels-mfr-text", lambda d: _csv(d, lambda t: _first(t, "mfr_seg01", "high")),
     "'mfr_seg01': must be a finite number"),
    ("labels-mfr-inf", lambda d: _csv(d, lambda t: _first(t, "mfr_seg01", np.inf)),
     "'mfr_seg01': must be a finite number"),
    ("labels-mfr-negative", lambda d: _csv(d, lambda t: _first(t, "mfr_seg01", -0.5)), "'mfr_seg01': must be >= 0"),
    ("labels-header-only", lambda d: _csv(d, lambda t: t.iloc[:0]), "holds no rows"),
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
                    "--set", f"cohort.dir={d}", "--set", f"cache_dir={tmp_path / 'cache'}", "--set", "cv.folds=2")
    check_refused(result, names)
    assert checksums(d) == before



def test_round_three_maps(tmp_path):
    """Issue 27: a map of the wrong shape is a listed problem before any run (cardio validate lists it); a float64
    map holding 1e300 is finite as float64 but inf as float32, and refused after the cast."""
    from cardio import CardioError
    from cardio.data.cohort import CohortProblems
    from cardio_perfusion_polar.cohort import load_map, read_cohort
    root = write_cohort(*synthesize(24, 16, seed=1), tmp_path / "c")
    maps = sorted((root / "maps").glob("*.npy"))
    np.save(maps[2], _noise((3, 16, 12)))
    np.save(maps[3], _noise((3, 20, 20)))
    with pytest.raises(CohortProblems) as e:
        read_cohort(root)
    text = [str(p) for p in e.value.problems]
    assert any("has shape (3, 16, 12)" in t for t in text), text
    assert any("is a 20x20 map; the cohort's maps are 16x16" in t for t in text), text
    huge = np.ones((3, 16, 16))
    huge[1, 2, 2] = 1e300
    np.save(tmp_path / "huge.npy", huge)
    with pytest.raises(CardioError, match=r"huge.npy holds 1 NaN/inf value\(s\) \(as float32"):
        load_map(tmp_path / "huge.npy")
