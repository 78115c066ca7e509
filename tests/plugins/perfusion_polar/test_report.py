"""The comparison table: the core's estimates and tests per CV repeat (never pooled duplicates), Holm beside raw p,
one-class tasks skipped."""
from __future__ import annotations

import pytest

pytest.importorskip("cardio_perfusion_polar")

import numpy as np
import pandas as pd

from cardio import Predictions
from cardio_perfusion_polar import report
from cardio_perfusion_polar.synthetic import RISK_TASKS
from cardio_stats import CV_METHOD, evaluate_predictions, format_ci, format_p


def _predictions(n_repeats: int, n: int = 40, constant: str | None = None) -> Predictions:
    rng = np.random.default_rng(0)
    rows = []
    for r in range(n_repeats):
        for task in RISK_TASKS:
            y = np.zeros(n, int) if task == constant else (np.arange(n) % 2)
            for model, signal in (("resnet-polar", 1.0), ("logistic-17seg", 0.3), ("resnet-rest", 0.5),
                                  ("logistic-rest", 0.5)):
                score = 1 / (1 + np.exp(-(signal * y + rng.normal(0, 1, n))))
                rows.append(pd.DataFrame({"record_id": [f"P{i:03d}" for i in range(n)],
                                          "patient_id": [f"P{i:03d}" for i in range(n)], "y_true": y,
                                          "y_score": score, "model": model, "task": task, "kind": "binary",
                                          "threshold": 0.5, "fold": (np.arange(n) // 2 % 5).astype(str),
                                          "repeat": r}))
    return Predictions(pd.concat(rows, ignore_index=True))


def _core(predictions: Predictions, skip: str | None = None) -> tuple[list[dict], list[dict]]:
    """What the performance section hands to cardio_evaluate: each repeat evaluated on its own (a task with one
    class, `skip`, gets no estimate)."""
    estimates, tests = [], []
    for r, part in predictions.table.groupby("repeat"):
        est, tst = evaluate_predictions(part[part["task"] != skip].drop(columns="repeat"), n_resamples=100,
                                        reference="resnet-polar")
        estimates += [{**e, "repeat": int(r)} for e in est]
        tests += [{**t, "repeat": int(r)} for t in tst]
    return estimates, tests


def test_one_table_per_repeat_with_holm_beside_raw_p():
    predictions = _predictions(2)
    estimates, tests = _core(predictions)
    table = report.comparison_table(predictions, estimates, tests)
    # 2 repeats x 2 inputs (joint, rest) x 6 tasks, each patient once per row's AUC
    assert len(table) == 24 and set(table["repeat"]) == {0, 1} and set(table["input"]) == {"joint", "rest"}
    assert table[["resnet_auc", "logistic_auc", "p", "p (Holm)"]].notna().all().all()
    raw = pd.to_numeric(table["p"].str.lstrip("<"), errors="coerce")
    holm = pd.to_numeric(table["p (Holm)"].str.lstrip("<"), errors="coerce")
    assert (holm >= raw).all() and (holm > raw).any()
    assert table.loc[(table["input"] == "rest") & (table["task"] == "sex_male"), "paper (DL / LR)"].iloc[0] \
        == "0.81 / 0.85"
    # every AUC is over one repeat's 40 patients, never the 80 pooled rows
    assert set(table["n (pos/neg)"]) == {"20/20"}
    # each cell is the core's number of that repeat as the performance table prints it (5 folds: the
    # cross-validated AUC and difference with their fold-DeLong intervals): ResNet (joint) on smoking, repeat 1
    row = table[(table["repeat"] == 1) & (table["input"] == "joint") & (table["task"] == "smoking")].iloc[0]
    (auc,) = [e for e in estimates if e["repeat"] == 1 and e["model"] == "resnet-polar" and e["task"] == "smoking"
              and e["metric"] == "auc" and e["method"] == CV_METHOD and e["fold"] == "pooled"]
    (test,) = [t for t in tests if t["repeat"] == 1 and t["task"] == "smoking"
               and {t["model_a"], t["model_b"]} == {"resnet-polar", "logistic-17seg"}]
    assert row["resnet_auc"] == format_ci(auc) and row["Holm family"] == "reference"
    sign = 1 if test["model_a"] == "resnet-polar" else -1
    assert float(row["ΔAUC (ResNet − logistic)"].split()[0]) == pytest.approx(sign * test["estimate"],
                                                                              abs=1e-3)
    assert row["p"] == format_p(test["p_value"])
    # the per-input pair is not the reference's: the core adjusts it with the exploratory pairs
    assert set(table.loc[table["input"] == "rest", "Holm family"]) == {"exploratory"}


def test_a_task_with_one_class_is_a_labelled_skip_never_nan():
    predictions = _predictions(1, constant="diabetes")
    table = report.comparison_table(predictions, *_core(predictions, skip="diabetes"))
    skipped = table[table["task"] == "diabetes"]
    assert (skipped["resnet_auc"] == "skipped: one class").all() and (skipped["p"] == "skipped").all()
    assert not table.isna().any().any()
    assert not table.astype(str).apply(lambda c: c.str.contains("nan", case=False)).any().any()
