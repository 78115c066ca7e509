"""perfusion_polar on the core's cohort contract (issue 22), on a generated cohort: 40 synthetic patients, about a
third with a second rest/stress study (two records of one patient), smoking missing in 35% of the records and
every segment MFR missing in three; the plugin's fast profile with 2 folds, no final model and no explain.

(a) a `../` map path is exactly one problem, naming its line and column; (b) with it fixed the run finishes;
(c) no patient is in two of train/validation/test over 20 seeds; (d) each target's n in metrics.json is its
number of records with a value (the prediction level is the record); (e) an old key is one line naming the new.
"""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("cardio_perfusion_polar")

from cardio.cohort import CohortProblems
from cardio.testing import check_refused, invoke, plugin_config, read_metrics, run_plugin, split_overlaps, target_counts
from cardio_perfusion_polar import cohort, synthetic

# What is checked is the contract (rows, counts, splits), not the fit: one epoch a step, one thread, no figures.
SMALL = ["profile=fast", "cv.folds=2", "final_model=false", "explain=false", "stats.n_resamples=100",
         "report.figures=false", "perfusion_polar.step1.epochs=1", "perfusion_polar.step2.epochs=1",
         "perfusion_polar.cpu_threads=1"]
MISSING_SHARE = 0.35


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The cohort folder, written by the plugin's synthetic writer, then given its missing values by hand."""
    table, maps = synthetic.synthesize(40, 32, seed=7, second_scans=0.35)
    rng = np.random.default_rng(7)
    missing = rng.permutation(len(table))[:round(MISSING_SHARE * len(table))]
    table["smoking"] = table["smoking"].astype(float)
    table.loc[missing, "smoking"] = np.nan
    table.loc[[2, 11, 30], synthetic.SEGMENT_TASKS] = np.nan  # studies without a quantitative MFR
    table["map"] = None  # the column exists; empty cells mean maps/<record_id>.npy
    return synthetic.write_cohort(table, maps, tmp_path_factory.mktemp("perfusion") / "cohort")


@pytest.fixture(scope="module")
def finished(generated, tmp_path_factory):
    """(the loaded cohort table, the run directory) of one small run on the generated cohort."""
    where = tmp_path_factory.mktemp("run")
    out = run_plugin("perfusion_polar", where / "run", sets=[*SMALL, f"cohort.dir={generated}"],
                     cache_dir=where / "cache")
    return cohort.read_cohort(generated), out


def test_the_generated_cohort_has_what_the_contract_covers(generated):
    table = cohort.read_cohort(generated)
    per_patient = table.groupby("patient_id").size()
    assert per_patient.max() == 2 and (per_patient == 2).sum() >= 8  # second studies: two records of one patient
    assert table["study_id"].nunique() == len(table)  # each record its own study
    assert table["smoking"].isna().mean() == pytest.approx(MISSING_SHARE, abs=0.01)
    assert table["mfr_seg01"].isna().sum() == 3 and table["sex_male"].notna().all()


def test_a_path_out_of_the_folder_is_one_problem_naming_its_line_and_column(generated, tmp_path):
    bad = shutil.copytree(generated, tmp_path / "cohort")
    csv = pd.read_csv(bad / "labels.csv", dtype=str)
    csv.loc[4, "map"] = "../x.npy"
    csv.to_csv(bad / "labels.csv", index=False)
    with pytest.raises(CohortProblems) as e:
        cohort.read_cohort(bad)
    (problem,) = e.value.problems  # the rest of the table, missing values included, is fine
    assert (problem.line, problem.column) == (6, "map") and "outside the cohort folder" in problem.message
    assert "cohort.allow_outside_paths" in problem.message


def test_the_run_finishes_with_missing_targets_and_second_studies(finished):
    table, out = finished
    pred = pd.read_csv(out / "predictions.csv", dtype={"record_id": str, "patient_id": str})
    # level "record": every study is predicted, once per model and task
    assert len(pred) == len(table) * (2 * 17 + 2 * 6)
    smoking = pred[(pred["task"] == "smoking") & (pred["model"] == "resnet-polar")]
    assert smoking["y_true"].isna().sum() == table["smoking"].isna().sum() and smoking["y_score"].notna().all()
    assert "ResNet vs 17-segment logistic regression" in (out / "report.md").read_text()


def test_no_patient_in_two_of_train_validation_and_test(finished):
    table, _ = finished
    cv = plugin_config("perfusion_polar", SMALL)["cv"]
    assert split_overlaps(table, cv, cohort.LABEL, seeds=range(20)) == []
    assert split_overlaps(table, {"method": "holdout", "ratios": [6, 2, 2]}, cohort.LABEL, seeds=range(20)) == []


def test_each_target_n_is_its_count_of_records_with_a_value(finished):
    table, out = finished
    metrics = read_metrics(out)
    expect = {t: int(table[t].notna().sum()) for t in cohort.TARGETS}
    assert expect["smoking"] < len(table) and expect["mfr_seg01"] == len(table) - 3
    counts = {**target_counts(metrics, "auc"), **target_counts(metrics, "mae")}
    assert counts == expect
    # every pooled estimate of a task, of either model, is on that task's labelled records
    for e in metrics["estimates"]:
        if e.get("fold") == "pooled" and not e.get("subgroup") and e.get("metric") in ("auc", "mae"):
            assert e["n"] == expect[e["task"]], e


@pytest.mark.parametrize("old,new", [("perfusion.dir=somewhere", "cohort.dir"),
                                     ("perfusion.step1.epochs=1", "perfusion_polar.step1.epochs"),
                                     ("perfusion.arch=resnet34", "perfusion_polar.arch")])
def test_an_old_key_is_one_line_naming_the_new_one(tmp_path, old, new):
    result = invoke("run", "--plugin", "perfusion_polar", "--out", str(tmp_path / "run"), "--set", old)
    check_refused(result, f"config key {old.split('=')[0]} (--set) has moved: use {new}")
    (tmp_path / "old.yaml").write_text("perfusion:\n  n_patients: 40\n")
    result = invoke("run", "--plugin", "perfusion_polar", "--out", str(tmp_path / "run"), "--config",
                    str(tmp_path / "old.yaml"))
    check_refused(result, "perfusion.n_patients")
