"""Issue 38: pooling records to patients (cardio.study.evaluate.at_level) checks that the records agree on the label,
instead of keeping the first record's label silently."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cardio import CardioError, Predictions
from cardio.data import Cohort
from cardio.study.levels import at_level


def _cohort(level: str) -> Cohort:
    table = pd.DataFrame({"record_id": ["r1", "r2", "r3", "r4", "r5", "r6"],
                          "patient_id": ["a", "a", "b", "b", "c", "c"],
                          "study_id": ["s1", "s2", "s3", "s3", "s4", "s5"], "label": [1, 0, 1, 1, 0, 0]})
    return Cohort(table, level=level)


def _predictions(y: list[float]) -> Predictions:
    return Predictions.from_arrays([f"r{i}" for i in range(1, 7)], ["a", "a", "b", "b", "c", "c"], np.array(y),
                                   np.linspace(0.1, 0.9, 6), model="m", task="t", threshold=0.5)


def test_records_of_one_patient_with_different_labels_are_an_error_naming_no_patient():
    with pytest.raises(CardioError, match=r"records of 1 patient\(s\) disagree on the label \(t\)") as e:
        at_level(_predictions([1, 0, 1, 1, 0, 0]), _cohort("patient"))
    assert "'a'" not in str(e.value) and ": a;" not in str(e.value)  # an error names no patient id


def test_agreeing_records_pool_to_one_row_per_patient_with_their_label():
    pooled = at_level(_predictions([1, 1, 0, 0, 1, 1]), _cohort("patient")).table.set_index("record_id")
    assert list(pooled.index) == ["a", "b", "c"] and pooled["y_true"].tolist() == [1, 0, 1]
    assert pooled.loc["a", "y_score"] == pytest.approx(np.mean(np.linspace(0.1, 0.9, 6)[:2]))


def test_a_missing_label_beside_a_present_one_is_no_disagreement():
    pooled = at_level(_predictions([1, np.nan, 0, 0, 1, 1]), _cohort("patient")).table
    assert len(pooled) == 3


def test_at_study_level_only_the_records_of_one_study_must_agree():
    # patient a's two studies differ (s1: 1, s2: 0): each study is its own unit, so that is no error
    pooled = at_level(_predictions([1, 0, 1, 1, 0, 0]), _cohort("study")).table
    assert sorted(pooled["record_id"]) == ["s1", "s2", "s3", "s4", "s5"]
    with pytest.raises(CardioError, match=r"records of 1 study\(s\) disagree"):
        at_level(_predictions([1, 0, 1, 0, 0, 0]), _cohort("study"))


def test_record_level_targets_stay_per_record():
    preds = _predictions([1, 0, 1, 0, 0, 1])
    assert at_level(preds, _cohort("record")) is preds
