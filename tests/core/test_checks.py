"""Cohort checks: `cardio validate` lists every problem at once, and `cardio run` stops on them before featurizing."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cardio import CardioError, Cohort, PluginInfo, hookimpl
from cardio.config import core_defaults
from cardio.data.checks import cohort_problems
from cardio.study.validate import validate_cohort
from cardio_testing.harness import run_plugin


def _cohort(labels, patients=None):
    n = len(labels)
    patients = patients if patients is not None else [f"p{i}" for i in range(n)]
    return Cohort(pd.DataFrame({"record_id": [f"r{i}" for i in range(n)], "patient_id": patients, "label": labels}))


@pytest.mark.parametrize("labels,problem", [
    ([1, 2] * 20, "code it as 0/1"),
    ([1] * 40, "is constant"),
    (["yes", "no"] * 20, "is not numeric"),
    ([np.nan] * 40, "hold no value at all"),
    ([0] * 37 + [1] * 3, "the rarer outcome has only 3 patients"),
])
def test_each_problem_is_named(labels, problem):
    problems = cohort_problems(_cohort(labels), core_defaults())
    assert any(problem in p for p in problems), problems


def test_several_problems_are_listed_at_once():
    labels = [0, 1] * 2
    cohort = _cohort(labels, ["a", "a", "b", "c"])
    cohort.level = "patient"  # the outcome is the patient's: their records must agree
    problems = cohort_problems(cohort, core_defaults())
    assert len(problems) == 2 and "different values of 'label'" in problems[0] and "cv.folds=5" in problems[1]
    cohort.level = "record"  # records predicted one by one (baseline and follow-up) may differ
    assert len(cohort_problems(cohort, core_defaults())) == 1


class BadLabels:
    @hookimpl
    def cardio_plugin_info(self):
        return PluginInfo(name="badlabels", modality="toy", description="labels coded 1/2")

    @hookimpl
    def cardio_load(self):
        return _cohort([1, 2] * 20)

    @hookimpl
    def cardio_featurize(self, cohort):
        raise AssertionError("featurize must not run on a cohort that failed its checks")

    @hookimpl
    def cardio_train(self):
        return 0

    @hookimpl
    def cardio_predict(self):
        return None


def test_validate_lists_and_run_stops_before_featurize(tmp_path):
    summary, problems = validate_cohort("badlabels", sets=(f"cache_dir={tmp_path}",), register=[BadLabels()])
    assert "40 records of 40 patients" in summary and problems and "0/1" in problems[0]
    with pytest.raises(CardioError, match="the cohort does not fit the study: the binary outcome 'label' holds"):
        run_plugin("badlabels", tmp_path / "run", register=[BadLabels()])


def test_validate_command_on_a_good_cohort(cardio_cli):
    proc = cardio_cli("validate", "--plugin", "toy", check=True)
    assert proc.stdout.startswith("cohort OK: 120 records of 60 patients; label: 30 positive, 30 negative")


def test_missing_labels_are_masked_not_problems():
    """A missing label leaves that record out of training and of its metrics; validate counts it."""
    from cardio.data.checks import summary

    cohort = _cohort([0, 1] * 15 + [np.nan] * 10)
    assert cohort_problems(cohort, core_defaults()) == []
    assert "label 30 present, 10 missing" in summary(cohort)
    assert cohort.mask["label"].sum() == 30
