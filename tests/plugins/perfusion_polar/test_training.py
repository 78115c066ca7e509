"""The ResNet and Yeung et al.'s two-step training, fold by fold, with the 17-segment baselines."""
from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("cardio_perfusion_polar")

import numpy as np
import torch

from cardio import CardioError, inner_split
from cardio_perfusion_polar import cohort, synthetic, training
from cardio_perfusion_polar.model import PolarResNet
from cardio_testing.harness import plugin_config, train_settings

CFG: dict[str, Any] = {"arch": "resnet18", "imagenet": False, "freeze": [], "baseline_c": 1.0,
       "step1": {"epochs": 1, "batch_size": 8, "lr": 1e-3, "patience": 0},
       "step2": {"epochs": 1, "batch_size": 8, "lr": 1e-3, "patience": 0}}
BACKBONE = ["conv1", "bn1", "layer1", "layer2", "layer3", "layer4"]  # every ResNet parameter but the head's


def _train(feats, train: np.ndarray, cfg: dict, ctx):
    """training.train on the rows the core would give it: a quarter of the training patients validate."""
    fit, val = inner_split(feats.table, train, fraction=0.25, seed=ctx.seed, label=feats.label)
    return training.train(feats, fit, val, {"perfusion_polar": cfg, "train": train_settings(cpu_threads=1)},
                          ctx.for_fit("fold0"))


def _features(ctx, n: int):
    """Features of a synthetic cohort of n patients (maps 32 x 32), read through the plugin's cohort stage."""
    root = synthetic.cached_cohort(ctx.cache, n, 32, seed=1)
    return cohort.featurize(cohort.load(plugin_config("perfusion_polar", [f"cohort.dir={root}"]), ctx), ctx)


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
    feats = _features(ctx, 40)
    train, test = np.arange(30), np.arange(30, 40)
    model = _train(feats, train, {**CFG, "freeze": BACKBONE}, ctx)
    # Step 2 starts from step 1's backbone: with the backbone frozen, its training moves only its new head, so it must
    # still hold step 1's backbone weights (its own initialisation, drawn after step 1's, would differ).
    p1 = dict(model.step1.net.named_parameters())
    for name, p in model.step2.net.named_parameters():
        if not name.startswith("fc."):
            assert torch.equal(p, p1[name]), name
    assert model.step1.net.fc.out_features == 17 and model.step2.net.fc.out_features == 6
    ctx.engine.flush_checkpoints()  # the engine's writer thread may still be writing the last one
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
    labels = cohort.read_cohort(synthetic.cached_cohort(ctx.cache, 40, 32, seed=1)).set_index("record_id")["mfr_seg01"]
    np.testing.assert_allclose(seg["y_true"], labels.loc[seg["record_id"]].to_numpy())


def test_the_paper_profiles_fine_tune_leaves_the_earlier_layers_as_they_started(ctx, tmp_path, one_thread):
    """Issue 56 item 8: profile=paper tunes the later layers only. Through both steps of a fine-tune from a pretrained
    file, the frozen stem, layer1 and layer2 keep the file's tensors, BatchNorm statistics included (training mode
    moved those before); layer3, layer4 and the heads move."""
    import torchvision

    from cardio_testing.harness import named_by_hash

    frozen = plugin_config("perfusion_polar", ["profile=paper"])["perfusion_polar"]["freeze"]
    assert frozen == ["conv1", "bn1", "layer1", "layer2"]
    torch.manual_seed(3)
    start = torchvision.models.resnet18(weights=None).state_dict()  # stands in for the ImageNet ResNet
    torch.save(start, tmp_path / "r18.pth")
    pth = named_by_hash(tmp_path / "r18.pth")
    feats = _features(ctx, 40)
    model = _train(feats, np.arange(30), {**CFG, "freeze": frozen, "weights": str(pth)}, ctx)
    for step in (model.step1, model.step2):
        state = step.net.state_dict()
        kept = [n for n in state if n.split(".")[0] in frozen]
        assert kept and all(torch.equal(state[n], start[n]) for n in kept), \
            [n for n in kept if not torch.equal(state[n], start[n])][:3]
        later = [n for n in state if n.startswith(("layer3.", "layer4.")) and n.endswith(("weight", "running_mean"))]
        assert all(not torch.equal(state[n], start[n]) for n in later)


