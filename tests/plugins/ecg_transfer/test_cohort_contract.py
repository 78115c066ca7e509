"""ecg_transfer on the core's cohort contract, on a cohort written here: a label missing for a third of the patients,
a second ECG for some patients, and one `ecg` path leading out of the cohort folder.

Checked: the path is the one problem of the table (file, line, column); with it fixed the run finishes, predicting
per patient (the mean of a patient's ECG scores); the split never puts a patient on two sides; metrics.json counts
the patients with a label; an old config key is refused in one line naming the new one.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("cardio_ecg_transfer")

import numpy as np
import pandas as pd
import wfdb
import yaml

from cardio.cohort import CohortProblems
from cardio.testing import (
    check_refused,
    cpu_context,
    invoke,
    plugin_config,
    read_metrics,
    run_plugin,
    split_overlaps,
    target_counts,
)
from cardio.validate import validate_cohort
from cardio_ecg_transfer import cohort_ecg, cohort_table, synthetic

N_PATIENTS, SEED, FS, SECONDS = 26, 4, 360, 5
SECOND_ECG = 8  # patients with a second ECG record
UNLABELLED = 9  # patients whose `responder` is empty: 35 %
OUTSIDE_ROW = 5  # the row whose ecg names ../x (CSV line 7)
# The smallest useful run: no MIT-BIH pretraining, one ResNet from scratch for one epoch on 2 beats per ECG, the
# guideline rule, logistic regression and a small forest; the final model is fitted (unlabelled rows reach it).
SMALL = ("cv.folds=2", "stats.n_resamples=100", "explain=false", "train.cpu_threads=2",
         "ecg_transfer.pretrain.enabled=false", "ecg_transfer.finetune.transfer=false", "stats.reference=null",
         "ecg_transfer.finetune.epochs=1", "ecg_transfer.preprocess.max_beats_per_record=2",
         "ecg_transfer.baselines.svm.enabled=false", "ecg_transfer.baselines.deep_features=false",
         "ecg_transfer.baselines.threshold_cv=2", "ecg_transfer.baselines.rf.n_estimators=10")


def _second_ecgs(folder: Path, table: pd.DataFrame, hidden: pd.DataFrame) -> pd.DataFrame:
    """Another ECG (WFDB) of each of the first SECOND_ECG patients: a row of its own, same patient and label."""
    rows = []
    for i in range(SECOND_ECG):
        row = hidden.iloc[i].copy()
        row.name = 1000 + i  # another recording of the same heart: same waves, other beats and noise
        rid = f"{table.loc[i, 'record_id']}b"
        sig = synthetic.synthesize_ecg(row, SEED, FS, SECONDS, ("II",))
        wfdb.wrsamp(rid, fs=float(FS), units=["mV"], sig_name=["II"], p_signal=sig, fmt=["16"], adc_gain=[1000.0],
                    baseline=[0], write_dir=str(folder / "ecg"))
        rows.append({**table.loc[i].to_dict(), "record_id": rid, "ecg": f"ecg/{rid}"})
    return pd.concat([table, pd.DataFrame(rows)], ignore_index=True)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> dict:
    """The good cohort folder and a copy whose row OUTSIDE_ROW names ../x (a real record, outside the folder)."""
    tmp = tmp_path_factory.mktemp("ecg_contract")
    good = tmp / "good"
    synthetic.write_synthetic_cohort(good, n_patients=N_PATIENTS, seed=SEED, fs=FS, seconds=SECONDS)
    table = pd.read_csv(good / "cohort.csv", dtype=str, keep_default_na=False)
    hidden = synthetic.cohort_table(N_PATIENTS, SEED)
    table = _second_ecgs(good, table, hidden)
    # the label missing for UNLABELLED patients (every record of theirs), among them some with two ECGs
    pids = table["patient_id"].drop_duplicates().to_list()
    missing = pids[SECOND_ECG - 3:SECOND_ECG - 3 + UNLABELLED]
    table.loc[table["patient_id"].isin(missing), "responder"] = ""
    table.to_csv(good / "cohort.csv", index=False)
    bad = shutil.copytree(good, tmp / "bad")
    for ext in ("hea", "dat"):
        shutil.copy(good / "ecg" / f"crt001.{ext}", tmp / f"x.{ext}")
    table.loc[OUTSIDE_ROW, "ecg"] = "../x"
    table.to_csv(bad / "cohort.csv", index=False)
    labelled = table.loc[table["responder"] != "", "patient_id"].nunique()
    return {"good": good, "bad": bad, "tmp": tmp, "table": table, "labelled": labelled}


def test_the_generated_cohort_is_as_planned(cohort):
    table = cohort["table"]
    assert table["patient_id"].nunique() == N_PATIENTS and len(table) == N_PATIENTS + SECOND_ECG
    per_patient = table.groupby("patient_id")["responder"].first()
    assert 0.30 <= (per_patient == "").mean() <= 0.40 and 0.30 <= (table["responder"] == "").mean() <= 0.40
    assert cohort["labelled"] == N_PATIENTS - UNLABELLED


def test_a_path_out_of_the_cohort_folder_is_the_one_problem(cohort, tmp_path):
    with pytest.raises(CohortProblems) as refused:
        cohort_table.read_cohort_table(cohort["bad"])
    (problem,) = refused.value.problems
    assert (problem.line, problem.column) == (OUTSIDE_ROW + 2, "ecg") and problem.file.endswith("cohort.csv")
    assert "names '../x', outside the cohort folder; set cohort.allow_outside_paths: true" in problem.message
    # the same one problem through the plugin's load, as `cardio validate` lists it
    summary, problems = validate_cohort("ecg_transfer", sets=(f"cohort.dir={cohort['bad']}",
                                                              f"cache_dir={tmp_path / 'cache'}"))
    assert summary == "the cohort table did not load" and problems == [str(problem)]
    # the rest of the table is fine: the good folder (the row fixed) reads with every record and its hierarchy
    table = cohort_table.read_cohort_table(cohort["good"])
    assert len(table) == N_PATIENTS + SECOND_ECG and table["record_id"].is_unique
    assert table.groupby("patient_id").size().max() == 2 and table["responder"].isna().sum() > 0


def test_run_on_the_fixed_cohort_predicts_per_patient_and_counts_the_labelled(cohort, tmp_path):
    out = run_plugin("ecg_transfer", tmp_path / "run", sets=(f"cohort.dir={cohort['good']}", *SMALL),
                     cache_dir=tmp_path / "cache")
    pred = pd.read_csv(out / "predictions.csv")
    models = set(pred["model"])
    assert models == {"resnet18-scratch", "guideline", "random_forest", "logistic"}
    # one row per patient and model (a patient's ECG scores averaged by the core); no label: y_true empty
    assert len(pred) == N_PATIENTS * len(models) and pred.groupby("model")["patient_id"].nunique().eq(N_PATIENTS).all()
    assert (pred.groupby("model")["y_true"].count() == cohort["labelled"]).all()
    # (d) each task's n in metrics.json: the patients with a label
    assert target_counts(read_metrics(out)) == {"crt_response": cohort["labelled"]}
    assert (out / "model" / "bundle.json").is_file()  # the final model, fitted on the labelled patients


def test_splits_keep_each_patient_on_one_side(cohort, tmp_path):
    config = plugin_config("ecg_transfer", (f"cohort.dir={cohort['good']}", *SMALL))
    loaded = cohort_ecg.load(config, cpu_context(tmp_path))
    assert loaded.level == "patient" and loaded.table["patient_id"].nunique() < len(loaded.table)
    assert split_overlaps(loaded.table, config["cv"], config["label"], seeds=range(20)) == []


def test_an_old_config_key_names_its_new_key(cohort, tmp_path):
    result = invoke("run", "--plugin", "ecg_transfer", "--out", str(tmp_path / "run"),
                    "--set", f"data.cohort_dir={cohort['good']}")
    check_refused(result, "config key data.cohort_dir (--set) has moved: use cohort.dir")
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump({"data": {"n_patients": 30}, "finetune": {"epochs": 2}}))
    result = invoke("run", "--plugin", "ecg_transfer", "--out", str(tmp_path / "run"), "--config", str(old))
    check_refused(result, f"config key data.n_patients ({old}) has moved: use ecg_transfer.synthetic.n_patients")
    assert not (tmp_path / "run").exists()


def test_the_schema_describes_every_column():
    described = cohort_table.SCHEMA.describe()
    assert described["description"].str.len().gt(0).all()
    assert cohort_table.SCHEMA.targets == ("responder",) and cohort_table.SCHEMA.level == "patient"
    # the config's label names the target; a covariate the config names that SCHEMA lacks is a number
    config = plugin_config("ecg_transfer", ["label=crt_response", "ecg_transfer.baselines.covariates=[qrs_ms, nyha]"])
    schema = cohort_table.schema(config)
    assert schema.targets == ("crt_response",) and schema.column("nyha").kind == "number"
    assert np.all([c.name != "responder" for c in schema.columns])
