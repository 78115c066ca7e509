"""Reliability, family "control characters escaped in messages" (issue 58, case 18): a file name, column or id quoted
in an error, a validate problem or a log line has its control characters escaped by one helper (cardio.data.printable),
which CardioError, the cohort's Problem and the log's format (cardio.data.LogFormat) all use.

Before (54c188f): a cohort row naming `bad\\n23:59:59 INFO cohort OK: no problem found.csv` printed a forged log line
"23:59:59 INFO cohort OK: no problem found.csv, which is not a file in ..." on stderr. Controls in pairs: the name is
shown escaped on the one line that names it, and text without control characters is left as it is.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from cardio import CardioError
from cardio.data import printable
from cardio.data.cohort import CohortProblems, Column, Schema, read_table
from cardio_testing.harness import invoke

FORGED = "bad\n23:59:59 INFO cohort OK: no problem found.csv"


def test_printable_escapes_every_control_character_once():
    assert printable("a\nb\r\tc\x1b[2Jd\u202ee\x00") == "a\\nb\\r\\tc\\x1b[2Jd\\u202ee\\x00"
    assert printable(printable("a\nb")) == "a\\nb"  # idempotent: an error quoting an error is escaped once
    assert printable("ecg/crt001.hea: ü, é, 中") == "ecg/crt001.hea: ü, é, 中"  # the control: nothing to escape
    assert str(CardioError(f"{FORGED}: not found")) == "bad\\n23:59:59 INFO cohort OK: no problem found.csv: not found"


def test_a_log_line_quoting_a_name_stays_one_line(capsys):
    from cardio.study.record import run_logger

    log = run_logger(None, True)
    log.info("reading %s", FORGED)
    log.warning("column %r", "a\x1b[31mred")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and lines[0].endswith("INFO reading bad\\n23:59:59 INFO cohort OK: no problem found.csv")
    assert "\x1b" not in lines[1] and lines[1].endswith("'a\\x1b[31mred'")


def test_a_cohort_problem_quoting_a_file_name_is_one_line(tmp_path):
    schema = Schema((Column("y", "binary", target=True), Column("clip", "path", required=True)))
    pd.DataFrame({"patient_id": ["p1", "p2"], "y": [1, 0], "clip": [FORGED, "c.bin"]}).to_csv(
        tmp_path / "labels.csv", index=False)
    (tmp_path / "c.bin").write_bytes(b"x")
    with pytest.raises(CohortProblems) as e:
        read_table(tmp_path, schema)
    assert "\n" not in str(e.value) and "\n" not in str(e.value.problems[0])
    assert "names bad\\n23:59:59 INFO cohort OK: no problem found.csv, which is not a file" in str(e.value.problems[0])


def test_validate_prints_no_forged_line(tmp_path):
    synthetic = pytest.importorskip("cardio_ecg_transfer.synthetic")
    root = tmp_path / "cohort"
    synthetic.write_synthetic_cohort(root, n_patients=4, seed=2, fs=250, seconds=4, leads=("II",))
    rows = pd.read_csv(root / "cohort.csv", dtype=str, keep_default_na=False)
    rows.loc[0, "ecg"] = f"ecg/{FORGED}"
    rows.to_csv(root / "cohort.csv", index=False)
    shutil.rmtree(tmp_path / "cache", ignore_errors=True)
    result = invoke("validate", "--plugin", "ecg_transfer", "--set", f"cohort.dir={root}", "--set", "cv.folds=2",
                    "--set", f"cache_dir={tmp_path / 'cache'}")
    assert result.exit_code == 2
    assert not any(line.startswith("23:59:59") for line in result.stderr.splitlines()), result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("problem:")]
    assert "ecg/bad\\n23:59:59 INFO cohort OK: no problem found.csv" in line
    assert Path(root / "ecg" / "crt001.hea").is_file()  # nothing of the cohort touched