def test_separate_input_models_see_one_map(ctx, one_thread):
    maps = np.random.default_rng(0).random((4, 3, 8, 8)).astype(np.float32)
    rest = training.channel_input(maps, "rest")
    assert rest.shape == (4, 3, 8, 8) and np.allclose(rest[:, 1], rest[:, 0]) and np.allclose(rest[:, 0],
                                                                                              maps[:, 0] / 100)
    seg = np.arange(2 * 51).reshape(2, 51)
    np.testing.assert_array_equal(training.channel_segments(seg, "mfr"), seg[:, 34:])
    feats = _features(ctx, 24)
    model = _train(feats, np.arange(18), {**CFG, "separate_inputs": ["rest"]}, ctx)
    assert set(model.separate) == {"rest"} and model.weights.endswith("(no ImageNet weights)")
    pred = training.predict(model, feats, np.arange(18, 24), ctx).table
    assert {"resnet-rest", "logistic-rest"} <= set(pred["model"])
    assert len(pred[pred["model"] == "logistic-rest"]) == 6 * len(synthetic.RISK_TASKS)
    with pytest.raises(CardioError, match="separate_inputs"):
        _train(feats, np.arange(18), {**CFG, "separate_inputs": ["perfusion"]}, ctx)


def test_a_training_fold_with_one_class_of_a_risk_factor_is_one_line_before_any_fit(ctx, tmp_path):
    """The core checks the label; each risk factor has a logistic regression of its own, checked alike (through
    Features.check_classes) before the ResNet trains."""
    feats = _features(ctx, 24)
    feats.table.loc[:17, "diabetes"] = 0.0  # no positive case among the training rows
    with pytest.raises(CardioError, match=r"fit fold0: the training rows hold one class of 'diabetes' \(18 with a "
                                          r"value, all 0\)"):
        _train(feats, np.arange(18), CFG, ctx)
    assert not list(tmp_path.glob("checkpoints/*.pt"))  # refused before the ResNet trained


def test_backbone_weights_from_a_file(tmp_path, one_thread):
    """A torchvision state dict (here a seeded ResNet-18 standing in for ImageNet weights) seeds the backbone;
    the classifier is new; the file is checked against the hash its name carries (issue 56); a file of another
    architecture, a damaged file or a file whose name carries no hash or another hash is one line naming it."""
    import torchvision
    from safetensors.torch import save_file

    from cardio_perfusion_polar.model import weights_source
    from cardio_perfusion_polar.settings import PerfusionSettings
    from cardio_public.weights import sha256_of
    from cardio_testing.harness import named_by_hash

    torch.manual_seed(3)
    source = torchvision.models.resnet18(weights=None)
    torch.save(source.state_dict(), tmp_path / "r18.pth")
    with pytest.raises(CardioError, match=r"r18.pth: no hash to check it against .* its sha256 is [0-9a-f]{64}: if "
                                          r"this is the file you mean, name it r18-[0-9a-f]{8}.pth"):
        PolarResNet("resnet18", 17, weights_file=str(tmp_path / "r18.pth"))
    pth = named_by_hash(tmp_path / "r18.pth")
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, tmp_path / "r18.safetensors")
    for f in (pth, named_by_hash(tmp_path / "r18.safetensors")):
        m = PolarResNet("resnet18", 17, weights_file=str(f))
        assert torch.equal(m.net.conv1.weight, source.conv1.weight) and m.net.fc.out_features == 17
        assert torch.allclose(m.mean.flatten(), torch.tensor([0.485, 0.456, 0.406]))
    assert weights_source(PerfusionSettings(arch="resnet18", weights=str(pth))).endswith(
        f"from the file {pth.name}, sha256 {sha256_of(pth)}")
    with pytest.raises(CardioError, match=f"{pth.name}: does not fit a torchvision resnet50"):
        PolarResNet("resnet50", 17, weights_file=str(pth))
    wrong = tmp_path / f"r18-{'0' * 8}.pth"
    wrong.write_bytes(pth.read_bytes())
    with pytest.raises(CardioError, match=f"r18-00000000.pth: sha256 mismatch: expected 00000000..., found "
                                          f"{sha256_of(pth)}"):
        PolarResNet("resnet18", 17, weights_file=str(wrong))
    (tmp_path / "bad.pth").write_bytes(b"not weights")
    with pytest.raises(CardioError, match="bad-[0-9a-f]{8}.pth: not a readable weights file"):
        PolarResNet("resnet18", 17, weights_file=str(named_by_hash(tmp_path / "bad.pth")))
    with pytest.raises(CardioError, match="missing.pth: file not found"):
        PolarResNet("resnet18", 17, weights_file=str(tmp_path / "missing.pth"))


