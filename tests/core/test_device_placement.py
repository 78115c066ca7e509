"""Device placement without a GPU: a model whose weights sit on "another device" than tensors built by default.

`OtherDevice` makes that device out of the CPU: inside it, `.to("meta")` (and a factory given device="meta")
gives a tensor that reports the meta device but holds CPU data, and every op on it computes on the CPU. An op
mixing such a tensor with an ordinary CPU tensor (other than a 0-d scalar, which CUDA accepts too) raises
torch's own "Expected all tensors to be on the same device" error, as a CUDA run does; `.numpy()` on it is
refused, as on CUDA. So a stage that builds an input on the CPU and never moves it to the model's device fails
here as it failed on the H100 (issue 40: echo's explain), while the outputs of a correct stage are the CPU's.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves, tree_map

from cardio import engine
from cardio_testing.harness import context, train_settings

ELSEWHERE = torch.device("meta")


class Elsewhere(torch.Tensor):
    """CPU data reporting the meta device: a tensor on "another device"."""

    @staticmethod
    def __new__(cls, data: torch.Tensor):
        return torch.Tensor._make_wrapper_subclass(cls, data.shape, strides=data.stride(), dtype=data.dtype,
                                                   device=ELSEWHERE, requires_grad=data.requires_grad,
                                                   storage_offset=data.storage_offset())

    def __init__(self, data: torch.Tensor):
        self.on_cpu = data  # the data itself (Tensor.inner is a method of torch's)

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):  # type: ignore[override]  # torch's own protocol
        return NotImplemented  # OtherDevice handles every op


class OtherDevice(TorchDispatchMode):
    """The dispatch mode that runs Elsewhere tensors on the CPU and refuses mixing them with CPU tensors."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        leaves = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        there = any(isinstance(t, Elsewhere) for t in leaves)
        here = any(not isinstance(t, Elsewhere) and t.dim() > 0 and t.device.type == "cpu" for t in leaves)
        target = torch.device(kwargs["device"]) if kwargs.get("device") is not None else None
        if there and here and func is not torch.ops.aten.copy_.default:  # copy_ between devices is allowed
            raise RuntimeError("Expected all tensors to be on the same device, but found at least two devices, "
                               f"meta and cpu! ({func})")
        if target is not None and target.type == "meta":
            kwargs["device"] = torch.device("cpu")
        out = func(*tree_map(_inner, args), **tree_map(_inner, kwargs))
        moved_back = target is not None and target.type == "cpu"
        if (there and not moved_back) or (target is not None and target.type == "meta"):
            return tree_map(lambda t: Elsewhere(t) if type(t) is torch.Tensor else t, out)
        return out


def _inner(t):
    return t.on_cpu if isinstance(t, Elsewhere) else t


def test_the_other_device_catches_a_cpu_input_and_computes_as_the_cpu():
    """The control: a CPU input to a model moved elsewhere fails; moved along, the outputs are the CPU's."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(18, 2))
    x = torch.randn(4, 1, 8)
    expected = model(x)
    with OtherDevice():
        model.to(ELSEWHERE)
        with pytest.raises(RuntimeError, match="same device"):
            model(x)
        out = model(x.to(ELSEWHERE))
        assert out.device == ELSEWHERE
        assert torch.equal(out.cpu(), expected)


def test_echo_explain_builds_its_input_on_the_weights_device():
    """Issue 40's crash: echo's Grad-CAM input was built on the CPU whatever the model's device."""
    pytest.importorskip("cardio_echo_cmr")
    pytest.importorskip("pytorch_grad_cam")
    from cardio_echo_cmr.model import EchoVideoNet
    from cardio_echo_cmr.report import gradcam_maps

    torch.manual_seed(0)
    net = _tiny_echo_net(EchoVideoNet).eval()
    clip = np.random.default_rng(0).integers(0, 255, (4, 16, 16), dtype=np.uint8)
    expected, layer = gradcam_maps(net, clip, 0)
    with OtherDevice():
        net.to(ELSEWHERE)
        cam, layer_there = gradcam_maps(net, clip, 0)
    assert layer_there == layer and cam.shape == (4, 16, 16)
    np.testing.assert_allclose(cam, expected, atol=1e-5)


class _TinyBody(nn.Module):
    """torchvision VideoResNet's wiring (stem, layer1-4, pooling, fc) with one small Conv3d a stage: fast to build."""

    layer1: nn.Sequential
    layer2: nn.Sequential
    layer3: nn.Sequential
    layer4: nn.Sequential

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv3d(3, 4, 3, padding=1)
        for name in ("layer1", "layer2", "layer3", "layer4"):
            setattr(self, name, nn.Sequential(nn.Conv3d(4, 4, 3, padding=1), nn.BatchNorm3d(4), nn.ReLU()))
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.fc(x.mean(dim=(2, 3, 4)))


def _tiny_echo_net(cls) -> nn.Module:
    """An EchoVideoNet (its forward and normalising buffers) around the tiny body, without building r2plus1d."""
    net = cls.__new__(cls)
    nn.Module.__init__(net)
    net.net = _TinyBody()
    net.register_buffer("mean", torch.tensor(100.0))
    net.register_buffer("sd", torch.tensor(50.0))
    return net


