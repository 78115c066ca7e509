"""Reliability, family "tables as exported" (issue 41): the one cohort reader reads a table as a spreadsheet saves it
(a UTF-8 byte-order mark, ";" or tab between values, decimal commas, headers in any case with spaces around them) and
names every missing or unknown column together, each with the column it resembles.

Before: a table with a byte-order mark and ";" got only "lacks patient_id", and one with mixed-case headers only
patient_id named. Controls in pairs: the European table reads exactly as the same table written with "," and ".";
a column the schema does not declare and resembles none is kept, unnamed.
"""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

from cardio import CardioError
from cardio.data.cohort import (
    CohortProblems,
    Column,
    Problems,
    Schema,
    csv_delimiter,
    decimal_mark,
    read_records,
    read_table,
)

SCHEMA = Schema((Column("responder", "binary", target=True), Column("lvef", "number", low=0, high=100),
                 Column("age", "number"), Column("nyha", "integer", required=True)), level="patient")
ROWS = {"patient_id": ["p1", "p2", "p3"], "responder": [1, 0, 1], "lvef": [27.5, 31.25, 40.0], "age": [61.0, 70.5, 55],
        "nyha": [2, 3, 3]}


def _write(root: Path, text: str, encoding: str = "utf-8") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "labels.csv").write_bytes(text.encode(encoding))
    return root


def test_a_european_table_with_a_bom_and_other_case_reads_as_the_plain_one(tmp_path, caplog):
    plain = pd.DataFrame(ROWS)
    plain.to_csv(_write(tmp_path / "us", "") / "labels.csv", index=False)
    eu = _write(tmp_path / "eu", "")
    plain.rename(columns={"patient_id": "Patient_ID", "lvef": " LVEF ", "nyha": "NYHA"}).to_csv(
        eu / "labels.csv", sep=";", decimal=",", index=False, encoding="utf-8-sig")
    assert (eu / "labels.csv").read_bytes().startswith(b"\xef\xbb\xbfPatient_ID;")
    with caplog.at_level(logging.INFO, logger="test.headers"):
        got = read_table(eu, SCHEMA, log=logging.getLogger("test.headers"))
    pd.testing.assert_frame_equal(got, read_table(tmp_path / "us", SCHEMA))
    assert "'Patient_ID' as 'patient_id', 'LVEF' as 'lvef', 'NYHA' as 'nyha'" in caplog.text
    assert "read as a CSV with values separated by ';' and decimal mark ','" in caplog.text
    # a tab between values reads too
    plain.to_csv(_write(tmp_path / "tab", "") / "labels.csv", sep="\t", decimal=",", index=False)
    pd.testing.assert_frame_equal(read_table(tmp_path / "tab", SCHEMA), got)


def test_every_missing_and_unknown_column_is_named_together_with_its_near_match(tmp_path):
    root = _write(tmp_path, "\ufeffPatient ID;respnder;LVEF;ages;smoker\np1;1;27,5;61;0\n")
    with pytest.raises(CohortProblems) as e:
        read_table(root, SCHEMA)
    (problem,) = e.value.problems  # one line, as read: the headers were split on ";"
    assert problem.message.startswith("lacks column(s) ['patient_id', 'nyha'] (did you mean 'Patient ID' for "
                                      "'patient_id'?); column(s) 'respnder' (did you mean 'responder'?), 'ages' (did "
                                      "you mean 'age'?) are not columns of this table"), problem.message
    assert "'smoker'" not in problem.message.split("; it has")[0]  # resembles no declared column: kept, unnamed


def test_with_patient_id_present_a_missing_column_stops_nothing_else(tmp_path):
    root = _write(tmp_path, "patient_id,responder,lvef\np1,1,abc\np2,0,27\n")
    with pytest.raises(CohortProblems) as e:
        read_table(root, SCHEMA)
    assert [(p.line, p.column) for p in e.value.problems] == [(None, None), (2, "lvef")]
    assert "lacks column(s) ['nyha']" in e.value.problems[0].message


def test_a_table_writing_both_decimal_marks_is_one_problem_naming_where(tmp_path):
    root = _write(tmp_path, "patient_id;lvef;age;nyha\np1;27,5;61,2;2\np2;1.060;70,1;3\np3;30,5;55,0;3\n")
    with pytest.raises(CohortProblems) as e:
        read_table(root, SCHEMA)
    (problem,) = e.value.problems  # "1.060" may be a thousand and sixty: refused, not read as 1.06
    assert "decimal commas (5 cells" in problem.message and "the points are in column(s) 'lvef' line 3" in \
        problem.message


def test_an_outcome_that_differs_within_a_patient_names_both_lines(tmp_path):
    root = _write(tmp_path, "patient_id,responder,nyha\np1,1,2\np2,0,3\np1,0,2\n")
    with pytest.raises(CohortProblems) as e:
        read_table(root, SCHEMA)
    (problem,) = e.value.problems
    assert (problem.line, problem.column) == (4, "responder")
    assert problem.message.startswith("0 here, 1 on line 2 of the same patient: a patient's records carry one")


def test_the_delimiter_of_european_records():
    assert decimal_mark(["0,125", "-1,5e-3"], ";", "x.csv") == ","
    assert decimal_mark(["0,125"], ",", "x.csv") == "."  # "," between values: a comma is never a decimal mark
    with pytest.raises(CardioError, match="decimal commas .* and decimal points"):
        decimal_mark(["0,125", "0.5"], ";", "x.csv")


@pytest.mark.parametrize("text,sep", [("II\n0,125\n0,5\n", ";"), ("II\n0.125\n", ","), ("I;II\n0,1;0,2\n", ";"),
                                      ("95,09;126,30\n", ";"), ("I\tII\n0,1\t0,2\n", "\t"), ("a,b\t\n1,2\n", ",")])
def test_csv_delimiter_reads_one_lead_files_and_headerless_maps(tmp_path, text, sep):
    (tmp_path / "x.csv").write_text(text)
    assert csv_delimiter(tmp_path / "x.csv") == sep


def test_read_records_lists_a_problem_many_files_share_once_with_its_lines(tmp_path):
    root = tmp_path / "c"
    (root / "f").mkdir(parents=True)
    table = pd.DataFrame({"file": [str(root / "f" / f"{i}.bin") for i in range(6)]})
    for path in table["file"]:
        Path(path).write_bytes(b"x")
    problems = Problems(root / "labels.csv")

    def read(path: Path, row: int) -> int:
        if row == 5:
            raise CardioError(f"{path}: truncated")
        if row >= 1:
            raise CardioError(f"{path}: no lead named 'V7'")
        return row

    assert read_records(table, problems, "file", read) == {0: 0}
    shown = [str(p).split("labels.csv: ")[1] for p in problems.items]
    assert shown == ["line 3, column 'file': f/1.bin: no lead named 'V7'", "line 4, column 'file': f/2.bin: no lead "
                     "named 'V7'", "line 5, column 'file': f/3.bin: no lead named 'V7'", "line 7, column 'file': "
                     "f/5.bin: truncated", "column 'file': 1 more row(s) whose file gives the same problem (its file: "
                     "no lead named 'V7'): lines 6"]
