"""A task run by a worker process (a local worker, a SLURM job) under a cache that holds another pseudonym key than
its run's stops before any work, its marker failed with one line naming both keys; under the run's cache the same
task runs. (A SLURM node with a cache of its own would otherwise fit its fold under another key, and evaluate would
find that fold's patients in no record of the cohort.)"""
from __future__ import annotations

import json

import pytest

pytest.importorskip("cardio_cluster")

from cardio import CardioError
from cardio.execution.task import TaskSpec
from cardio_cluster.worker import run_task


def test_a_worker_under_another_key_stops_its_task_naming_both(cardio_cli, tmp_path, toy_site, monkeypatch):
    # a run whose evaluate failed (a subgroup it lacks): its folds are done, evaluate is left to run
    made = cardio_cli("run", "--plugin", "toy", "--out", "r", "--set", "train.epochs=1", "--set", "cv.folds=2",
                      "--set", "subgroups=[nope]", "--set", "report.figures=false", "--set", "final_model=false")
    assert made.returncode == 2, made.stderr
    run = tmp_path / "r"
    (run / "config.yaml").write_text((run / "config.yaml").read_text().replace("- nope", "- sex"))
    recorded = json.loads((run / "run.json").read_text())["pseudonym_key"]
    monkeypatch.syspath_prepend(str(toy_site))
    monkeypatch.setenv("CARDIO_CACHE", str(tmp_path / "node"))
    with pytest.raises(CardioError, match=f"was pseudonymized with key {recorded} and .*node/pseudonym.key does "
                                          "not exist"):
        run_task(TaskSpec("toy", str(run), "evaluate"))
    assert f"key {recorded}" in json.loads((run / "tasks" / "evaluate" / "failed.json").read_text())["error"]
    assert not (tmp_path / "node" / "pseudonym.key").exists()
    monkeypatch.setenv("CARDIO_CACHE", str(tmp_path / "cache"))  # the run's cache
    assert run_task(TaskSpec("toy", str(run), "evaluate")) == "evaluate"
    assert (run / "metrics.json").exists()
