"""ecg_transfer's final model: exported to <run>/model/ after the folds, applied by `cardio predict` to site B."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time

import pytest

pytest.importorskip("cardio_ecg_transfer")

import numpy as np
import pandas as pd
import torch

from cardio import hookimpl
from cardio_deploy import bundle as deploy_bundle
from cardio_ecg_transfer import bundle, cohort_ecg, fold_models, resnet, synthetic
from cardio_sklearn import sklearn_to_array
from cardio_testing.harness import check_refused, cpu_context, invoke, pooled, read_metrics, run_plugin

MODELS = {"resnet18-transfer", "resnet18-scratch", "guideline", "svm", "random_forest", "logistic",
          "svm-deep", "random_forest-deep", "logistic-deep"}
N_B = 20
# Every model of the plugin, kept small: random pretrained weights from a file instead of MIT-BIH pretraining
# (what is tested is the bundle, not the transfer), 3 beats per ECG, one epoch, 10 trees, no Grad-CAM, no figures.
TINY = ["ecg_transfer.synthetic.n_patients=30", "ecg_transfer.preprocess.max_beats_per_record=3", "cv.folds=2",
        "ecg_transfer.finetune.epochs=1", "ecg_transfer.baselines.threshold_cv=2",
        "ecg_transfer.baselines.rf.n_estimators=10", "stats.n_resamples=100", "explain=false", "train.cpu_threads=1",
        "report.figures=false"]


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
def one_thread_module():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def site_a(tmp_path_factory, one_thread_module):
    """A site-A run with its final model (and that model object), and a site-B cohort: another seed."""
    tmp = tmp_path_factory.mktemp("ecg_bundle")
    torch.manual_seed(0)
    weights = resnet.save_weights(resnet.build_resnet("resnet18", 5), tmp / "pretrained.pt")
    keep = KeepFinalModel()
    t0 = time.perf_counter()
    run = run_plugin("ecg_transfer", tmp / "a", sets=[*TINY, f"ecg_transfer.pretrain.weights_file={weights}"],
                     cache_dir=tmp / "cache", register=[keep])
    print(f"site A run: {time.perf_counter() - t0:.1f} s")
    site_b = tmp / "site_b"
    synthetic.write_synthetic_cohort(site_b, n_patients=N_B, seed=1)
    # other patients than site A's (its ids would be crt001... too: the core reports such a cohort as overlapping)
    table = pd.read_csv(site_b / "cohort.csv", dtype=str)
    table[["patient_id", "record_id"]] = "b-" + table[["patient_id", "record_id"]]
    table.to_csv(site_b / "cohort.csv", index=False)
    return {"run": run, "final": keep.models, "site_b": site_b, "tmp": tmp}


def _features(cfg: dict, cohort_dir, tmp):
    cfg = {**cfg, "cohort": {**cfg["cohort"], "dir": str(cohort_dir)}}
    ctx = cpu_context(tmp / "featurize")
    cohort = cohort_ecg.preprocess(cohort_ecg.load(cfg, ctx), cfg, ctx)
    return cohort_ecg.featurize(cohort, cfg, ctx), ctx


def test_site_a_model_predicts_site_b_with_its_own_scores(site_a):
    run, tmp = site_a["run"], site_a["tmp"]
    info, state, cfg = deploy_bundle.read(run)
    assert info["plugin"] == "ecg_transfer" and info["n_patients"] == 30
    assert [m["name"] for m in state.params["beat_models"]] == ["resnet18-transfer", "resnet18-scratch"]
    assert state.params["baselines"]["models"] == ["svm", "random_forest", "logistic"]
    assert state.tensors["baselines.svm"].dtype == torch.uint8  # skops bytes inside the safetensors file
    size = sum(p.stat().st_size for p in (run / "model").iterdir())
    print(f"bundle: {size / 1e6:.1f} MB; skops arrays: "
          f"{sum(v.numel() for k, v in state.tensors.items() if not k.startswith('beat')) / 1e3:.0f} kB")
    assert (run / "history" / "final-transfer.csv").is_file()

    result = invoke("predict", "--model", str(run), "--cohort", str(site_a["site_b"]), "--out", str(tmp / "b"))
    assert result.exit_code == 0, result.stderr[-2000:]
    pred = pd.read_csv(tmp / "b" / "predictions.csv")
    assert set(pred["model"]) == MODELS and len(pred) == N_B * len(MODELS)
    assert pred.groupby("model")["patient_id"].nunique().eq(N_B).all()
    assert set(pred["fold"]) == {"external"} and pred["y_true"].notna().all()
    auc = pooled(read_metrics(tmp / "b"), "auc", model="svm")
    assert len(auc) == 1 and auc[0]["n"] == N_B and auc[0]["ci_low"] <= auc[0]["estimate"] <= auc[0]["ci_high"]
    assert "External validation" in (tmp / "b" / "report.md").read_text()

    # the imported model scores site B exactly as the final model fitted in the run does, row for row
    features, ctx = _features(cfg, site_a["site_b"], tmp)
    every = np.arange(len(features))
    (final,) = site_a["final"]
    own = fold_models.predict_fold(final, features, every, ctx).table
    imported = fold_models.predict_fold(bundle.load(state), features, every, ctx).table
    assert own[["model", "patient_id"]].equals(imported[["model", "patient_id"]])
    diff = np.abs(own["y_score"].to_numpy() - imported["y_score"].to_numpy()).max()
    cli = np.abs(own["y_score"].to_numpy() - pred["y_score"].to_numpy()).max()  # predictions.csv keeps the order
    print(f"max |final model - imported model| = {diff:.3g}, vs cardio predict's predictions.csv = {cli:.3g}")
    assert diff <= 1e-6 and cli <= 1e-6
    assert np.array_equal(own["threshold"].to_numpy(), imported["threshold"].to_numpy())
    assert list(pred["model"]) == list(own["model"])


def test_an_unlabelled_cohort_gets_predictions_only(site_a):
    tmp = site_a["tmp"]
    folder = tmp / "site_b_unlabelled"
    shutil.copytree(site_a["site_b"], folder)
    table = pd.read_csv(folder / "cohort.csv")
    unlabelled = table.drop(columns=["responder", "lvesv_reduction_pct", "lvesv_followup"])  # nothing to derive it
    unlabelled.to_csv(folder / "cohort.csv", index=False)
    result = invoke("predict", "--model", str(site_a["run"]), "--cohort", str(folder), "--out", str(tmp / "u"))
    assert result.exit_code == 0, result.stderr[-2000:]
    pred = pd.read_csv(tmp / "u" / "predictions.csv")
    assert set(pred["model"]) == MODELS and len(pred) == N_B * len(MODELS)
    probability = ~pred["model"].str.startswith("svm")  # an SVM scores by its margin (issue 38), not a probability
    assert pred["y_true"].isna().all() and pred.loc[probability, "y_score"].between(0, 1).all()
    assert not (tmp / "u" / "metrics.json").exists()
    # cardio run still refuses a cohort without its outcome, in one line
    refused = invoke("run", "--plugin", "ecg_transfer", "--out", str(tmp / "r"), "--set", f"cohort.dir={folder}",
                     "--set", f"cache_dir={tmp / 'cache'}")
    check_refused(refused, "target column(s) ['responder'] hold no value at all")


def test_a_bundle_holding_an_untrusted_type_is_refused_unloaded(site_a):
    """The sklearn bytes name os.system: refused in one line naming it, with the checksum made to match."""
    from safetensors.torch import load_file, save_file
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    tmp = site_a["tmp"]
    forged = tmp / "forged"
    forged.mkdir(parents=True)
    shutil.copy(site_a["run"] / "run.json", forged / "run.json")
    shutil.copytree(site_a["run"] / "model", forged / "model")  # its fold models too: bundle.json lists them
    weights = forged / "model" / "weights.safetensors"
    tensors = load_file(str(weights))
    tensors["baselines.svm"] = torch.from_numpy(sklearn_to_array(make_pipeline(FunctionTransformer(os.system))))
    save_file(tensors, str(weights))
    info = json.loads((forged / "model" / "bundle.json").read_text())
    info["weights_sha256"] = info["files"]["weights.safetensors"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    (forged / "model" / "bundle.json").write_text(json.dumps(info))

    result = invoke("predict", "--model", str(forged), "--cohort", str(site_a["site_b"]), "--out", str(tmp / "f"))
    check_refused(result, f"model bundle array 'baselines.svm' holds type(s) outside the plugin's allow-list, "
                          f"refused without loading: {os.system.__module__}.system")
    assert not (tmp / "f" / "predictions.csv").exists()
