"""echo_cmr on the core's cohort contract, on a generated cohort: clips of one study and studies of one patient,
missing CMR values, and a row naming a file outside the cohort folder.

The cohort: the synthetic writer's 24 studies (16 px clips of 8 frames), then by hand four patients given a second
echo study (20 patients), five studies a second A4C clip, ecv_pct emptied in 8 studies (33%), t1_ms in 5 (21%), and
one `file` naming ../x.avi. The run: 2 folds, 1 epoch of batch 4, one torch thread.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("cardio_echo_cmr")

from cardio.cohort import CohortProblems
from cardio.testing import check_refused, invoke, plugin_config, read_metrics, run_plugin, split_overlaps
from cardio_echo_cmr import cohort, synthetic

N_STUDIES = 24
SECOND_STUDY = (1, 5, 9, 13)            # study i belongs to the patient of study i - 1
SECOND_A4C = (2, 6, 10, 14, 18)         # studies with two A4C clips
# Thresholds near the synthetic means, so each abnormal flag has both classes among the few labelled studies of a
# training fold (the paper's thresholds leave 2-3 positives in 24 studies).
THRESHOLDS = {"t1_ms": 1030, "t2_ms": 53, "ecv_pct": 29}
SMALL = ["echo_cmr.clip.size=16", "echo_cmr.clip.frames=4", "echo_cmr.clip.period=2", "echo_cmr.train.epochs=1",
         "echo_cmr.train.batch_size=4", "echo_cmr.train.cpu_threads=1", "echo_cmr.workers=1",
         "echo_cmr.val_fraction=0", "cv.folds=2", "stats.n_resamples=100", "final_model=false",
         *(f"echo_cmr.thresholds.{k}={v}" for k, v in THRESHOLDS.items())]


def _write(root: Path) -> Path:
    synthetic.write_cohort(root, N_STUDIES, seed=11, n_frames=8, height=48, width=64,
                           truth={"wma_fraction": 0.5, "wma_motion_reduction": 1.0})
    rows = pd.read_csv(root / "labels.csv", dtype=str, keep_default_na=False)
    study = rows["study_id"].str[1:].astype(int)
    for i in SECOND_STUDY:
        rows.loc[study == i, "patient_id"] = f"P{i - 1:04d}"
    extra = []
    for i in SECOND_A4C:
        row = rows[(study == i) & (rows["view"] == "A4C")].iloc[0].copy()
        name = f"videos/P{i:04d}_A4C_2.dcm"
        shutil.copy(root / row["file"], root / name)
        row["file"] = name
        extra.append(row)
    rows = pd.concat([rows, pd.DataFrame(extra)], ignore_index=True).sort_values("study_id", kind="stable")
    rng = np.random.default_rng(0)
    no_ecv = rng.choice(N_STUDIES, 8, replace=False)
    no_t1 = rng.choice(N_STUDIES, 5, replace=False)
    study = rows["study_id"].str[1:].astype(int)
    rows.loc[study.isin(no_ecv), "ecv_pct"] = ""
    rows.loc[study.isin(no_t1), "t1_ms"] = ""
    rows.to_csv(root / "labels.csv", index=False)
    return root


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """The generated cohort folder (every row fine)."""
    base = tmp_path_factory.mktemp("echo_contract")
    return _write(base / "cohort")


def _outside(root: Path, tmp: Path) -> tuple[Path, int]:
    """A copy of the cohort whose PLAX row of study S0003 names ../x.avi (a file that is there); its CSV line."""
    bad = tmp / "bad"
    shutil.copytree(root, bad)
    (tmp / "x.avi").write_bytes((root / "videos" / "P0003_PLAX.avi").read_bytes())
    rows = pd.read_csv(bad / "labels.csv", dtype=str, keep_default_na=False)
    (i,) = rows.index[(rows["study_id"] == "S0003") & (rows["view"] == "PLAX")]
    rows.loc[i, "file"] = "../x.avi"
    rows.to_csv(bad / "labels.csv", index=False)
    return bad, int(i) + 2  # header = line 1


def test_a_file_outside_the_folder_is_the_one_problem_listed(generated, tmp_path):
    bad, line = _outside(generated, tmp_path)
    with pytest.raises(CohortProblems) as e:
        cohort.read_cohort(bad, THRESHOLDS)
    (problem,) = e.value.problems
    assert (problem.line, problem.column) == (line, "file") and "outside the cohort folder" in problem.message
    assert "cohort.allow_outside_paths" in problem.message
    # the same table with the switch on reads, and the fixed folder reads without it
    assert len(cohort.read_cohort(bad, THRESHOLDS, allow_outside=True)) == N_STUDIES
    assert len(cohort.read_cohort(generated, THRESHOLDS)) == N_STUDIES


def test_non_numeric_values_and_conflicting_study_values_are_listed_at_once(generated, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(generated, bad)
    rows = pd.read_csv(bad / "labels.csv", dtype=str, keep_default_na=False)
    rows.loc[0, "t1_ms"] = "high"
    rows.loc[4, "wma_global"] = str(1 - int(rows.loc[4, "wma_global"]))   # differs from its study's other rows
    rows.loc[7, "view"] = "PSAX"
    rows.to_csv(bad / "labels.csv", index=False)
    with pytest.raises(CohortProblems) as e:
        cohort.read_clips(bad)
    found = {(p.column, p.line) for p in e.value.problems}
    assert ("t1_ms", 2) in found and ("view", 9) in found
    assert {("wma_global", line) for line in rows.index[rows["study_id"] == rows.loc[4, "study_id"]] + 2} <= found


def test_studies_clips_and_missing_values(generated):
    table = cohort.read_cohort(generated, THRESHOLDS)
    assert table["patient_id"].nunique() == N_STUDIES - len(SECOND_STUDY)
    assert (table["record_id"] == table["study_id"]).all()
    clips = table["video_A4C"].map(len)
    assert sorted(table.index[clips == 2]) == list(SECOND_A4C) and (table["video_PLAX"].map(len) == 1).all()
    assert table["ecv_pct"].isna().sum() == 8 and table["t1_ms"].isna().sum() == 5
    # a derived flag is missing with its value, never "normal"
    assert (table["ecv_abnormal"].isna() == table["ecv_pct"].isna()).all()
    assert (table["t1_abnormal"].isna() == table["t1_ms"].isna()).all()


def test_run_splits_by_patient_and_counts_each_target(generated, tmp_path):
    # The core's figures of the 8 binary tasks take ~50 s of CPU here (7 s for every estimate without them); they
    # are the positive control's to check (test_plugin.py), so this run draws none (report.figures=false).
    sets = [f"cohort.dir={generated}", *SMALL, "report.figures=false"]
    out = run_plugin("echo_cmr", tmp_path / "run", sets=sets, cache_dir=tmp_path / "cache")
    table = cohort.read_cohort(generated, THRESHOLDS)
    cfg = plugin_config("echo_cmr", sets)
    assert split_overlaps(table, cfg["cv"], cohort.LABEL, seeds=range(20)) == []

    pred = pd.read_csv(out / "predictions.csv")
    assert len(pred[(pred["model"] == "fused") & (pred["task"] == "wma")]) == N_STUDIES   # one row per study
    # every pooled estimate of a task is on the studies that have its label (the prediction level is the study)
    expected = {task: int(table[task].notna().sum()) for task in set(pred["task"])}
    assert expected["ecv_pct"] == N_STUDIES - 8 and expected["t1_abnormal"] == N_STUDIES - 5
    estimates = [e for e in read_metrics(out)["estimates"] if e.get("fold") == "pooled" and not e.get("subgroup")]
    assert {e["task"] for e in estimates} == set(expected)
    wrong = [(e["model"], e["task"], e["metric"], e["n"], expected[e["task"]])
             for e in estimates if int(e["n"]) != expected[e["task"]]]
    assert not wrong, wrong


def test_the_old_cohort_key_names_the_new_one(tmp_path):
    result = invoke("run", "--plugin", "echo_cmr", "--set", f"echo_cmr.dir={tmp_path}", "--out", str(tmp_path / "r"))
    check_refused(result, "echo_cmr.dir")
    assert "use cohort.dir" in result.stderr.splitlines()[-1] and not (tmp_path / "r").exists()
