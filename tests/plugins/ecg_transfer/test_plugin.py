"""Plugin ecg_transfer end to end: `cardio run --plugin ecg_transfer` on a tiny config, and its run directory."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("cardio_ecg_transfer")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from cardio_ecg_transfer import pretrain  # noqa: E402

MODELS = {"resnet18-transfer", "resnet18-scratch", "guideline", "svm", "random_forest"}
TINY = {
    "data": {"n_patients": 40},
    "preprocess": {"max_beats_per_record": 4},
    "cv": {"folds": 2},
    "pretrain": {"records": ["101", "106", "119", "100", "105"], "max_beats_per_class": 30,
                 "max_eval_beats": 200, "epochs": 1},
    "finetune": {"epochs": 1},
    "baselines": {"threshold_cv": 2, "rf": {"n_estimators": 20}},
    "gradcam": {"max_beats": 40},
    "stats": {"n_resamples": 200},
}


def test_plugin_info_datasets_and_config():
    from cardio_ecg_transfer import plugin, records

    info = plugin.cardio_plugin_info()
    assert info.name == "ecg_transfer" and info.modality == "ecg"
    cfg = info.default_config
    assert cfg["pretrain"]["arch"] == "resnet18" and cfg["pretrain"]["split"] == "de_chazal"
    assert cfg["profiles"]["paper"]["pretrain"]["arch"] == "resnet50"
    assert cfg["profiles"]["paper"]["pretrain"]["max_beats_per_class"] is None
    assert plugin.cardio_datasets() == {"mitdb": records.fetch_mitdb}
    # every key of the shipped config carries a comment (on its line or the line above) saying what it does;
    # the profiles at the end only repeat documented keys
    lines = (Path(plugin.__file__).parent / "config.yaml").read_text().split("profiles:")[0].splitlines()
    undocumented = [ln for prev, ln in zip([""] + lines, lines)
                    if ln.strip() and not ln.lstrip().startswith("#") and ":" in ln
                    and "#" not in ln and not prev.lstrip().startswith("#") and not ln.rstrip().endswith(":")]
    assert not undocumented, undocumented


def _cardio(tmp_path, *args):
    env = {**os.environ, "CARDIO_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "cardio.cli", *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=900)


def test_cardio_run_end_to_end(tmp_path):
    if not (pretrain.mitdb_dir({"data": {"mitdb_dir": None}}) / "101.atr").is_file():
        pytest.skip("MIT-BIH Arrhythmia Database not found under <repo>/../shared/data (set CARDIO_SHARED_DATA)")
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({**TINY, "cache_dir": str(tmp_path / "cache")}))
    out = tmp_path / "run"
    proc = _cardio(tmp_path, "run", "--plugin", "ecg_transfer", "--config", "tiny.yaml", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]

    # the synthetic cohort was written as WFDB and read back
    assert len(list((tmp_path / "cache" / "ecg_transfer").glob("synthetic-*/ecg/*.hea"))) == 40
    for name in ("config.yaml", "metrics.json", "predictions.csv", "report.md", "report.html", "run.log"):
        assert (out / name).is_file(), name

    # pretraining ran once for the run (not per fold) and left its weights and results
    ckpt = out / "checkpoints"
    assert (ckpt / "pretrained-resnet18.pt").is_file() and (ckpt / "pretrain.pt").is_file()
    assert not list(ckpt.glob("fold*-pretrain*.pt"))
    assert {p.name for p in ckpt.glob("fold*-*.pt")} >= {"fold0-transfer.pt", "fold1-scratch.pt"}
    results = json.loads((ckpt / "pretrain_results.json").read_text())
    assert results["train_records"] == ["101", "106", "119"] and results["test_records"] == ["100", "105"]
    assert results["n"] == 200 and 0.0 <= results["accuracy"] <= 1.0
    # side features fed the pretraining head; the strength was chosen on DS1 validation records
    assert results["side_features"][:2] == ["log_pre_rr", "log_post_rr"] and len(results["side_features"]) == 8
    assert results["prior_strength"] in pretrain.PRIOR_STRENGTHS and len(results["prior_strength_scores"]) == 9

    # one row per patient and model, out of fold, thresholds from the training folds
    pred = pd.read_csv(out / "predictions.csv")
    assert set(pred["model"]) == MODELS
    assert pred.groupby("model")["patient_id"].nunique().eq(40).all()
    assert len(pred) == 40 * len(MODELS) and pred["threshold"].notna().all()
    assert set(pred.loc[pred["model"] == "guideline", "y_score"]) <= {0.0, 1.0}
    assert pred["y_score"].between(0, 1).all()

    # AUC with a DeLong CI for every model
    metrics = json.loads((out / "metrics.json").read_text())
    aucs = {e["model"]: e for e in metrics["estimates"]
            if e.get("metric") == "auc" and e.get("method") == "delong" and e.get("fold") == "pooled"
            and e.get("subgroup") is None}
    assert set(aucs) == MODELS
    assert all(a["ci_low"] <= a["estimate"] <= a["ci_high"] for a in aucs.values())

    report = (out / "report.md").read_text()
    for title in ("Table 2", "Table 1", "pretraining (MIT-BIH", "Grad-CAM"):
        assert title in report, title
    assert "subset" in report  # the default-size pretraining says it used a subset
    assert "side features" in report and "chosen by macro F1 on the DS1 validation records" in report
    figures = {p.name for p in (out / "figures").glob("*.png")}
    assert {"roc_crt_response.png", "pretrain_confusion.png", "gradcam_transfer.png"} <= figures

    # no hidden generating parameter of the synthetic cohort reached the outputs
    assert not any(c.startswith("_") for c in pred.columns)
    assert "_notch" not in report


def test_featurize_drops_hidden_columns_and_makes_one_row_per_beat(cpu_context):
    from cardio.config import resolve
    from cardio_ecg_transfer import cohort_ecg, plugin

    cfg = resolve(plugin.cardio_plugin_info().default_config,
                  sets=("data.n_patients=6", "preprocess.max_beats_per_record=0"))
    ctx = cpu_context(cfg)
    cohort = cohort_ecg.preprocess(cohort_ecg.load(cfg, ctx), cfg, ctx)
    assert not [c for c in cohort.table.columns if c.startswith("_")]
    feats = cohort_ecg.featurize(cohort, cfg, ctx)
    assert feats.x.shape[1:] == (33, 33) and len(feats.x) == len(feats.table)
    # ~10 s of sinus rhythm per patient: several beats each, every beat labelled like its patient
    per_record = feats.table.groupby("record_id").size()
    assert len(per_record) == 6 and per_record.min() >= 5
    merged = feats.table.merge(cohort.table[["record_id", "responder"]], on="record_id", suffixes=("", "_c"))
    assert (merged["responder"] == merged["responder_c"]).all()
    # standardized images: zero mean and unit variance per beat
    assert np.allclose(feats.x.mean(axis=(1, 2)), 0, atol=1e-4)
    assert np.allclose(feats.x.std(axis=(1, 2)), 1, atol=1e-3)