def test_missing_targets_are_left_out_of_every_fit(ctx, one_thread):
    """A missing risk factor or segment MFR (NaN) adds nothing to either step's loss (the weights stay finite:
    an unmasked NaN target would make them NaN), each logistic regression is the fit on the rows that have its
    task, the ridge the fit on rows with all 17 MFRs, and predictions keep the missing y_true as NaN."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    feats = _features(ctx, 40)
    t = feats.table
    rng = np.random.default_rng(0)
    t.loc[rng.random(len(t)) < 0.35, "smoking"] = np.nan
    t.loc[[0, 5], synthetic.SEGMENT_TASKS] = np.nan
    t.loc[7, "mfr_seg02"] = np.nan
    train = np.arange(30)
    model = _train(feats, train, {**CFG, "step2": {**CFG["step2"], "lr": 1e-3}}, ctx)
    for net in (model.step1, model.step2):
        assert all(torch.isfinite(p).all() for p in net.parameters())
    rows = train[t["smoking"].notna().to_numpy()[train]]
    expect = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000, solver="newton-cholesky"))
    expect.fit(feats.x["segments"][rows], t["smoking"].to_numpy()[rows])
    np.testing.assert_allclose(model.baselines["smoking"][-1].coef_, expect[-1].coef_)
    assert model.baselines["mfr_segments"][0].n_samples_seen_ == 27  # 30 training rows, 3 lack an MFR
    pred = training.predict(model, feats, np.arange(30, 40), ctx).table
    smoking = pred[(pred["task"] == "smoking") & (pred["model"] == "resnet-polar")]
    assert smoking["y_true"].isna().sum() == t["smoking"].iloc[30:].isna().sum()
    assert smoking["y_score"].notna().all()


def test_the_refit_scores_the_logistic_baselines_as_the_fold_model_does(ctx, one_thread):
    """cardio_refit (nested CV's 300 refits) fits the joint and per-input logistic regressions without the ResNets:
    on a fold's rows their scores and thresholds are the fold model's, to the last bit; a refit whose training rows
    lack a class of a risk factor is one line, which the core logs before keeping the fold-DeLong intervals."""
    feats = _features(ctx, 24)
    train, test = np.arange(18), np.arange(18, 24)
    cfg = {**CFG, "separate_inputs": ["rest"]}
    fold = training.predict(_train(feats, train, cfg, ctx), feats, test, ctx).table
    refit = training.refit(feats, train, test, {"perfusion_polar": cfg}).table
    assert set(refit["model"]) == {"logistic-17seg", "logistic-rest"}
    for (name, task), part in refit.groupby(["model", "task"]):
        same = fold[(fold["model"] == name) & (fold["task"] == task)]
        assert list(part["record_id"]) == list(same["record_id"])
        np.testing.assert_array_equal(part["y_score"].to_numpy(), same["y_score"].to_numpy())
        assert part["threshold"].iloc[0] == same["threshold"].iloc[0]
    task = synthetic.RISK_TASKS[1]
    one_class = train[feats.table[task].to_numpy()[train] == 1]
    with pytest.raises(CardioError, match=f"nested CV refit.*{task}"):
        training.refit(feats, one_class, test, {"perfusion_polar": cfg})
