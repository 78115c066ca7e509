"""Reliability, family "cohort files": one record filed under several patients is refused by the one cohort reader
(issue 43: byte-identical echo clips under two patients gave "cohort OK" in validate and exit 0 in run).

The reader groups the files a table names by size, then by the hash of their first 64 KiB, then of the whole file;
a file, or files with the same bytes, named by rows of several patients is a problem naming every row and patient.
A patient's own records may share one file. Controls in pairs: a copy under a second patient is found, a file of the
same size that differs only after its first 64 KiB is not, nor are one patient's two records of one clip.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cardio.data.cohort import CohortProblems, Column, Schema, read_table
from cardio_testing.harness import check_refused, invoke

SCHEMA = Schema((Column("y", "binary", target=True), Column("view", "category", values=("A4C", "A2C")),
                 Column("clip", "path", required=True)))
SIZE = 70_000  # over the 64 KiB head the reader hashes first


def _cohort(root: Path, rows: list[tuple[str, str, str]], files: dict[str, bytes]) -> Path:
    """labels.csv of (patient_id, view, clip) rows, and the clip files with their bytes."""
    (root / "clips").mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (root / "clips" / name).write_bytes(data)
    pd.DataFrame(rows, columns=["patient_id", "view", "clip"]).assign(y="1").to_csv(root / "labels.csv", index=False)
    return root


def _bytes(seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, SIZE, dtype=np.uint8).tobytes()


def _shared(problems: list) -> list:
    return [p for p in problems if "named by" in p.message]


def test_a_copy_under_another_patient_is_named_with_every_other_problem(tmp_path, caplog):
    late = bytearray(_bytes(1))
    late[-1] ^= 0xFF  # the same size and the same first 64 KiB as a.bin: only the whole file tells them apart
    root = _cohort(tmp_path, [("p1", "A4C", "clips/a.bin"), ("p2", "A4C", "clips/b.bin"),
                              ("p3", "PLAX", "clips/c.bin"), ("p4", "A4C", "clips/d.bin")],
                   {"a.bin": _bytes(1), "b.bin": _bytes(1), "c.bin": bytes(late), "d.bin": _bytes(2)[:-1]})
    log = logging.getLogger("test.shared_files")
    with caplog.at_level(logging.INFO, logger=log.name), pytest.raises(CohortProblems) as e:
        read_table(root, SCHEMA, log=log)
    shared = _shared(e.value.problems)
    assert len(shared) == 1 and (shared[0].line, shared[0].column) == (2, "clip"), e.value.problems
    text = str(shared[0])
    assert "clips/a.bin (line 2); clips/b.bin (line 3)" in text  # lines, never the patients' ids (issue 58)
    assert "named by 2 patients" in text and "give each row its own patient's file" in text
    assert "c.bin" not in text and "d.bin" not in text  # the same size (and head) but other bytes: no problem
    assert [(p.line, p.column) for p in e.value.problems if p not in shared] == [(4, "view")]  # listed together
    assert "4 named, 3 of them compared by content" in caplog.text  # d.bin's size is its own: never opened


def test_one_file_named_under_two_patients_is_refused(tmp_path):
    root = _cohort(tmp_path, [("p1", "A4C", "clips/a.bin"), ("p2", "A2C", "./clips/a.bin"),
                              ("p3", "A4C", "clips/c.bin")], {"a.bin": _bytes(1), "c.bin": _bytes(3)})
    with pytest.raises(CohortProblems) as e:
        read_table(root, SCHEMA)
    assert "one file is named by 2 patients: clips/a.bin (line 2); clips/a.bin (line 3)" in str(e.value)
    assert "'p1'" not in str(e.value) and "\n" not in str(e.value)


def test_a_patients_own_records_may_share_a_file(tmp_path):
    # p1 has the same clip named twice and copied under another name; empty files are the reader's to refuse as
    # truncated, not a record shared by p2 and p3.
    root = _cohort(tmp_path, [("p1", "A4C", "clips/a.bin"), ("p1", "A4C", "clips/a.bin"),
                              ("p1", "A2C", "clips/a_again.bin"), ("p2", "A4C", "clips/e2.bin"),
                              ("p3", "A4C", "clips/e3.bin"), ("p4", "A4C", "clips/d.bin")],
                   {"a.bin": _bytes(1), "a_again.bin": _bytes(1), "e2.bin": b"", "e3.bin": b"", "d.bin": _bytes(2)})
    table = read_table(root, SCHEMA)
    assert len(table) == 6 and table["patient_id"].nunique() == 4


def test_a_duplicated_record_id_is_named_once_not_again_as_a_shared_file(tmp_path):
    # Both rows' default file is clips/r1.bin: the duplicated id is the problem to fix, and the only one named.
    schema = Schema((Column("clip", "path", default="clips/{record_id}", suffixes=(".bin",)),))
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "r1.bin").write_bytes(_bytes(1))
    pd.DataFrame({"patient_id": ["p1", "p2"], "record_id": ["r1", "r1"]}).to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(CohortProblems) as e:
        read_table(tmp_path, schema)
    assert e.value.problems and not _shared(e.value.problems), e.value.problems
    assert {p.column for p in e.value.problems} <= {"record_id", "study_id"}


# ------------------------------------------------------------------ echo_cmr, through the CLI

ECHO_SETS = ("--set", "cv.folds=2")


@pytest.fixture(scope="module")
def echo_cohort(tmp_path_factory) -> Path:
    """echo_cmr's synthetic writer: 8 patients, one study of three 8-frame 48 x 64 clips each."""
    synthetic = pytest.importorskip("cardio_echo_cmr.synthetic")
    root = tmp_path_factory.mktemp("echo_shared") / "cohort"
    synthetic.write_cohort(root, 8, seed=11, n_frames=8, height=48, width=64)
    return root


