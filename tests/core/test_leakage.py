"""Label-leak guard and the null control: outcome columns refused as covariates, near-perfect features
flagged, permuted labels give chance while the planted signal is found."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cardio import CardioError, Cohort, Features, PluginInfo, Predictions, hookimpl
from cardio.data.leakage import permute_outcomes
from cardio_testing.harness import pooled, read_metrics, run_plugin


def _table(n=60, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n):
        label = int(p % 2)
        for r in range(2):
            rows.append({"record_id": f"p{p}r{r}", "patient_id": f"p{p}", "label": label,
                         "lvesv_change": -20.0 * label + rng.normal(), "age": rng.normal(65, 8)})
    return pd.DataFrame(rows)


def test_permuted_outcomes_move_together_and_stay_one_per_patient():
    cohort = Cohort(_table(), outcomes=("lvesv_change",))
    out = permute_outcomes(cohort, seed=3)
    t = out.table
    assert (t.groupby("patient_id")["label"].nunique() == 1).all()
    assert t["label"].sum() == cohort.table["label"].sum()  # the same labels, other patients
    assert (t["label"] != cohort.table["label"]).mean() > 0.2
    # the outcome column travels with its label: still perfectly tied to the permuted label
    assert ((t["lvesv_change"] < -10) == (t["label"] == 1)).all()
    assert (t["age"] == cohort.table["age"]).all()  # covariates stay with their patient


class Leaky:
    """A modality whose cohort declares the column the label is derived from."""

    def __init__(self, extra_feature=False):
        self.extra_feature = extra_feature

    @hookimpl
    def cardio_plugin_info(self):
        return PluginInfo(name="leaky", modality="toy", description="declares an outcome column",
                          default_config={"baselines": {"covariates": ["age"]}, "train": {"epochs": 1}})

    @hookimpl
    def cardio_load(self):
        return Cohort(_table(), outcomes=("lvesv_change",))

    @hookimpl
    def cardio_featurize(self, cohort):
        table = cohort.table.copy()
        if self.extra_feature:
            table["echo_delta"] = table["lvesv_change"]  # a copy under another name: must be flagged
        return Features(table, x=table[["age"]].to_numpy())

    @hookimpl
    def cardio_train(self, features, train_index):
        return 0

    @hookimpl
    def cardio_predict(self, model, features, test_index):
        t = features.table.iloc[test_index]
        return Predictions.from_arrays(t["record_id"], t["patient_id"], t["label"], 1 / (1 + np.exp(-t["age"] / 10)))


def test_an_outcome_column_named_as_covariate_is_refused(tmp_path):
    with pytest.raises(CardioError, match=r"config key baselines.covariates names 'lvesv_change', which defines"):
        run_plugin("leaky", tmp_path / "r", ["baselines.covariates=[age, lvesv_change]"], register=[Leaky()])


def test_a_feature_that_predicts_the_label_almost_perfectly_is_flagged(tmp_path):
    run = run_plugin("leaky", tmp_path / "r", ["explain=false", "report.figures=false"],
                     register=[Leaky(extra_feature=True)])
    meta = read_metrics(run)
    assert any(flag.startswith("echo_delta") for flag in meta["probable_leaks"])
    assert "Probable label leak" in (run / "report.md").read_text()
    assert not any(f.startswith("lvesv_change") for f in meta["probable_leaks"])  # declared: not a surprise


@pytest.mark.parametrize("permute", [False, True])
def test_planted_signal_is_found_and_permuted_labels_give_chance(cardio_cli, tmp_path, permute):
    args = ["run", "--plugin", "toy", "--out", "r", "--set", "data.signal=1.5", "--set", "train.epochs=8",
            "--set", f"cohort.permute_labels={str(permute).lower()}", "--set", "report.figures=false"]
    cardio_cli(*args, check=True)
    (auc,) = pooled(read_metrics(tmp_path / "r"), "auc")
    if permute:
        assert auc["ci_low"] < 0.5 < auc["ci_high"], auc
        assert "Null control" in (tmp_path / "r" / "report.md").read_text()
    else:
        assert auc["ci_low"] > 0.5, auc
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["null_control"] is permute
