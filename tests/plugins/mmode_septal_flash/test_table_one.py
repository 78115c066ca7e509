"""The paper's Table 1 pivots the performance section's estimates and tests as its tables print them: the
headline AUC interval (one fold: DeLong's score interval; K folds: cross-validated, fold DeLong × 2) and the paired
test."""
from __future__ import annotations

import pytest

pytest.importorskip("cardio_mmode_septal_flash")

import numpy as np
import pandas as pd

from cardio_mmode_septal_flash.report import table_one
from cardio_stats import CV_DIFF_METHOD, CV_METHOD, evaluate_predictions, format_interval

MODELS = ("densenet121-full", "densenet121-cropped")


def _core(folds: int) -> tuple[list[dict], list[dict]]:
    rng = np.random.default_rng(2)
    n = 60
    y = np.arange(n) % 2
    parts = [pd.DataFrame({"record_id": [f"r{i}" for i in range(n)], "patient_id": [f"p{i}" for i in range(n)],
                           "model": m, "task": "septal_flash", "kind": "binary", "y_true": y,
                           "y_score": 1 / (1 + np.exp(-(s * y + rng.normal(0, 1, n)))), "threshold": 0.5,
                           "fold": (np.arange(n) // 2 % folds).astype(str)}) for m, s in zip(MODELS, (2.0, 0.5))]
    return evaluate_predictions(pd.concat(parts, ignore_index=True), n_resamples=100)


@pytest.mark.parametrize("folds,method", [(1, "delong-score"), (5, CV_METHOD)])
def test_table_one_carries_the_performance_tables_interval(folds, method):
    estimates, tests = _core(folds)
    table, test = table_one(estimates, tests, "septal_flash")
    assert test is not None  # two models: their paired test
    assert table["CNN model"].tolist() == ["w. full M-mode", "w. cropped M-mode"]
    for row, model in zip(table.to_dict("records"), MODELS):
        (auc,) = [e for e in estimates if e["model"] == model and e["metric"] == "auc" and e["method"] == method
                  and e["fold"] == "pooled"]
        assert row["AUC"] == f"{auc['estimate']:.2f}"
        assert row["AUC CI"] == format_interval(auc["ci_low"], auc["ci_high"], digits=2)
        assert row["AUC interval"].startswith(method)
    (core,) = tests
    cv = folds > 1
    diff = core["estimate"] * (1 if core["model_a"] == MODELS[0] else -1)
    assert (test["a"], test["b"]) == MODELS and test["diff"] == pytest.approx(diff)
    assert test["p"] == core["p_value"]
    assert test["method"] == (CV_DIFF_METHOD if cv else "paired DeLong, score interval")
