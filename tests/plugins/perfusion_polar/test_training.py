"""The ResNet and Yeung et al.'s two-step training, fold by fold, with the 17-segment baselines."""
from __future__ import annotations

import pytest

pytest.importorskip("cardio_perfusion_polar")

import numpy as np
import torch

from cardio import CardioError
from cardio_perfusion_polar import cohort, synthetic, training
from cardio_perfusion_polar.model import PolarResNet

CFG = {"arch": "resnet18", "imagenet": False, "freeze": [], "val_fraction": 0.25, "baseline_c": 1.0,
       "cpu_threads": 1,
       "step1": {"epochs": 1, "batch_size": 8, "lr": 1e-3, "patience": 0},
       "step2": {"epochs": 1, "batch_size": 8, "lr": 0.0, "weight_decay": 0.0, "patience": 0}}


def test_resnet_outputs_and_architectures(one_thread):
    x = torch.rand(2, 3, 32, 32)
    for arch in ("resnet18", "resnet50"):
        m = PolarResNet(arch, synthetic.N_SEGMENTS).eval()
        assert m(x).shape == (2, 17)
        m.new_head(len(synthetic.RISK_TASKS))
        assert m(x).shape == (2, 6)
    m.freeze(["conv1", "layer1"])
    frozen = {n for n, p in m.net.named_parameters() if not p.requires_grad}
    assert "conv1.weight" in frozen and "layer2.0.conv1.weight" not in frozen
    with pytest.raises(CardioError, match="arch"):
        PolarResNet("vgg11", 3)


def test_two_step_training_and_predictions(ctx, tmp_path, one_thread):
    root = synthetic.cached_cohort(ctx.cache, 40, 32, seed=1)
    feats = cohort.featurize(cohort.load({"dir": str(root)}, ctx), ctx)
    train, test = np.arange(30), np.arange(30, 40)
    ctx.fold = "fold0"
    model = training.train(feats, train, CFG, ctx)
    # Step 2 starts from step 1's backbone: with a zero learning rate it must still hold step 1's weights.
    p1 = dict(model.step1.net.named_parameters())
    for name, p in model.step2.net.named_parameters():
        if not name.startswith("fc."):
            assert torch.equal(p, p1[name]), name
    assert model.step1.net.fc.out_features == 17 and model.step2.net.fc.out_features == 6
    assert (tmp_path / "checkpoints" / "fold0-perfusion-step1-mfr.pt").exists()
    assert (tmp_path / "checkpoints" / "fold0-perfusion-step2-risk.pt").exists()
    assert set(model.train_patients) == set(feats.table["patient_id"].iloc[train])
    assert set(model.thresholds) == {f"{m}/{t}" for m in ("resnet", "logistic") for t in synthetic.RISK_TASKS}

    pred = training.predict(model, feats, test, ctx).table
    reg, binary = pred[pred["kind"] == "regression"], pred[pred["kind"] == "binary"]
    assert set(reg["task"]) == set(synthetic.SEGMENT_TASKS) and set(binary["task"]) == set(synthetic.RISK_TASKS)
    assert set(pred["model"]) == {"resnet-polar", "ridge-17seg", "logistic-17seg"}
    assert len(reg) == 10 * 17 * 2 and len(binary) == 10 * 6 * 2
    assert binary["y_score"].between(0, 1).all() and binary["threshold"].notna().all()
    assert set(pred["patient_id"]) == set(feats.table["patient_id"].iloc[test])
    # the regression targets are the cohort's segment MFRs (labels.csv), not the map's segment means
    seg = reg[(reg["model"] == "ridge-17seg") & (reg["task"] == "mfr_seg01")].sort_values("record_id")
    labels = cohort.read_cohort(root).set_index("record_id")["mfr_seg01"]
    np.testing.assert_allclose(seg["y_true"], labels.loc[seg["record_id"]].to_numpy())