def test_engine_fit_and_predict_on_another_device(tmp_path):
    """The loop (cohort on the device, batched augmentation), its masked loss, the evaluation and predict build no
    tensor off the model's device; the weights and outputs are the CPU run's."""
    x = np.random.default_rng(0).normal(size=(24, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    y[3] = np.nan  # a missing target: the masked loss's branch
    train = train_settings(epochs=2, batch_size=8, patience=0)

    def jitter(batch):  # a batched augmentation: its random numbers must be drawn on the batch's device
        return batch * (0.9 + 0.2 * torch.rand(len(batch), 1, device=batch.device))

    def run(device: str, out):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 1))
        ctx = context(out, device=device)
        fitted = engine.fit(model, engine.ArrayDataset(x, y, batch_transform=jitter), engine.ArrayDataset(x[:8], y[:8]),
                            ctx, name="m", train=train)
        return fitted, engine.predict(fitted.model, engine.ArrayDataset(x), ctx)

    expected, p_cpu = run("cpu", tmp_path / "cpu")
    with OtherDevice():
        fitted, p_there = run("meta", tmp_path / "there")
        assert next(fitted.model.parameters()).device == ELSEWHERE
    # the same numbers up to float32 rounding: on CPUs whose kernels round differently by call (AMX here) they
    # differ by ~1e-8; a tensor built on the wrong device fails outright or changes them at the first digits
    np.testing.assert_allclose([r["train_loss"] for r in fitted.history], [r["train_loss"] for r in expected.history],
                               rtol=1e-6)
    np.testing.assert_allclose(p_there, p_cpu, rtol=1e-6, atol=1e-7)


class _TinyImageNet(nn.Module):
    """A small CNN on (N, 1, H, W) with a named last conv block: what ecg's and mmode's Grad-CAM explain."""

    def __init__(self, outputs: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU())
        self.last_block = self.conv
        self.fc = nn.Linear(3, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).mean(dim=(2, 3)))


def test_ecg_explain_runs_where_the_model_sits():
    """ecg's Grad-CAM of a beat model whose weights sit elsewhere: the same maps as on the CPU."""
    pytest.importorskip("cardio_ecg_transfer")
    pytest.importorskip("pytorch_grad_cam")
    from cardio_ecg_transfer.attribution import class_maps

    class Beat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = _TinyImageNet(1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

    torch.manual_seed(0)
    model = Beat().eval()
    x = np.random.default_rng(0).normal(size=(3, 6, 8)).astype(np.float32)
    expected = class_maps(model, "conv", x, plus=False)
    with OtherDevice():
        model.to(ELSEWHERE)
        maps = class_maps(model, "conv", x, plus=False)
    np.testing.assert_allclose(maps, expected, atol=1e-6)


def test_mmode_explain_runs_where_the_model_sits():
    """mmode's Grad-CAM++ of a network whose weights sit elsewhere: the same maps as on the CPU."""
    pytest.importorskip("cardio_mmode_septal_flash")
    pytest.importorskip("pytorch_grad_cam")
    from types import SimpleNamespace

    from cardio_mmode_septal_flash.attention import maps
    from cardio_mmode_septal_flash.training import Inputs

    torch.manual_seed(0)
    net = _TinyImageNet(2).eval()
    model = SimpleNamespace(nets={"full": net}, inputs={"full": Inputs(np.full((8, 8), 0.5, np.float32))})
    images = np.random.default_rng(0).integers(0, 255, (2, 8, 8), dtype=np.uint8)
    expected = maps(model, "full", images)
    with OtherDevice():
        net.to(ELSEWHERE)
        got = maps(model, "full", images)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_echo_clips_cropped_on_the_device_are_the_per_item_crops(tmp_path):
    """echo's training clips served from the device (ClipDataset.take: one batched gather) equal __getitem__'s
    one-by-one crops, random starts included, and are built where the cohort was moved."""
    pytest.importorskip("cardio_echo_cmr")
    from cardio_echo_cmr.training import ClipDataset

    rng = np.random.default_rng(0)
    paths = []
    for i, n in enumerate((9, 14, 5, 20)):  # one video shorter than a clip: its last frame repeats
        paths.append(str(tmp_path / f"v{i}.npy"))
        np.save(paths[-1], rng.integers(0, 255, (n, 4, 4), dtype=np.uint8))
    y = rng.normal(size=(4, 2)).astype(np.float32)
    one, batched = (ClipDataset(paths, y, frames=3, period=2, train=True, seed=5) for _ in range(2))
    order = [[2, 0], [3, 1, 0]]
    expected = [torch.stack([one[i][0] for i in b]) for b in order]
    batched.on_device(torch.device("cpu"))
    for b, e in zip(order, expected):
        x, target = batched.take(torch.as_tensor(b))
        assert torch.equal(x, e) and torch.equal(target, torch.as_tensor(y[b]))
    with OtherDevice():
        batched.on_device(ELSEWHERE)
        x, target = batched.take(torch.as_tensor([1, 3]))
        assert x.device == ELSEWHERE and target.device == ELSEWHERE
