"""Nested CV's refits (cardio.study.refits) run over the run's CPUs in forked workers and give the intervals the same
refits give in turn, to the last digit (spect_polar's default run: its 300 refits 14.4 -> 8.8 s on 2 cores)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import cardio.context
from cardio import Predictions, allotted_cpus, hookimpl
from cardio_stats import NESTED_METHOD
from cardio_testing.harness import run_plugin

SETS = ["train.epochs=1", "cv.folds=5", "stats.nested_repeats=2", "report.figures=false", "explain=false",
        "final_model=false", "stats.n_resamples=100"]


class Refit:
    """An add-on giving the toy run a model cheap to refit: a logistic regression on the features, under the MLP's
    name, so that its row carries nested CV's interval; each call notes the process that made it."""

    __name__ = "toy_refit"

    def __init__(self, pids: Path) -> None:
        self.pids = pids

    @hookimpl
    def cardio_refit(self, features, train_index, test_index, config, ctx):
        with open(self.pids, "a") as f:  # one short line an append: whole, whichever process writes it
            f.write(f"{os.getpid()}\n")
        fit = LogisticRegression().fit(features.x[train_index], features.y[train_index])
        t = features.table.iloc[test_index]
        return Predictions.from_arrays(t["record_id"], t["patient_id"], t[config["label"]],
                                       fit.predict_proba(features.x[test_index])[:, 1], model="mlp",
                                       task=config["label"])


def _run(toy_site: Path, tmp_path: Path, name: str) -> tuple[dict, list[int]]:
    pids = tmp_path / f"{name}.pids"
    run = run_plugin("toy", tmp_path / name, sets=SETS, register=[Refit(pids)])
    metrics = json.loads((run / "metrics.json").read_text())
    metrics.pop("elapsed_s")
    return metrics, [int(line) for line in pids.read_text().split()]


def test_the_refits_run_in_workers_and_give_what_they_give_in_turn(toy_site, tmp_path, monkeypatch):
    if allotted_cpus() < 2:
        pytest.skip("one CPU allotted: the refits run in the run's process")
    monkeypatch.syspath_prepend(str(toy_site))
    monkeypatch.setenv("CARDIO_CACHE", str(tmp_path / "cache"))
    parallel, workers = _run(toy_site, tmp_path, "workers")
    assert len(workers) == 2 * 15 and os.getpid() not in workers  # per repeat the 5 outer fits and 10 pairs
    head = [e for e in parallel["estimates"] if e["model"] == "mlp" and e["metric"] == "auc"
            and e["subgroup"] is None and e["method"] == NESTED_METHOD]  # the cross-validated AUC's row
    assert len(head) == 1, [(e["fold"], e["method"]) for e in parallel["estimates"] if e["metric"] == "auc"]
    monkeypatch.setattr(cardio.context, "allotted_cpus", lambda: 1)
    serial, here = _run(toy_site, tmp_path, "in-turn")
    assert set(here) == {os.getpid()}
    assert serial == parallel
    assert np.isfinite([head[0]["ci_low"], head[0]["ci_high"]]).all()
