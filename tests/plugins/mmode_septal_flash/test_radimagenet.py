"""Issue 56: RadImageNet's DenseNet-121, as its authors publish it (Keras HDF5 weights), read as the paper's start.
The file is generated here in Keras 2's HDF5 layout (h5py, no network) from a torchvision DenseNet-121, with
keras.applications' layer names, so the conversion must give that network back exactly."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cardio_mmode_septal_flash")
pytest.importorskip("h5py", reason="the radimagenet extra (h5py) is not installed")

import h5py
import torch
import torchvision

from cardio import CardioError
from cardio_mmode_septal_flash.model import SeptalFlashNet
from cardio_mmode_septal_flash.radimagenet import densenet121_from_keras, torch_module
from cardio_testing.harness import named_by_hash

_BN = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}


def _keras_layers() -> list[str]:
    """keras.applications.DenseNet121's layers that hold weights, in its order."""
    layers = ["conv1/conv", "conv1/bn"]
    for stage, blocks in zip((2, 3, 4, 5), (6, 12, 24, 16)):
        for i in range(1, blocks + 1):
            layers += [f"conv{stage}_block{i}_{p}" for p in ("0_bn", "1_conv", "1_bn", "2_conv")]
        if stage < 5:
            layers += [f"pool{stage}_bn", f"pool{stage}_conv"]
    return [*layers, "bn"]


def write_keras_h5(net: torch.nn.Module, path, whole_model: bool = False) -> None:
    """`net`'s features as Keras 2 writes a DenseNet-121's weights to HDF5 (save_weights; `whole_model`: save's
    model_weights/ group), with weightless layers (input, relu, pooling) among them as Keras lists them."""
    state = net.state_dict()
    with h5py.File(path, "w") as f:
        root = f.create_group("model_weights") if whole_model else f
        names = ["input_1", "zero_padding2d"]
        for layer in _keras_layers():
            names += [layer, f"{layer}_relu"] if layer.endswith("bn") else [layer]
            module = torch_module(layer)
            g = root.create_group(layer)
            if layer.endswith("conv"):
                weights = {f"{layer}/kernel:0": state[f"{module}.weight"].permute(2, 3, 1, 0).numpy()}
            else:
                weights = {f"{layer}/{_BN[k]}:0": state[f"{module}.{k}"].numpy() for k in _BN}
            for name, value in weights.items():
                g.create_dataset(name, data=value)
            g.attrs["weight_names"] = np.array([n.encode() for n in weights])
        for weightless in ("input_1", "zero_padding2d", *[n for n in names if n.endswith("_relu")]):
            root.create_group(weightless).attrs["weight_names"] = np.array([], dtype="S1")
        root.attrs["layer_names"] = np.array([n.encode() for n in names])
        root.attrs["backend"], root.attrs["keras_version"] = b"tensorflow", b"2.6.0"


@pytest.mark.parametrize("whole_model", [False, True])
def test_a_keras_densenet121_h5_is_read_as_the_same_network(tmp_path, whole_model, one_thread):
    torch.manual_seed(2)
    source = torchvision.models.densenet121(weights=None)
    for m in source.modules():  # batch-norm statistics that are not 0/1, so a swapped pair would show
        if isinstance(m, torch.nn.BatchNorm2d):
            assert m.running_mean is not None and m.running_var is not None  # tracked: densenet121's default
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    path = tmp_path / "RadImageNet-DenseNet121_notop.h5"
    write_keras_h5(source, path, whole_model)
    state = densenet121_from_keras(path)
    expected = {k: v for k, v in source.state_dict().items() if k.startswith("features.")}
    assert set(state) == set(expected)
    assert all(torch.equal(state[k].float(), expected[k].float()) for k in expected if "num_batches" not in k)
    with pytest.raises(CardioError, match="RadImageNet-DenseNet121_notop.h5: no hash to check it against"):
        SeptalFlashNet(str(path))
    net = SeptalFlashNet(str(named_by_hash(path)))
    source.eval()
    net.eval()
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        assert torch.allclose(net.net.features(x.expand(-1, 3, -1, -1)), source.features(x.expand(-1, 3, -1, -1)),
                              atol=1e-5)
    assert net.source.startswith("file RadImageNet-DenseNet121_notop-") and "sha256" in net.source


def test_an_h5_that_is_not_a_keras_densenet121_is_one_line(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([b"dense"])
        f.create_group("dense").attrs["weight_names"] = np.array([b"dense/kernel:0"])
        f["dense"].create_dataset("dense/kernel:0", data=np.zeros((2, 2), np.float32))
    with pytest.raises(CardioError, match="other.h5: not a Keras DenseNet-121"):
        densenet121_from_keras(path)
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(CardioError, match="text.h5: not Keras HDF5 weights"):
        densenet121_from_keras(tmp_path / "text.h5")
