"""perfusion_polar's final model: exported to a bundle after the folds, applied by `cardio predict` to a second site."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("cardio_perfusion_polar")

import pandas as pd
import torch

from cardio import bundle as core_bundle
from cardio.testing import invoke, pooled, read_metrics, run_plugin
from cardio_perfusion_polar import bundle
from cardio_perfusion_polar.synthetic import RISK_TASKS, synthesize, write_cohort

TINY = ["perfusion_polar.n_patients=48", "perfusion_polar.size=32", "perfusion_polar.step1.epochs=1",
        "perfusion_polar.step2.epochs=1", "perfusion_polar.cpu_threads=1", "cv.folds=2", "stats.n_resamples=100",
        "explain=false"]


def test_site_a_model_predicts_site_b(tmp_path, one_thread):
    run = run_plugin("perfusion_polar", tmp_path / "a", sets=TINY, cache_dir=tmp_path / "cache")
    info, state, cfg = core_bundle.read(run)
    assert info["plugin"] == "perfusion_polar" and info["n_patients"] == 48
    assert state.params["risk_tasks"] == list(RISK_TASKS) and set(state.params["thresholds"]) == {
        f"{m}/{t}" for m in ("resnet", "logistic") for t in RISK_TASKS}
    assert cfg["perfusion_polar"]["n_patients"] == 48
    # import then export gives back every array, bit for bit: nothing is lost on the way
    again = bundle.export(bundle.load(state), cfg["perfusion_polar"])
    assert set(again.tensors) == set(state.tensors)
    for name, value in again.tensors.items():
        assert np.array_equal(torch.as_tensor(value).numpy(), state.tensors[name].numpy()), name
    assert (run / "history" / "final-perfusion-step1-mfr.csv").is_file()

    table, maps = synthesize(40, 32, seed=99)  # a second site: another seed of the generator, ids of its own
    table = table.assign(patient_id="B" + table["patient_id"].astype(str))  # (site A's ids would be an overlap)
    site_b = tmp_path / "site_b"
    write_cohort(table, maps, site_b)
    result = invoke("predict", "--model", str(run), "--cohort", str(site_b), "--out", str(tmp_path / "b"))
    assert result.exit_code == 0, result.stderr[-2000:]
    pred = pd.read_csv(tmp_path / "b" / "predictions.csv")
    assert pred["patient_id"].nunique() == 40
    assert {"resnet-polar", "logistic-17seg", "ridge-17seg"} == set(pred["model"])
    metrics = read_metrics(tmp_path / "b")
    auc = pooled(metrics, "auc", model="logistic-17seg", task="impaired_mfr")
    assert len(auc) == 1 and auc[0]["n"] == 40 and auc[0]["ci_low"] <= auc[0]["estimate"] <= auc[0]["ci_high"]
    assert json.loads((tmp_path / "b" / "run.json").read_text())["status"] == "finished"
    assert "External validation" in (tmp_path / "b" / "report.md").read_text()
