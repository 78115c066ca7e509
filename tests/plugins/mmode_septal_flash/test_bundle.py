"""mmode_septal_flash's final model: exported to <run>/model/ after the folds (both DenseNet-121, their training
mean images and thresholds), applied by `cardio predict` to a site B generated with another seed."""
from __future__ import annotations

import shutil

import pytest

pytest.importorskip("cardio_mmode_septal_flash")

import numpy as np
import pandas as pd
import torch

from cardio import CardioError, ModelState, hookimpl
from cardio_deploy import bundle as deploy_bundle
from cardio_mmode_septal_flash import bundle, cohort, preprocess, synthetic, training
from cardio_mmode_septal_flash.settings import SeptalFlashSettings
from cardio_testing.harness import cpu_context, invoke, plugin_config, pooled, read_metrics, run_plugin

N_A, N_B = 30, 16
# Tiny: 48 x 48 frames, 3 lines a record, 128 x 128 M-modes, 32 x 32 inputs, one epoch, no Grad-CAM, no figures
# (the tests read the bundle, the predictions and the report's text).
TINY = ["profile=fast", f"mmode_septal_flash.synthetic.n_patients={N_A}", "mmode_septal_flash.synthetic.n_sf=12",
        "mmode_septal_flash.synthetic.size=48", "mmode_septal_flash.mmode.size=[128, 128]",
        "mmode_septal_flash.model.input_size=32", "train.cpu_threads=1", "stats.n_resamples=100",
        "explain=false", "report.figures=false"]
MODELS = {"densenet121-full", "densenet121-cropped"}


class KeepFinalModel:
    """An add-on that keeps the model the core exports: the final model's own scores to compare with."""

    __name__ = "keep_final_model"

    def __init__(self) -> None:
        self.models: list = []

    @hookimpl(wrapper=True)
    def cardio_export_model(self, model, ctx):
        if ctx.fold == "final":  # not the outer folds' models the bundle also carries (fold_models)
            self.models.append(model)
        return (yield)


