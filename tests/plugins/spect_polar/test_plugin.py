"""Plugin spect_polar end to end: `cardio run --plugin spect_polar` on a small config, and its run directory."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("cardio_spect_polar")

import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from cardio.data import CardioError  # noqa: E402

SMALL = {
    "data": {"n_patients": 30, "slices": 20, "size": 40},
    "phase": {"rings": 16, "sectors": 32},
    "autoencoder": {"hidden": 32, "iterations": 40, "batch_size": None},
    "cv": {"folds": 3},
    "stats": {"n_resamples": 200},
}


def test_plugin_info_and_config_keys():
    from cardio_spect_polar import plugin

    info = plugin.cardio_plugin_info()
    assert info.name == "spect_polar" and info.modality == "spect"
    cfg = info.default_config
    assert cfg["task"] == "phase_ae" and cfg["autoencoder"]["features"] == 64
    assert cfg["autoencoder"]["iterations"] == 1000 and cfg["analysis"]["p_enter"] == 0.1
    assert cfg["data"]["n_patients"] == 103 and cfg["perfusion"]["arch"] == "resnet18"
    assert cfg["profiles"]["paper"]["perfusion"]["arch"] == "resnet50"
    assert {"paper", "fast"} <= set(cfg["profiles"])
    with pytest.raises(CardioError, match="unknown task"):
        plugin._task({"task": "nonsense"})


def cardio(tmp_path, *args):
    env = {**os.environ, "CARDIO_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "cardio.cli", *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=600)


def test_cardio_run_phase_ae_end_to_end(tmp_path):
    (tmp_path / "small.yaml").write_text(yaml.safe_dump({**SMALL, "cache_dir": str(tmp_path / "cache")}))
    out = tmp_path / "run"
    proc = cardio(tmp_path, "run", "--plugin", "spect_polar", "--config", "small.yaml", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]

    # the synthetic cohort was written as DICOM and read back
    assert len(list((tmp_path / "cache" / "spect_polar").glob("*/volumes/*.dcm"))) == 30
    for name in ("config.yaml", "metrics.json", "predictions.csv", "report.md", "report.html", "run.log"):
        assert (out / name).is_file(), name
    assert yaml.safe_load((out / "config.yaml").read_text())["autoencoder"]["iterations"] == 40

    figures = {p.name for p in (out / "figures").glob("*.png")}
    assert {"spect_bullseye_mean_phase_perfusion.png",  # phase and perfusion bull's-eyes
            "spect_phase_summary_responder.png", "spect_phase_summary_non_responder.png",  # with histograms
            "spect_ae_feature_decoder_view.png", "spect_univariate_forest.png", "spect_ae_correlation.png",
            "spect_roc_in_sample.png", "roc_responder.png"} <= figures

    pred = pd.read_csv(out / "predictions.csv")
    assert set(pred["model"]) == {"clinical+ae", "clinical+psd", "clinical+pbw"}
    assert (pred.groupby("model")["patient_id"].nunique() == 30).all() and pred["fold"].nunique() == 3
    assert not set(pred["patient_id"]) & {f"P{i + 1:04d}" for i in range(30)}  # the core pseudonymised the ids

    metrics = json.loads((out / "metrics.json").read_text())
    names = {e["metric"] for e in metrics["estimates"]}
    assert {"in-sample AUC clinical+ae", "out-of-fold AUC clinical+ae", "auc"} <= names
    assert any(t["name"].startswith("LR test: clinical+psd+ae") for t in metrics["tests"])

    report = (out / "report.md").read_text()
    assert "the paper's analysis (in-sample, explanatory)" in report
    assert "in-sample vs cross-validated (out-of-fold)" in report
    assert "| model | in_sample_auc | in_sample_ci | out_of_fold_auc |" in report


def test_cardio_run_perfusion_task_end_to_end(tmp_path):
    out = tmp_path / "perf"
    proc = cardio(tmp_path, "run", "--plugin", "spect_polar", "--set", "task=perfusion_risk",
                  "--set", "perfusion.n_patients=36", "--set", "perfusion.size=32", "--set", "perfusion.arch=resnet18",
                  "--set", "perfusion.step1.epochs=1", "--set", "perfusion.step2.epochs=1", "--set", "cv.folds=2",
                  "--set", "stats.n_resamples=100", "--set", f"cache_dir={tmp_path / 'cache'}", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(list((tmp_path / "cache" / "spect_polar").glob("perfusion-*/maps/*.npy"))) == 36
    pred = pd.read_csv(out / "predictions.csv")
    assert set(pred.loc[pred["kind"] == "regression", "task"]) == {f"mfr_seg{i:02d}" for i in range(1, 18)}
    assert set(pred.loc[pred["kind"] == "binary", "task"]) == {"impaired_mfr", "sex_male", "smoking", "hypertension",
                                                               "dyslipidemia", "diabetes"}
    assert {"resnet-polar", "logistic-17seg", "ridge-17seg"} == set(pred["model"])
    figures = {p.name for p in (out / "figures").glob("*.png")}
    assert {"perfusion_bullseye_mean_maps.png", "perfusion_bullseye_mfr_error.png"} <= figures
    assert "ResNet vs 17-segment logistic regression" in (out / "report.md").read_text()
