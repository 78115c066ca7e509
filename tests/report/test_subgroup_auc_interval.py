"""A subgroup's AUC carries the interval the performance table's does (issue 53): with K folds the cross-validated
AUC of the subgroup's records and the headline's fold-DeLong interval, named; where a fold holds no patient of one
class in the subgroup, the pooled AUC alone and why, not the pooled DeLong interval (11-13% misses without signal)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from cardio import Cohort, Predictions
from cardio.config import core_defaults
from cardio_report.subgroups import cardio_evaluate
from cardio_stats import auc, cv_auc_interval
from cardio_testing.harness import cpu_context


def _run(tmp_path, n: int = 120, empty_fold: bool = False, thin_fold: bool = False):
    rng = np.random.default_rng(5)
    y = (np.arange(n) % 5 < 2).astype(float)
    sex = np.where(np.arange(n) % 2 == 0, "F", "M")
    fold = np.arange(n) % 7 % 5
    if empty_fold or thin_fold:  # fold 3 holds no responder among the men (thin_fold: one)
        men = np.flatnonzero((fold == 3) & (sex == "M") & (y == 1))
        y[men[thin_fold:]] = 0.0
    ids = [f"p{i:03d}" for i in range(n)]
    table = pd.DataFrame({"patient_id": ids, "record_id": ids, "sex": sex, "label": y})
    cohort = Cohort(table, loader=lambda rid: np.zeros(1), label="label")
    score = 1 / (1 + np.exp(-(rng.normal(size=n) + y)))
    preds = Predictions.from_arrays(ids, ids, y, score, model="m", task="label", fold=fold.astype(str), repeat=0)
    config = {**core_defaults(), "subgroups": ["sex"], "label": "label"}
    config["stats"] = {**config["stats"], "n_resamples": 100}
    section = cardio_evaluate(predictions=preds, cohort=cohort, config=config, ctx=cpu_context(tmp_path))
    assert section is not None  # subgroups are configured
    return section.tables["AUC by subgroup"].set_index("subgroup"), y, score, fold, sex


def test_a_k_fold_subgroup_prints_its_cross_validated_auc_and_names_the_interval(tmp_path):
    table, y, score, fold, sex = _run(tmp_path)
    f = sex == "F"
    ref = cv_auc_interval(y[f], score[f], fold[f].astype(str))
    assert table.loc["sex=F", "auc"] == f"{ref.estimate:.3f} [{ref.ci_low:.3f}, {ref.ci_high:.3f}]"
    assert table.loc["sex=F", "AUC interval"] == "fold DeLong × 2"  # the headline's own interval (cv_auc_interval)


def test_a_subgroup_whose_fold_lacks_a_class_prints_the_pooled_auc_alone_and_why(tmp_path):
    table, y, score, _, sex = _run(tmp_path, empty_fold=True)
    assert table.loc["sex=F", "AUC interval"] == "fold DeLong × 2"  # the headline's own interval (cv_auc_interval)
    m = sex == "M"
    assert table.loc["sex=M", "auc"] == f"{auc(y[m], score[m]):.3f}"  # the pooled AUC, no interval
    assert table.loc["sex=M", "AUC interval"].startswith("none: fold")
    assert "0 patient(s) with positive records" in table.loc["sex=M", "AUC interval"]  # a fold of one class


def test_a_subgroup_whose_fold_holds_one_patient_of_a_class_keeps_its_interval_and_says_how(tmp_path):
    """A fold with 1 responder among the men has no DeLong variance there; the row keeps the cross-validated
    interval (Hanley & McNeil's variance standing in for that fold's) and its column says so."""
    table, y, score, fold, sex = _run(tmp_path, thin_fold=True)
    m = sex == "M"
    assert int(y[m & (fold == 3)].sum()) == 1
    ref = cv_auc_interval(y[m], score[m], fold[m].astype(str))
    assert ref.extra["thin_folds"] == ["3"]  # named by its label
    assert table.loc["sex=M", "auc"] == f"{ref.estimate:.3f} [{ref.ci_low:.3f}, {ref.ci_high:.3f}]"
    assert table.loc["sex=M", "AUC interval"].startswith("fold DeLong × 2; fold(s) 3 hold 1 patient of a class: no "
                                                         "DeLong variance there; Hanley & McNeil's variance")