@pytest.fixture(scope="module")
def site_a(tmp_path_factory):
    """A site-A run with its final model (and that model object), and a site-B cohort: another seed, its own ids."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("mmode_bundle")
    keep = KeepFinalModel()
    run = run_plugin("mmode_septal_flash", tmp / "a", sets=TINY, cache_dir=tmp / "cache", register=[keep])
    site = [f"mmode_septal_flash.synthetic.n_patients={N_B}", "mmode_septal_flash.synthetic.n_sf=7",
            "mmode_septal_flash.synthetic.seed=99"]
    cfg = plugin_config("mmode_septal_flash", [*TINY, *site])
    site_b = synthetic.write_cohort(SeptalFlashSettings.of(cfg).synthetic, tmp / "site_b")
    table = pd.read_csv(site_b / "labels.csv", dtype=str, keep_default_na=False)
    # ids of its own: site A's (SF0001...) would read as an overlap with the training cohort
    table["sequence"] = "sequences/" + table["patient_id"] + ".npy"
    table["septum"] = "septum/" + table["patient_id"] + ".csv"
    table.insert(1, "record_id", "B-" + table["patient_id"])
    table["patient_id"] = "B-" + table["patient_id"]
    table.to_csv(site_b / "labels.csv", index=False)
    yield {"run": run, "final": keep.models, "site_b": site_b, "tmp": tmp}
    torch.set_num_threads(before)


def test_site_a_model_predicts_site_b_with_its_own_scores(site_a):
    run, tmp = site_a["run"], site_a["tmp"]
    info, state, cfg = deploy_bundle.read(run)
    assert info["plugin"] == "mmode_septal_flash" and info["n_patients"] == N_A
    assert state.params["variants"] == ["full", "cropped"] and state.params["input_size"] == 32
    assert state.params["thresholds"] == {"full": 0.5, "cropped": 0.5}
    assert state.tensors["full.mean"].shape == (32, 32) and state.tensors["cropped.mean"].shape == (32, 32)
    # import then export gives back every array, bit for bit
    again = bundle.export(bundle.load(state, 32))
    assert set(again.tensors) == set(state.tensors)
    for name, value in again.tensors.items():
        assert np.array_equal(torch.as_tensor(value).numpy(), state.tensors[name].numpy()), name

    result = invoke("predict", "--model", str(run), "--cohort", str(site_a["site_b"]), "--out", str(tmp / "b"))
    assert result.exit_code == 0, result.stderr[-2000:]
    pred = pd.read_csv(tmp / "b" / "predictions.csv")
    assert set(pred["model"]) == MODELS and len(pred) == 2 * N_B and pred["y_true"].notna().all()
    auc = pooled(read_metrics(tmp / "b"), "auc", model="densenet121-cropped")
    assert len(auc) == 1 and auc[0]["n"] == N_B and auc[0]["ci_low"] <= auc[0]["estimate"] <= auc[0]["ci_high"]
    assert "External validation" in (tmp / "b" / "report.md").read_text()

    # the imported model scores site B exactly as the final model fitted in the run does, row for row
    cfg = {**cfg, "cohort": {**cfg["cohort"], "dir": str(site_a["site_b"])}}
    ctx = cpu_context(tmp / "featurize")
    features = preprocess.featurize(cohort.load(cfg, ctx), SeptalFlashSettings.of(cfg), ctx)
    every = np.arange(len(features))
    (final,) = site_a["final"]
    own = training.predict(final, features, every, ctx).table
    imported = training.predict(bundle.load(state, 32), features, every, ctx).table
    assert own[["model", "record_id"]].equals(imported[["model", "record_id"]])
    diff = np.abs(own["y_score"].to_numpy() - imported["y_score"].to_numpy()).max()
    cli = np.abs(own["y_score"].to_numpy() - pred["y_score"].to_numpy()).max()  # predictions.csv keeps the order
    assert diff <= 1e-6 and cli <= 1e-6, (diff, cli)
    assert list(pred["model"]) == list(own["model"])


def test_an_unlabelled_cohort_gets_predictions_only(site_a):
    tmp = site_a["tmp"]
    folder = shutil.copytree(site_a["site_b"], tmp / "site_b_unlabelled")
    table = pd.read_csv(folder / "labels.csv", dtype=str, keep_default_na=False)
    table.drop(columns=[cohort.LABEL, "sf_start_ms", "sf_end_ms"]).to_csv(folder / "labels.csv", index=False)
    result = invoke("predict", "--model", str(site_a["run"]), "--cohort", str(folder), "--out", str(tmp / "u"))
    assert result.exit_code == 0, result.stderr[-2000:]
    pred = pd.read_csv(tmp / "u" / "predictions.csv")
    labelled = pd.read_csv(tmp / "b" / "predictions.csv")
    assert pred["y_true"].isna().all() and len(pred) == 2 * N_B
    assert np.abs(pred["y_score"].to_numpy() - labelled["y_score"].to_numpy()).max() <= 1e-6
    assert not (tmp / "u" / "report.md").exists()


def test_a_bundle_of_another_input_size_is_one_line(site_a):
    _, state, _ = deploy_bundle.read(site_a["run"])
    with pytest.raises(CardioError, match="trained on 32 x 32 inputs, its config asks for 64"):
        bundle.load(state, 64)
    without = ModelState({k: v for k, v in state.tensors.items() if k != "full.mean"}, state.params)
    with pytest.raises(CardioError, match="lacks a 32 x 32 full training mean image"):
        bundle.load(without, 32)
    cut = ModelState({k: v for k, v in state.tensors.items() if k != "cropped.net.classifier.bias"}, state.params)
    with pytest.raises(CardioError, match="cropped weights do not fit a DenseNet-121"):
        bundle.load(cut, 32)