def _edited(echo_cohort: Path, dest: Path, copy_from: str, to_patient: str, name: str) -> Path:
    """The cohort with `copy_from`'s A4C clip copied as `name`, named by `to_patient`'s A4C row (a new row when
    `to_patient` is `copy_from`: the patient's second record of one clip)."""
    root = dest / "cohort"
    shutil.copytree(echo_cohort, root)
    rows = pd.read_csv(root / "labels.csv", dtype=str, keep_default_na=False)
    a4c = rows["view"] == "A4C"
    source = rows[a4c & (rows["patient_id"] == copy_from)].iloc[0]
    shutil.copy(root / source["file"], root / "videos" / name)
    if to_patient == copy_from:
        again = source.copy()
        again["study_id"], again["file"] = source["study_id"] + "b", f"videos/{name}"
        rows = pd.concat([rows, again.to_frame().T], ignore_index=True)
    else:
        rows.loc[a4c & (rows["patient_id"] == to_patient), "file"] = f"videos/{name}"
    rows.to_csv(root / "labels.csv", index=False)
    return root


def test_echo_clip_copied_under_another_patient_stops_validate_and_run(echo_cohort, tmp_path):
    root = _edited(echo_cohort, tmp_path, "P0001", "P0004", "P0004_A4C_new.dcm")
    checked = invoke("validate", "--plugin", "echo_cmr", "--set", f"cohort.dir={root}", *ECHO_SETS)
    assert checked.exit_code == 2, checked.stderr
    named = [line for line in checked.stderr.splitlines() if line.startswith("problem:") and "named by" in line]
    assert len(named) == 1 and "named by 2 patients: " in named[0], checked.stderr
    assert "videos/P0001_A4C.dcm (line 5); videos/P0004_A4C_new.dcm (line 14)" in named[0]
    assert "'P0001'" not in named[0]  # lines, never the patients' ids (issue 58)
    out = tmp_path / "run"
    ran = invoke("run", "--plugin", "echo_cmr", "--set", f"cohort.dir={root}", *ECHO_SETS, "--out", str(out))
    check_refused(ran, "P0004_A4C_new.dcm")
    assert "named by 2 patients" in ran.stderr.splitlines()[-1] and not out.exists()  # stopped at load


def test_echo_patient_with_two_records_of_one_clip_validates(echo_cohort, tmp_path):
    root = _edited(echo_cohort, tmp_path, "P0001", "P0001", "P0001_A4C_again.dcm")
    checked = invoke("validate", "--plugin", "echo_cmr", "--set", f"cohort.dir={root}", *ECHO_SETS)
    assert checked.exit_code == 0 and "cohort OK" in checked.stdout, checked.stderr
