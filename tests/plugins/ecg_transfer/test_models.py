"""One-channel ResNets, freezing, and the transfer of pretrained weights into the fine-tuned model."""

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("cardio_ecg_transfer")

import torch

from cardio import CardioError, Features
from cardio_ecg_transfer import resnet
from cardio_ecg_transfer.finetune import balanced_beat_weights, build_beat_model, patient_scores
from cardio_testing.harness import train_settings


@pytest.mark.parametrize("arch, width", [("resnet18", 512), ("resnet50", 2048), ("resnet101", 2048)])
def test_resnets_take_one_channel_spectrograms(arch, width):
    model = resnet.build_resnet(arch, n_outputs=5).eval()
    assert model.net.conv1.in_channels == 1
    assert model.net.conv1.out_channels == 64 and model.net.conv1.stride == (2, 2)
    assert model.net.fc.in_features == width and model.net.fc.out_features == 5
    with torch.no_grad():
        assert model(torch.randn(3, 33, 25)).shape == (3, 5)  # (N, F, T) gains its channel axis
        assert model(torch.randn(2, 1, 17, 29)).shape == (2, 5)


def test_unknown_architecture_and_freeze_stage_are_errors():
    with pytest.raises(CardioError, match="resnet34"):
        resnet.build_resnet("resnet34")
    with pytest.raises(CardioError, match="layer9"):
        resnet.build_resnet("resnet18").freeze("layer9")


def test_freeze_keeps_frozen_stages_and_their_batchnorm_statistics(cpu_context):
    torch.manual_seed(0)
    model = resnet.build_resnet("resnet18", n_outputs=1)
    frozen = model.freeze("layer3")
    assert frozen and all(n.startswith(("net.conv1", "net.bn1", "net.layer1", "net.layer2", "net.layer3"))
                          for n in frozen)
    assert all(p.requires_grad for n, p in model.named_parameters() if n.startswith(("net.layer4", "net.fc")))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ctx = cpu_context()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 33, 25)).astype(np.float32)
    y = (rng.random(16) > 0.5).astype(np.float32)
    ctx.engine.fit(model, ctx.engine.ArrayDataset(x, y), None, ctx, name="freeze",
                   train=train_settings(epochs=1, batch_size=8, patience=0, lr=0.01))
    after = model.state_dict()
    for k, v in before.items():
        if k.startswith(("net.conv1", "net.bn1", "net.layer1", "net.layer2", "net.layer3")):
            assert torch.equal(v, after[k]), f"{k} changed although frozen"
    assert not torch.equal(before["net.layer4.0.conv1.weight"], after["net.layer4.0.conv1.weight"])
    assert not torch.equal(before["net.layer4.0.bn1.running_mean"], after["net.layer4.0.bn1.running_mean"])
    assert model.freeze(None) == [] and all(p.requires_grad for p in model.parameters())


def test_fine_tuned_model_starts_from_the_pretrained_weights_except_the_head(tmp_path, cpu_context):
    torch.manual_seed(1)
    pretrained = resnet.build_resnet("resnet18", n_outputs=5)
    with torch.no_grad():  # make the "pretrained" weights unlike any fresh initialisation
        for v in pretrained.state_dict().values():
            if v.dtype.is_floating_point:
                v.add_(0.01 * torch.rand_like(v))
    path = resnet.save_weights(pretrained, tmp_path / "pretrained-resnet18.pt", meta={"input": {"nperseg": 64}})
    torch.manual_seed(0)  # as the engine seeds a fit's network (engine.build) at the run's seed 0
    fresh = resnet.build_resnet("resnet18", n_outputs=1).state_dict()

    ctx = cpu_context()
    torch.rand(5)  # whatever ran before: the beat model is built from the run's seed
    model, frozen, meta = build_beat_model("resnet18", path, freeze="layer2", ctx=ctx)
    assert meta == {"input": {"nperseg": 64}}
    state, source = model.state_dict(), pretrained.state_dict()
    for k, v in state.items():
        if k.startswith(resnet.HEAD_PREFIX):
            assert v.shape[0] == 1 and torch.equal(v, fresh[k]), "the head must be new, not the 5-class head"
        else:
            assert torch.equal(v, source[k]), f"{k} was not transferred"
            if v.dtype.is_floating_point:
                assert not torch.equal(v, fresh[k]), f"{k} equals a fresh initialisation"
    assert any(n.startswith("net.layer2") for n in frozen) and not any(n.startswith("net.layer3") for n in frozen)

    scratch, frozen_scratch, _ = build_beat_model("resnet18", None, freeze="layer2", ctx=ctx)
    assert frozen_scratch == []
    assert all(torch.equal(v, fresh[k]) for k, v in scratch.state_dict().items())


def test_pretrained_weights_of_another_architecture_or_a_bad_file_are_refused(tmp_path):
    path = resnet.save_weights(resnet.build_resnet("resnet18", 5), tmp_path / "w.pt")
    with pytest.raises(CardioError, match="resnet18 weights but the model is resnet50"):
        resnet.load_pretrained(resnet.build_resnet("resnet50", 1), path)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CardioError, match="bad.pt"):
        resnet.load_pretrained(resnet.build_resnet("resnet18", 1), bad)
    with pytest.raises(CardioError, match="does not exist"):
        resnet.read_weights(tmp_path / "missing.pt")


def test_patient_score_is_the_mean_of_its_beats_probabilities(cpu_context):
    pid = np.array(["b", "b", "a", "c", "c", "c"])
    x = np.random.default_rng(0).normal(size=(6, 33, 33)).astype(np.float32)
    features = Features(pd.DataFrame({"record_id": pid, "patient_id": pid, "responder": [1, 1, 0, 1, 1, 1]}), x=x,
                        label="responder")
    model = resnet.build_resnet("resnet18", n_outputs=1)
    ctx = cpu_context()
    rows = np.array([0, 1, 2, 3, 4, 5])
    scores = patient_scores(model, features, rows, ctx)
    logits = ctx.engine.predict(model, ctx.engine.ArrayDataset(x), ctx)[:, 0].astype(np.float64)
    probs = 1 / (1 + np.exp(-logits))
    assert list(scores.index) == ["b", "a", "c"]  # in order of first appearance
    np.testing.assert_allclose(scores.to_numpy(), [probs[:2].mean(), probs[2], probs[3:].mean()], rtol=1e-12)


def test_sampling_weights_balance_patients_and_classes():
    pid = np.array(["a", "a", "b", "c", "c", "c"])
    w = balanced_beat_weights(pid, np.array([1, 1, 1, 0, 0, 0]))
    assert w.sum() == pytest.approx(1.0)
    # class 1 (patients a, b) and class 0 (patient c) each get half; a and b a quarter each
    assert w[:2].sum() == pytest.approx(0.25) and w[2] == pytest.approx(0.25) and w[3:].sum() == pytest.approx(0.5)


def test_grad_cam_reaches_a_frozen_stage():
    from cardio_ecg_transfer.attribution import class_maps

    model = resnet.build_resnet("resnet18", n_outputs=1)
    model.freeze("layer3")
    x = np.random.default_rng(0).normal(size=(3, 33, 33)).astype(np.float32)
    maps = class_maps(model, "layer2", x, plus=False)
    assert maps.shape == (3, 33, 33) and np.isfinite(maps).all()
    assert maps.min() >= 0 and maps.max() <= 1 and maps.max() > 0
    assert not any(p.requires_grad for n, p in model.named_parameters() if n.startswith("net.layer2"))
