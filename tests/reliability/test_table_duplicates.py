"""Reliability, family "one table, read one way" (issue 58, cases 13, 15, 19 and 20): the one cohort reader refuses a
header naming a column twice, finds a WFDB record copied under another name by every file it names, names lines and
never patient ids, and stops reading the records a table-level problem already names.

Before (54c188f): a second `responder` or `patient_id` column was dropped by pandas' renaming ("responder.1") and the
first one used, "cohort OK"; a renamed WFDB copy (new header, the same .dat) passed as "cohort OK"; the shared-file
problem named every patient's id ("named by 2 patients ('MRN-...', 'MRN-...')"); 2,000 rows naming 3 CSV ECGs read
2,000 records and printed 2,007 problem lines. Controls in pairs: the clean table reads, a patient's own records may
share a file, 20 rows of one fault are printed whole and the 21st is counted.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cardio.data.cohort import CohortProblems, Column, Schema, capped, read_records, read_table
from cardio_testing.harness import invoke

SCHEMA = Schema((Column("responder", "binary", target=True), Column("age", "number")), level="patient")


def _table(root: Path, header: str, rows: list[str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "labels.csv").write_text("\n".join([header, *rows]) + "\n")
    return root


@pytest.mark.parametrize("header", ["patient_id,responder,age,responder", "patient_id,responder,age,patient_id",
                                    "patient_id,responder,age, Responder "])
def test_a_column_named_twice_is_refused_not_read_as_the_first(tmp_path, header):
    rows = ["p1,1,60,0", "p2,0,70,1", "p3,1,65,0"]
    with pytest.raises(CohortProblems) as e:
        read_table(_table(tmp_path, header, rows), SCHEMA)
    (problem,) = e.value.problems
    assert problem.line is None and "all mean" in problem.message and "keep one" in problem.message, problem
    assert "(header columns " in problem.message
    # the control: the same table without the second column reads
    good = _table(tmp_path / "good", ",".join(header.split(",")[:3]), [r.rsplit(",", 1)[0] for r in rows])
    assert read_table(good, SCHEMA)["responder"].tolist() == [1, 0, 1]


def test_trailing_separators_are_not_columns_named_twice(tmp_path):
    # a spreadsheet's empty header cells: pandas' "Unnamed: 3", "Unnamed: 4", kept as the table's own columns
    table = read_table(_table(tmp_path, "patient_id,responder,age,,", ["p1,1,60,,", "p2,0,70,,"]), SCHEMA)
    assert len(table) == 2


# ----------------------------------------------------------------------------------------------- WFDB, every file

@pytest.fixture(scope="module")
def ecg_cohort(tmp_path_factory) -> Path:
    synthetic = pytest.importorskip("cardio_ecg_transfer.synthetic")
    root = tmp_path_factory.mktemp("ecg_dup") / "cohort"
    synthetic.write_synthetic_cohort(root, n_patients=6, seed=5, fs=250, seconds=4, leads=("II",))
    return root


def _edited(ecg_cohort: Path, dest: Path, edit) -> Path:
    root = shutil.copytree(ecg_cohort, dest / "cohort")
    rows = pd.read_csv(root / "cohort.csv", dtype=str, keep_default_na=False)
    rows = edit(root, rows)
    rows.to_csv(root / "cohort.csv", index=False)
    return root


def _renamed_copy(root: Path, rows: pd.DataFrame) -> pd.DataFrame:
    """crt001 copied as crt001b under the second patient: its header renamed, its .dat byte-identical."""
    ecg = root / "ecg"
    shutil.copy(ecg / "crt001.dat", ecg / "crt001b.dat")
    (ecg / "crt001b.hea").write_text((ecg / "crt001.hea").read_text().replace("crt001", "crt001b"))
    rows.loc[1, "ecg"] = "ecg/crt001b"
    return rows


def _validate(root: Path, tmp: Path):
    return invoke("validate", "--plugin", "ecg_transfer", "--set", f"cohort.dir={root}", "--set", "cv.folds=2",
                  "--set", f"cache_dir={tmp / 'cache'}")


def test_a_renamed_wfdb_copy_is_found_by_its_signal_file(ecg_cohort, tmp_path):
    from cardio_ecg_transfer.cohort_table import SCHEMA as ECG

    root = _edited(ecg_cohort, tmp_path, _renamed_copy)
    assert (root / "ecg" / "crt001.hea").read_bytes() != (root / "ecg" / "crt001b.hea").read_bytes()
    with pytest.raises(CohortProblems) as e:
        read_table(root, ECG)
    (problem,) = e.value.problems
    assert (problem.line, problem.column) == (2, "ecg")
    assert "2 files with the same content are named by 2 patients: ecg/crt001.dat (line 2); ecg/crt001b.dat (line 3)" \
        in problem.message
    checked = _validate(root, tmp_path)
    assert checked.exit_code == 2 and "ecg/crt001b.dat (line 3)" in checked.stderr, checked.stderr


def test_a_patients_own_wfdb_records_may_share_their_signal_bytes(ecg_cohort, tmp_path):
    def again(root: Path, rows: pd.DataFrame) -> pd.DataFrame:  # the copy is the first patient's own second record
        rows = _renamed_copy(root, rows)
        rows.loc[1, "patient_id"] = rows.loc[0, "patient_id"]
        return rows

    from cardio_ecg_transfer.cohort_table import SCHEMA as ECG

    assert len(read_table(_edited(ecg_cohort, tmp_path, again), ECG)) == 6


def test_the_shared_file_problem_names_lines_never_patient_ids(ecg_cohort, tmp_path):
    def mrn(root: Path, rows: pd.DataFrame) -> pd.DataFrame:
        rows["patient_id"] = [f"MRN-{4711000 + i}" for i in range(len(rows))]
        rows.loc[1, "ecg"] = rows.loc[0, "ecg"]
        return rows

    checked = _validate(_edited(ecg_cohort, tmp_path, mrn), tmp_path)
    assert checked.exit_code == 2
    assert "one file is named by 2 patients: ecg/crt001.hea (line 2); ecg/crt001.hea (line 3)" in checked.stderr
    assert "MRN-" not in checked.stderr, checked.stderr


# ------------------------------------------------------------------------------------- many rows, few files

def test_rows_naming_a_shared_file_are_read_for_the_first_three_only(tmp_path):
    schema = Schema((Column("y", "binary", target=True), Column("clip", "path", required=True)))
    (tmp_path / "clips").mkdir()
    for k in range(3):
        (tmp_path / "clips" / f"c{k}.bin").write_bytes(np.random.default_rng(k).bytes(1000))
    n = 300
    pd.DataFrame({"patient_id": [f"q{i}" for i in range(n)], "y": 1,
                  "clip": [f"clips/c{i % 3}.bin" for i in range(n)]}).to_csv(tmp_path / "labels.csv", index=False)
    opened: list[int] = []

    def check(table, problems):
        read_records(table, problems, "clip", lambda path, i: opened.append(i))

    with pytest.raises(CohortProblems) as e:
        read_table(tmp_path, schema, checks=[check])
    assert len(opened) == 9, opened  # three rows of each shared file, not 300
    shared = [p for p in e.value.problems if "named by 100 patients" in p.message]
    assert len(shared) == 3 and all("and 90 more row(s)" in p.message for p in shared)


def test_validate_prints_twenty_problems_of_a_kind_then_counts_the_rest():
    lines = [f"labels.csv: line {i + 2}, column 'fs': e{i}.csv is a .csv ECG: its sampling rate goes here"
             for i in range(1000)] + ["labels.csv: line 3, column 'age': must be a number, found 'x'"]
    shown = capped(lines)
    assert shown[:20] == lines[:20] and shown[20] == "... and 980 more of this kind" and shown[21] == lines[-1]
    assert capped(lines[:20]) == lines[:20]  # the control: twenty are printed whole


def test_three_files_named_by_many_rows_stop_validate_early(ecg_cohort, tmp_path):
    import wfdb

    from cardio_ecg_transfer.leads import write_csv

    def many(root: Path, rows: pd.DataFrame) -> pd.DataFrame:
        for k in range(3):  # three CSV ECGs with no `fs`: a problem of every row that names them
            rec = wfdb.rdrecord(str(root / "ecg" / f"crt00{k + 1}"))
            write_csv(root / "ecg" / f"e{k}.csv", rec.p_signal, ["II"])
        big = pd.concat([rows.iloc[:3]] * 200, ignore_index=True)
        big["patient_id"] = big["record_id"] = [f"q{i:04d}" for i in range(len(big))]
        big["ecg"] = [f"ecg/e{i % 3}.csv" for i in range(len(big))]
        return big

    root = _edited(ecg_cohort, tmp_path, many)
    assert len(pd.read_csv(root / "cohort.csv")) == 600
    checked = _validate(root, tmp_path)
    problems = [line for line in checked.stderr.splitlines() if line.startswith("problem:")]
    assert checked.exit_code == 2 and len(problems) <= 25, "\n".join(problems)  # 607 before
    assert sum("named by 200 patients" in p for p in problems) == 3
    assert sum("sampling rate" in p for p in problems) <= 18  # three rows of each file, not 600
