"""The cohort contract (issue 22) on a generated cohort: sequences of the plugin's synthetic writer, 35% of the
labels missing, a baseline and a follow-up sequence for some patients, and one `../` path.

One small run (the `fast` profile on 28 sequences of 64 x 64 px, no Grad-CAM) serves the tests that need it.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

pytest.importorskip("cardio_mmode_septal_flash")

import numpy as np
import pandas as pd

from cardio.cohort import CohortProblems
from cardio.data import make_folds
from cardio.testing import (
    check_refused,
    invoke,
    plugin_config,
    pooled,
    read_metrics,
    run_plugin,
    split_overlaps,
    target_counts,
)
from cardio_mmode_septal_flash import cohort, synthetic

LABEL = cohort.LABEL
N_RECORDS, N_SF, FOLLOW_UP = 28, 11, 6  # sequences, of them SF, patients with a baseline and a follow-up sequence
MISSING = 10  # labels not assessed: 36% of the sequences
FAST = ["profile=fast", "train.cpu_threads=1"]
RUN = [*FAST, "stats.n_resamples=200", "explain=false", "final_model=false"]
BAD_ROW = 1  # the follow-up sequence of patient P01: CSV line 3


def _patients(n: int) -> list[str]:
    """Records 2k and 2k + 1 (k < FOLLOW_UP) are one patient's baseline and follow-up; the others one each."""
    return [f"P{i // 2 + 1:02d}" if i < 2 * FOLLOW_UP else f"P{i - FOLLOW_UP + 1:02d}" for i in range(n)]


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """The cohort folder, its table well formed: record_id names the files, patient_id groups the records."""
    sets = [*FAST, f"mmode_septal_flash.synthetic.n_patients={N_RECORDS}", f"mmode_septal_flash.synthetic.n_sf={N_SF}",
            "mmode_septal_flash.synthetic.size=64"]
    cfg = plugin_config("mmode_septal_flash", sets)["mmode_septal_flash"]["synthetic"]
    root = synthetic.write_cohort(cfg, tmp_path_factory.mktemp("contract") / "cohort")
    t = pd.read_csv(root / "labels.csv", dtype=str, keep_default_na=False)
    t.insert(1, "record_id", t["patient_id"])
    t["patient_id"] = _patients(len(t))
    missing = np.random.default_rng(0).choice(len(t), size=MISSING, replace=False)
    t.loc[missing, [LABEL, "sf_start_ms", "sf_end_ms"]] = ""  # not assessed: no label, no annotated window
    t.to_csv(root / "labels.csv", index=False)
    return root


