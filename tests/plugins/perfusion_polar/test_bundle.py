"""perfusion_polar's final model: exported to a bundle after the folds (site A, the shared TINY run of conftest.py),
applied by `cardio predict` to site B, generated with another seed: labelled .npy maps (an external validation with
CIs) and the same studies unlabelled as ring x sector tables. The imported model scores site B as the final model
fitted in the run does, row for row."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("cardio_perfusion_polar")

import pandas as pd
import torch

from cardio_deploy import bundle as deploy_bundle
from cardio_perfusion_polar import bundle, cohort, training
from cardio_perfusion_polar.polar_table import Orientation
from cardio_perfusion_polar.settings import PerfusionSettings
from cardio_perfusion_polar.synthetic import RISK_TASKS, SEGMENT_TASKS, synthesize, write_cohort
from cardio_testing.harness import cpu_context, invoke, pooled, read_metrics

N_B = 40
MODELS = ["resnet-polar", "logistic-17seg", "ridge-17seg"]


@pytest.fixture(scope="module")
def site_b(site_a):
    """Site B, labelled with .npy maps, and unlabelled with its maps as 9 x 36 tables numbered from the base,
    sector 1 at 12 o'clock, clockwise (and the run's config told so with --set)."""
    table, maps = synthesize(N_B, 32, seed=99)  # another seed of the generator, ids of its own
    table = table.assign(patient_id="B" + table["patient_id"].astype(str))  # (site A's ids would be an overlap)
    labelled = write_cohort(table, maps, site_a["tmp"] / "site_b")
    unlabelled = table.drop(columns=[*RISK_TASKS, *SEGMENT_TASKS, "global_mfr"])
    tables = write_cohort(unlabelled, maps, site_a["tmp"] / "site_b_tables", tables=(9, 36),
                          orientation=Orientation("base", 90.0, "clockwise"))
    return labelled, tables


def _final_scores(site_a, cfg: dict, folder, sets: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the final model's, the imported model's) predictions on every row of a site-B folder, in process."""
    section = {**cfg["perfusion_polar"], **sets}
    cfg = {**cfg, "cohort": {**cfg["cohort"], "dir": str(folder)}, "perfusion_polar": section}
    ctx = cpu_context(site_a["tmp"] / f"featurize-{folder.name}")
    features = cohort.featurize(cohort.load(cfg, ctx), ctx)
    every = np.arange(len(features.table))
    (final,) = site_a["final"]
    _, state, _ = deploy_bundle.read(site_a["run"])
    return (training.predict(final, features, every, ctx).table,
            training.predict(bundle.load(state), features, every, ctx).table)


def _same_scores(own: pd.DataFrame, imported: pd.DataFrame, cli: pd.DataFrame) -> None:
    assert list(own["model"]) == list(imported["model"]) == list(cli["model"])
    assert list(own["task"]) == list(cli["task"])  # predictions.csv keeps the input's row order
    diff = np.abs(own["y_score"].to_numpy() - imported["y_score"].to_numpy()).max()
    via_cli = np.abs(own["y_score"].to_numpy() - cli["y_score"].to_numpy()).max()
    print(f"max |final - imported| = {diff:.3g}, |final - cardio predict| = {via_cli:.3g}")
    assert diff <= 1e-6 and via_cli <= 1e-5  # predictions.csv is written as text
    assert np.array_equal(own["threshold"].to_numpy(), imported["threshold"].to_numpy(), equal_nan=True)


def test_the_bundle_holds_the_final_model_bit_for_bit(site_a):
    run = site_a["run"]
    info, state, cfg = deploy_bundle.read(run)
    assert info["plugin"] == "perfusion_polar" and info["n_patients"] == 48
    assert state.params["risk_tasks"] == list(RISK_TASKS) and set(state.params["thresholds"]) == {
        f"{m}/{t}" for m in ("resnet", "logistic") for t in RISK_TASKS}
    assert state.params["map_size"] == 32 and cfg["perfusion_polar"]["n_patients"] == 48
    # import then export gives back every array, bit for bit: nothing is lost on the way
    again = bundle.export(bundle.load(state), PerfusionSettings.of(cfg))
    assert set(again.tensors) == set(state.tensors)
    for name, value in again.tensors.items():
        assert np.array_equal(torch.as_tensor(value).numpy(), state.tensors[name].numpy()), name
    assert (run / "history" / "final-perfusion-step1-mfr.csv").is_file()


def test_a_labelled_site_b_is_an_external_validation_with_the_final_models_scores(site_a, site_b):
    labelled, _ = site_b
    out = site_a["tmp"] / "b"
    result = invoke("predict", "--model", str(site_a["run"]), "--cohort", str(labelled), "--out", str(out),
                    "--set", "report.figures=false")  # the estimates are checked, not the figures
    assert result.exit_code == 0, result.stderr[-2000:]
    pred = pd.read_csv(out / "predictions.csv")
    assert pred["patient_id"].nunique() == N_B and set(pred["model"]) == set(MODELS)
    assert set(pred["fold"]) == {"external"} and pred["y_true"].notna().all()
    metrics = read_metrics(out)
    for model in ("resnet-polar", "logistic-17seg"):
        for task in RISK_TASKS:
            (auc,) = pooled(metrics, "auc", model=model, task=task)
            assert auc["n"] == N_B and auc["ci_low"] <= auc["estimate"] <= auc["ci_high"], (model, task, auc)
            assert 0 <= auc["ci_low"] < auc["ci_high"] <= 1
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
    assert "External validation" in (out / "report.md").read_text()
    own, imported = _final_scores(site_a, deploy_bundle.read(site_a["run"])[2], labelled, {})
    _same_scores(own, imported, pred)


def test_an_unlabelled_site_b_of_ring_sector_tables_gets_the_final_models_scores(site_a, site_b):
    _, tables = site_b
    out = site_a["tmp"] / "u"
    numbering = {"first_ring": "base", "first_sector_deg": 90.0, "direction": "clockwise"}
    result = invoke("predict", "--model", str(site_a["run"]), "--cohort", str(tables), "--out", str(out),
                    *(f"--set=perfusion_polar.tables.{k}={v}" for k, v in numbering.items()))
    assert result.exit_code == 0, result.stderr[-2000:]
    pred = pd.read_csv(out / "predictions.csv")
    assert pred["patient_id"].nunique() == N_B and set(pred["model"]) == set(MODELS)
    assert pred["y_true"].isna().all() and not (out / "metrics.json").exists()
    own, imported = _final_scores(site_a, deploy_bundle.read(site_a["run"])[2], tables, {"tables": numbering})
    _same_scores(own, imported, pred)
    # the tables are the labelled site's maps: the scores agree within the resampling's error
    from_npy, _ = _final_scores(site_a, deploy_bundle.read(site_a["run"])[2], site_b[0], {})
    risk = own["task"].isin(RISK_TASKS).to_numpy()
    gap = np.abs(own["y_score"].to_numpy()[risk] - from_npy["y_score"].to_numpy()[risk])
    print(f"tables vs .npy maps, risk scores: median |difference| {np.median(gap):.3f}, max {gap.max():.3f}")
    assert np.median(gap) < 0.05
