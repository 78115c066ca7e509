"""cardio validate on a perfusion cohort damaged ten ways lists every damage at once, each naming its line and
column; a run refuses the damaged cohort in one line; the repaired cohort passes validate and its run finishes
(issue 26: a cohort that passes validate does not fail later on its input)."""
from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("cardio_perfusion_polar")

import numpy as np
import pandas as pd

from cardio_perfusion_polar import synthetic
from cardio_testing.harness import check_refused, invoke

SETS = ["cv.folds=2", "perfusion_polar.step1.epochs=1", "perfusion_polar.step2.epochs=1",
        "train.cpu_threads=1", "final_model=false", "explain=false", "report.figures=false",
        "stats.n_resamples=100"]


def _maps(root, name: str):
    return root / "maps" / name


def _damage(root) -> dict[str, str]:
    """Ten damages; returns what `cardio validate` must say about each (a piece of its problem line)."""
    t = pd.read_csv(root / "labels.csv", dtype=str, keep_default_na=False)
    np.save(_maps(root, "PF0002.npy"), np.zeros((2, 32, 32), np.float32))          # 1 wrong map shape
    nan = np.load(_maps(root, "PF0003.npy"))
    nan[1, 10, 10] = np.nan
    np.save(_maps(root, "PF0003.npy"), nan)                                         # 2 NaN in a map
    t.loc[3, "age"] = "sixty"                                                       # 3 a non-numeric covariate
    _maps(root, "PF0005.npy").unlink()                                              # 4 a missing file
    full = _maps(root, "PF0006.npy").read_bytes()
    _maps(root, "PF0006.npy").write_bytes(full[:len(full) // 2])                    # 5 a truncated .npy
    t["record_id"] = t["patient_id"]
    t.loc[7, "record_id"] = t.loc[6, "record_id"]                                   # 6 a duplicate id
    t["map"] = ""
    t.loc[8, "map"] = "../elsewhere/PF0009.npy"                                      # 7 a path out of the folder
    positive = t.index[t["diabetes"] == "1"]
    t.loc[positive[1:], "diabetes"] = "0"                                           # 8 one diabetic patient only
    table = pd.read_csv(root / "maps" / "PF0011.csv")
    table.iloc[1:].to_csv(root / "maps" / "PF0011.csv", index=False)               # 9 a polar table lacking a cell
    t.loc[11, "sex_male"] = "M"                                                     # 10 sex coded M/F, not 0/1
    t.to_csv(root / "labels.csv", index=False)
    return {"map shape": "line 3, column 'map': PF0002.npy has shape (2, 32, 32)",
            "NaN": "line 4, column 'map': PF0003.npy holds 1 NaN/inf value(s)",
            "covariate": "line 5, column 'age': must be a finite number, found 'sixty'",
            "missing file": "line 6, column 'map': names maps/PF0005",
            "truncated": "line 7, column 'map': PF0006.npy is not a readable .npy array",
            "duplicate": "column 'record_id': record_id appears on more than one row",
            "outside": "line 10, column 'map': names '../elsewhere/PF0009.npy', outside the cohort folder",
            "positives": "column 'diabetes': the column is 1 in one patient only; each task needs two patients",
            "table": "line 12, column 'map': PF0011.csv holds 3071 cells",
            "sex": "line 13, column 'sex_male': must be 0/1 (or yes/no), found 'M'"}


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory):
    """(the damaged cohort, what validate must say, the clean cohort): 30 synthetic patients, PF0011's map a ring x
    sector table of 32 rings x 32 sectors."""
    tmp = tmp_path_factory.mktemp("validate")
    table, maps = synthetic.synthesize(30, 32, seed=8)
    clean = synthetic.write_cohort(table, maps, tmp / "clean")
    synthetic.write_cohort(table.iloc[10:11], maps[10:11], tmp / "table", tables=(32, 32))
    (clean / "maps" / "PF0011.npy").unlink()
    (tmp / "table" / "maps" / "PF0011.csv").rename(clean / "maps" / "PF0011.csv")
    damaged = shutil.copytree(clean, tmp / "damaged")
    return damaged, _damage(damaged), clean, tmp


def test_validate_lists_all_ten_damages_at_once(cohorts):
    damaged, expected, _, tmp = cohorts
    result = invoke("validate", "--plugin", "perfusion_polar", "--set", f"cohort.dir={damaged}",
                    "--set", f"cache_dir={tmp / 'cache'}", *(f"--set={s}" for s in SETS))
    assert result.exit_code == 2
    problems = [line for line in result.stderr.splitlines() if line.startswith("problem:")]
    text = "\n".join(problems)
    missing = {what: piece for what, piece in expected.items() if piece not in text}
    assert not missing, (missing, problems)
    # nothing else: each line is one of the ten (the duplicate is a line for each of its two rows, and the study
    # the two rows now share, by default named after the record, a line for each as well)
    dup = [line for line in problems if not any(piece in line for piece in expected.values())]
    assert all(("line 8, " in line or "line 9, " in line) and "study_id" in line for line in dup), dup
    assert len(problems) == len(expected) + 1 + len(dup), problems
    # a run is refused on the same cohort before any stage, in one line naming the first problem and the count
    run = invoke("run", "--plugin", "perfusion_polar", "--out", str(tmp / "refused"), "--set", f"cohort.dir={damaged}",
                 "--set", f"cache_dir={tmp / 'cache'}", *(f"--set={s}" for s in SETS))
    check_refused(run, f"PF0002.npy has shape (2, 32, 32); a map is (3, N, N): rest, stress, MFR (and "
                       f"{len(problems) - 1} more problem(s); `cardio validate` lists them all)")


def test_the_repaired_cohort_passes_validate_and_runs(cohorts):
    _, _, clean, tmp = cohorts
    sets = [f"--set=cohort.dir={clean}", f"--set=cache_dir={tmp / 'cache'}", *(f"--set={s}" for s in SETS)]
    result = invoke("validate", "--plugin", "perfusion_polar", *sets)
    assert result.exit_code == 0 and result.stdout.startswith("cohort OK: 30 records of 30 patients"), result.stderr
    run = invoke("run", "--plugin", "perfusion_polar", "--out", str(tmp / "run"), *sets)
    assert run.exit_code == 0, run.stderr[-2000:]
    assert json.loads((tmp / "run" / "run.json").read_text())["status"] == "finished"
    pred = pd.read_csv(tmp / "run" / "predictions.csv")
    assert pred["patient_id"].nunique() == 30  # the table-map study (PF0011) among them
