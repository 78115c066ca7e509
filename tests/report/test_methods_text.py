"""The performance section's statistical methods say which intervals the run's rows carry: a holdout's are one
model's (Clopper-Pearson, log-scale t, Wald, the paired DeLong score interval), not the fold-level ones of K folds,
which its text described before; and K folds describe their regression rows only where a task is continuous."""
from __future__ import annotations

import pandas as pd

from cardio_report.performance import _methods_text, _reference_text

SETTINGS = {"n_resamples": 200, "nested_repeats": 20}


def _table(folds: list[str], kinds: list[str] | None = None) -> pd.DataFrame:
    ids = [f"p{i}" for i in range(len(folds))]
    return pd.DataFrame({"fold": folds, "record_id": ids, "patient_id": ids, "kind": kinds or ["binary"] * len(folds)})


def test_a_holdout_describes_one_models_intervals():
    text = _methods_text(_table(["0"] * 4), {"cv": {"method": "holdout"}}, 95, SETTINGS, 0, external=False)
    assert "one held-out fold (`cv.method=holdout`" in text and "none counts training variability" in text
    assert "proportions and F1: Clopper–Pearson's" in text and "at least 0.7 times Hanley & McNeil's" in text
    assert "per-fold" not in text and "corrected t" not in text
    assert "Thresholds are those chosen on the training patients" in text


def test_k_folds_and_a_new_cohort_keep_their_own_text():
    kfold = _methods_text(_table(["0", "1", "0", "1"]), {"cv": {"method": "kfold"}}, 95, SETTINGS, 0,
                          external=False)
    assert "corrected t" in kfold and "held-out fold" not in kfold
    external = _methods_text(_table(["external"] * 4), {"cv": {"method": "kfold"}}, 95, SETTINGS, 0, external=True)
    assert external.startswith("Predictions of the exported model on this cohort")
    assert "the training cohort when the model was fitted" in external


def test_the_comparisons_say_their_intervals_are_not_adjusted_for_the_family():
    """ecg_transfer's default run printed resnet18-transfer − random_forest +0.335 [+0.064, +0.562] beside a Holm p of
    0.136: the interval is the comparison's own, and the text says so, with a reference and without one."""
    tests = [{"extra": {"family": "reference"}, "adjustment": "Holm over 2 comparisons"}]
    for reference in ("transfer", None):
        text = _reference_text(reference, tests, {})
        assert text.endswith("not adjusted for the family: an interval may exclude 0 while the Holm-adjusted p "
                             "exceeds 0.05.")
    assert _reference_text("transfer", [], {}) == ""


def test_k_folds_describe_the_regression_rows_only_where_a_task_is_continuous():
    config = {"cv": {"method": "kfold"}}
    binary = _methods_text(_table(["0", "1", "0", "1"]), config, 95, SETTINGS, 0, external=False)
    mixed = _methods_text(_table(["0", "1", "0", "1"], ["binary", "binary", "regression", "regression"]), config, 95,
                          SETTINGS, 0, external=False)
    assert "Regression:" not in binary and "Regression: the mean absolute error" in mixed
    cut = mixed[mixed.index("Regression:"):mixed.index("Thresholds were chosen")]
    assert mixed.replace(cut, "") == binary  # nothing else differs
