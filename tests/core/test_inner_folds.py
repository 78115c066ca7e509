"""The split for nested schemes: runs of one cohort's modalities get the same folds (cv.patients, even when a
patient misses one), inner folds never see the outer fold's test patients, and a run with cv.inner_folds keeps
the inner out-of-fold predictions of every fit task."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cardio import CardioError
from cardio.data import make_folds
from cardio.study import tasks

CV = {"method": "kfold", "folds": 4, "repeats": 1, "stratify": True}


def _table(patients: list[str], labels: dict[str, int], records: int = 1) -> pd.DataFrame:
    return pd.DataFrame([{"patient_id": p, "record_id": f"{p}-{r}", "responder": labels[p]}
                         for p in patients for r in range(records)])


def _fold_of(table: pd.DataFrame, folds) -> dict[str, str]:
    return {p: f.name for f in folds for p in table["patient_id"].iloc[f.test]}


@pytest.fixture()
def universe(tmp_path) -> tuple[Path, dict[str, int]]:
    rng = np.random.default_rng(3)
    labels = {f"p{i:03d}": int(v) for i, v in enumerate(rng.random(80) < 0.4)}
    path = tmp_path / "patients.csv"
    pd.DataFrame({"patient_id": list(labels), "responder": list(labels.values())}).to_csv(path, index=False)
    return path, labels


def test_the_split_depends_on_seed_ids_and_settings_only(universe):
    _, labels = universe
    a = _table(list(labels), labels)
    b = _table(list(labels)[::-1], labels, records=2)  # another order, another number of records per patient
    assert _fold_of(a, make_folds(a, CV, "responder", 7)) == _fold_of(b, make_folds(b, CV, "responder", 7))
    assert _fold_of(a, make_folds(a, CV, "responder", 7)) != _fold_of(a, make_folds(a, CV, "responder", 8))


def test_cv_patients_gives_every_modality_the_same_folds(universe):
    path, labels = universe
    cv = {**CV, "patients": str(path), "inner_folds": 3}
    ecg = _table([p for i, p in enumerate(labels) if i % 7], labels)  # each modality misses other patients
    spect = _table([p for i, p in enumerate(labels) if i % 5], labels, records=2)
    f_ecg, f_spect = make_folds(ecg, cv, "responder", 0), make_folds(spect, cv, "responder", 0)
    both = set(ecg["patient_id"]) & set(spect["patient_id"])
    outer_e, outer_s = _fold_of(ecg, f_ecg), _fold_of(spect, f_spect)
    assert {p: outer_e[p] for p in both} == {p: outer_s[p] for p in both}
    for fe, fs in zip(f_ecg, f_spect):
        inner_e = _fold_of(ecg, fe.inner)
        inner_s = _fold_of(spect, fs.inner)
        shared = set(inner_e) & set(inner_s)
        assert shared and {p: inner_e[p] for p in shared} == {p: inner_s[p] for p in shared}
        test = set(ecg["patient_id"].iloc[fe.test])
        # inner folds cover the fold's training patients once each and never its test patients
        assert set(inner_e) == set(ecg["patient_id"].iloc[fe.train]) and not set(inner_e) & test
        for inner in fe.inner:
            assert not set(ecg["patient_id"].iloc[inner.train]) & test


def test_cv_patients_problems_are_one_line(universe, tmp_path):
    path, labels = universe
    table = _table(list(labels)[:10] + ["stranger"], {**labels, "stranger": 1})
    with pytest.raises(CardioError, match="1 patient.*not in .*patients.csv.*'stranger'"):
        make_folds(table, {**CV, "patients": str(path)}, "responder", 0)
    flipped = _table(list(labels), {p: 1 - v if p == "p004" else v for p, v in labels.items()})
    with pytest.raises(CardioError, match="1 patient.*another responder.*'p004'"):
        make_folds(flipped, {**CV, "patients": str(path)}, "responder", 0)
    with pytest.raises(CardioError, match="cannot be read"):
        make_folds(table, {**CV, "patients": str(tmp_path / "none.csv")}, "responder", 0)


def test_a_run_keeps_its_inner_predictions(cardio_cli, tmp_path, monkeypatch):
    """Also: every fit (outer, inner) gets validation rows the core chose inside its own training patients."""
    log = tmp_path / "spy.jsonl"
    res = cardio_cli("run", "--plugin", "toy", "--out", "r", "--set", "cv.folds=3", "--set", "cv.inner_folds=2",
                     "--set", "train.epochs=2", "--set", "final_model=false", "--set", "report.figures=false",
                     "--set", "stats.n_resamples=200", "--set", "train.val_fraction=0.25",
                     env={"CARDIO_SPY_LOG": str(log)})
    assert res.returncode == 0, res.stderr
    run = tmp_path / "r"
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    fits = {c["fold"]: (set(c["patients"]), set(c["val_patients"])) for c in calls if c["hook"] == "cardio_train"}
    for fit, val in fits.values():
        assert val and not fit & val and 0.15 < len(val) / len(fit | val) < 0.35  # a quarter, by patient
    trains = {name: fit | val for name, (fit, val) in fits.items()}
    tests_of = {c["fold"]: set(c["patients"]) for c in calls if c["hook"] == "cardio_predict"}
    assert sorted(trains) == sorted([f"fold{k}" for k in range(3)] + [f"fold{k}-inner{j}" for k in range(3)
                                                                      for j in range(2)])
    for k in range(3):
        outer_test = tests_of[f"fold{k}"]
        inner = tasks.read_predictions(run, f"fit-fold{k}", b"", None, tasks.INNER).table
        assert set(inner["inner_fold"]) == {f"fold{k}-inner0", f"fold{k}-inner1"}
        assert len(inner) == 2 * len(trains[f"fold{k}"])  # two records per patient, each predicted once
        for j in range(2):
            assert not trains[f"fold{k}-inner{j}"] & outer_test  # no inner fit saw the outer test patients
            assert tests_of[f"fold{k}-inner{j}"] <= trains[f"fold{k}"]
    outer = pd.read_csv(run / "predictions.csv")
    assert "inner_fold" not in outer.columns


def test_the_core_chooses_the_validation_rows(cardio_cli, tmp_path):
    """cardio_train's val_index: the holdout protocol's validation patients when it has them, else
    train.val_fraction of the fit's training patients (the final model's too), else none."""
    log = tmp_path / "spy.jsonl"
    res = cardio_cli("run", "--plugin", "toy", "--out", "r", "--set", "cv.method=holdout", "--set", "cv.ratios=[6,2,2]",
                     "--set", "train.epochs=1", "--set", "train.val_fraction=0.25", "--set", "report.figures=false",
                     "--set", "stats.n_resamples=100", env={"CARDIO_SPY_LOG": str(log)})
    assert res.returncode == 0, res.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    fits = {c["fold"]: (set(c["patients"]), set(c["val_patients"])) for c in calls if c["hook"] == "cardio_train"}
    tested = {p for c in calls if c["hook"] == "cardio_predict" and c["fold"] == "holdout" for p in c["patients"]}
    fit, val = fits["holdout"]
    folds = json.loads((tmp_path / "r" / "metrics.json").read_text())["folds"]
    assert not fit & val and not val & tested and not fit & tested
    assert 0.15 < len(val) / len(fit | val | tested) < 0.25  # the protocol's fifth, not a quarter of the training side
    assert folds[0]["n_val"] > 0
    final_fit, final_val = fits["final"]
    assert not final_fit & final_val and 0.15 < len(final_val) / len(final_fit | final_val) < 0.35

    log.unlink()
    res = cardio_cli("run", "--plugin", "toy", "--out", "s", "--set", "cv.folds=2", "--set", "train.epochs=1",
                     "--set", "final_model=false", "--set", "report.figures=false", "--set", "stats.n_resamples=100",
                     env={"CARDIO_SPY_LOG": str(log)})
    assert res.returncode == 0, res.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert all(c["val_patients"] == [] for c in calls if c["hook"] == "cardio_train")  # the core's default: none