@pytest.fixture(scope="module")
def run(generated, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("contract-run")
    return run_plugin("mmode_septal_flash", out / "run", sets=[*RUN, f"cohort.dir={generated}"],
                      cache_dir=out / "cache")


def test_a_path_out_of_the_folder_is_one_listed_problem(generated, tmp_path):
    d = shutil.copytree(generated, tmp_path / "cohort")
    t = pd.read_csv(d / "labels.csv", dtype=str, keep_default_na=False)
    t["sequence"] = ""  # empty: the default, sequences/<record_id>.{dcm,avi,mp4,npy}
    t.loc[BAD_ROW, "sequence"] = "../x.avi"
    t.to_csv(d / "labels.csv", index=False)
    with pytest.raises(CohortProblems) as e:
        cohort.read_labels(d)
    [problem] = e.value.problems  # the rest of the table (missing labels, two records a patient) is fine
    assert (problem.line, problem.column) == (BAD_ROW + 2, "sequence"), problem
    assert "'../x.avi'" in str(problem) and "cohort.allow_outside_paths" in str(problem)
    t.loc[BAD_ROW, "sequence"] = f"sequences/{t.loc[BAD_ROW, 'record_id']}.npy"  # the row fixed
    t.to_csv(d / "labels.csv", index=False)
    table = cohort.read_labels(d)
    assert table["sequence"].iloc[BAD_ROW] == str(d / "sequences" / "SF0002.npy")


def test_the_table_holds_records_of_patients_and_missing_labels(generated):
    table = cohort.read_labels(generated)
    assert len(table) == N_RECORDS and table["patient_id"].nunique() == N_RECORDS - FOLLOW_UP
    assert table.groupby("patient_id").size().max() == 2
    assert table[LABEL].isna().sum() == MISSING and set(table[LABEL].dropna()) == {0.0, 1.0}
    assert table["sequence"].map(lambda p: Path(p).is_relative_to(generated)).all()


def test_the_run_finishes_and_reports_each_target_on_its_labelled_records(generated, run):
    table = cohort.read_labels(generated)
    cfg = plugin_config("mmode_septal_flash", [*RUN, f"cohort.dir={generated}"])
    [fold] = make_folds(table, cfg["cv"], LABEL, int(cfg["seed"]))  # the run's one holdout split
    test = table.iloc[fold.test]
    predicted = pd.read_csv(run / "predictions.csv")
    for _, part in predicted.groupby("model"):  # level "record": one prediction per test sequence
        assert len(part) == len(test) and part["y_true"].notna().sum() == test[LABEL].notna().sum()
    labelled = int(test[LABEL].notna().sum())
    assert 0 < labelled < len(test)
    metrics = read_metrics(run)
    aucs = pooled(metrics, "auc", task=LABEL)
    assert {e["model"] for e in aucs} == {"densenet121-full", "densenet121-cropped"}
    # The core computes each task's metrics on its non-missing rows (that core change came in parallel).
    assert [e["n"] for e in aucs] == [labelled, labelled], aucs
    assert target_counts(metrics) == {LABEL: labelled}


def test_no_patient_is_in_two_parts_of_the_split(generated):
    table = cohort.read_labels(generated)
    cv = plugin_config("mmode_septal_flash", FAST)["cv"]
    assert cv["method"] == "holdout" and cv["ratios"] == [64, 16, 20]  # train, validation and test
    assert split_overlaps(table, cv, LABEL, seeds=range(20)) == []
    kfold = plugin_config("mmode_septal_flash", [*FAST, "cv.method=kfold", "cv.folds=3"])["cv"]
    assert split_overlaps(table, kfold, LABEL, seeds=range(20)) == []  # each of 3 folds' train and test


@pytest.mark.parametrize("old,new", [("septal_flash.dir", "cohort.dir"),
                                     ("septal_flash.model.input_size", "mmode_septal_flash"),
                                     ("mmode_septal_flash.model.cpu_threads", "train.cpu_threads")])
def test_an_old_key_is_one_line_naming_the_new_one(tmp_path, old, new):
    result = invoke("run", "--plugin", "mmode_septal_flash", "--out", str(tmp_path / "run"), "--set", f"{old}=64")
    check_refused(result, f"use {new}")
    assert not (tmp_path / "run").exists()
    config = tmp_path / "old.yaml"
    config.write_text("septal_flash:\n  dir: /data/sf\n")
    result = invoke("run", "--plugin", "mmode_septal_flash", "--out", str(tmp_path / "run"), "--config", str(config))
    check_refused(result, "use cohort.dir")


def _damage(d: Path) -> dict[tuple[int, str], str]:
    """Ten damages of the cohort at d; {(CSV line, column): text its problem must hold}."""
    from cardio.cine import write_dicom_cine

    t = pd.read_csv(d / "labels.csv", dtype=str, keep_default_na=False)
    rid = t["record_id"]
    septum = lambda i: d / "septum" / f"{rid[i]}.csv"  # noqa: E731
    pd.read_csv(septum(2)).iloc[:61].to_csv(septum(2), index=False)
    n = len(np.load(d / "sequences" / f"{rid[3]}.npy", mmap_mode="r"))
    t.loc[3, "cycle_end"] = str(n + 4)
    (d / "sequences" / f"{rid[4]}.npy").unlink()
    dcm = write_dicom_cine(d / "sequences" / f"{rid[5]}.dcm", np.load(d / "sequences" / f"{rid[5]}.npy"), 20.0)
    (d / "sequences" / f"{rid[5]}.npy").unlink()
    dcm.write_bytes(dcm.read_bytes()[: dcm.stat().st_size // 2])
    t.loc[6, "mvc_ms"] = "early"
    t.loc[9, "septum"] = "../elsewhere/tracing.csv"
    points = pd.read_csv(septum(10))
    points.loc[30, "y"] = None
    points.to_csv(septum(10), index=False)
    pd.read_csv(septum(11)).assign(x=lambda p: p["x"] + 60.0).to_csv(septum(11), index=False)  # 64 px frames
    t.loc[12, LABEL] = "2"
    t = pd.concat([t, t.iloc[[0]]])  # a row pasted twice: one record on CSV lines 2 and 30
    t.to_csv(d / "labels.csv", index=False)
    return {(4, "septum"): "61 septum points", (5, "cycle_end"): f"cycle_end {n + 4} lies past the clip's last frame",
            (6, "sequence"): "sequences/", (7, "sequence"): "truncated", (8, "mvc_ms"): "'early'",
            (2, "record_id"): "more than one row", (30, "record_id"): "more than one row",
            (11, "septum"): "'../elsewhere/tracing.csv'", (12, "septum"): "non-finite",
            (13, "septum"): "outside the 64 x 64 image", (14, LABEL): "'2'"}


def test_validate_lists_ten_damages_at_once_and_a_clean_cohort_passes(generated, tmp_path):
    """Issue 26: one validate lists every damage (file, line, column); the run refuses the same cohort before any
    work; the undamaged cohort passes validate, and its run (the `run` fixture) finishes."""
    d = shutil.copytree(generated, tmp_path / "cohort")
    expected = _damage(d)
    result = invoke("validate", "--plugin", "mmode_septal_flash", "--set", f"cohort.dir={d}")
    assert result.exit_code == 2
    problems = [line for line in result.stderr.splitlines() if line.startswith("problem:")]
    where = [re.search(r"line (\d+), column '(\w+)'", p) for p in problems]
    assert sorted((int(m[1]), m[2]) for m in where) == sorted(expected), "\n".join(problems)
    for (line, column), text in expected.items():
        [found] = [p for p in problems if f"line {line}, column '{column}'" in p]
        assert text in found, (line, column, text, found)
    run = invoke("run", "--plugin", "mmode_septal_flash", "--out", str(tmp_path / "run"), "--set", f"cohort.dir={d}")
    check_refused(run, f"and {len(expected) - 1} more")  # the first problem and the count
    ok = invoke("validate", "--plugin", "mmode_septal_flash", "--set", f"cohort.dir={generated}")
    assert ok.exit_code == 0 and "cohort OK" in ok.stdout, ok.stderr[-2000:]


def test_validate_finds_a_cohort_too_small_for_the_holdout(generated, tmp_path):
    """Ten patients: the default holdout's test part holds two, too few for a DeLong interval (issue 26)."""
    d = shutil.copytree(generated, tmp_path / "cohort")
    t = pd.read_csv(d / "labels.csv", dtype=str, keep_default_na=False)
    t[t["patient_id"].isin(t["patient_id"].unique()[:10])].to_csv(d / "labels.csv", index=False)
    result = invoke("validate", "--plugin", "mmode_septal_flash", "--set", f"cohort.dir={d}")
    assert result.exit_code == 2
    [problem] = [line for line in result.stderr.splitlines() if line.startswith("problem:")]
    # the core names the part that falls short, or scikit-learn's refusal to stratify so few patients
    assert "the test part of holdout would hold" in problem or "holdout cannot be made on 10 patients" in problem
