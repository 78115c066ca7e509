"""cardio_report.explain: Grad-CAM and Grad-CAM++ on image and video models, frozen layers included."""
import sys

import numpy as np
import pytest
import torch
import torchvision

from cardio_report.explain import grad_cam

pytest.importorskip("pytorch_grad_cam")


@pytest.mark.parametrize("plus", [False, True])
def test_image_maps_follow_the_evidence_and_work_through_frozen_layers(plus):
    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=1).eval()
    for p in [*net.conv1.parameters(), *net.bn1.parameters(), *net.layer1.parameters(), *net.layer2.parameters()]:
        p.requires_grad_(False)
    x = torch.randn(3, 3, 64, 64)
    maps = grad_cam(net, net.layer2, x, target=0, plus=plus)
    assert maps.shape == (3, 64, 64) and np.isfinite(maps).all()
    assert maps.min() >= 0 and maps.max() <= 1 + 1e-6 and maps.max() > 0


def test_video_maps_have_a_time_axis():
    torch.manual_seed(0)
    net = torchvision.models.video.r3d_18(num_classes=2).eval()
    maps = grad_cam(net, net.layer4, torch.randn(2, 3, 8, 32, 32), target=1, plus=True)
    assert maps.shape == (2, 8, 32, 32) and maps.max() > 0


def test_rejects_flat_input():  # (N, F) has no axis to map
    net = torch.nn.Linear(4, 1)
    with pytest.raises(ValueError, match="expects"):
        grad_cam(net, net, torch.randn(2, 4))


class _RegionModel(torch.nn.Module):
    """Answers from a known region only: conv features are masked to the region before pooling, so the
    map of the mask layer must light up there (a transposed, flipped or shifted map would not)."""

    def __init__(self, conv: torch.nn.Conv1d | torch.nn.Conv2d | torch.nn.Conv3d, region: tuple) -> None:
        super().__init__()
        self.conv, self.region = conv, region
        self.masked = torch.nn.Identity()  # the layer explained: features inside the region, zero outside
        self.head = torch.nn.Linear(conv.out_channels, 2)
        torch.nn.init.constant_(self.head.weight, 0.5)

    def forward(self, x):
        a = torch.relu(self.conv(x))
        mask = torch.zeros_like(a)
        mask[(slice(None), slice(None), *self.region)] = 1.0
        return self.head(self.masked(a * mask).flatten(2).mean(2))


@pytest.mark.parametrize("plus", [False, True])
@pytest.mark.parametrize("shape,conv,region", [
    ((2, 1, 96), torch.nn.Conv1d, (slice(60, 72),)),
    ((2, 1, 24, 40), torch.nn.Conv2d, (slice(4, 9), slice(25, 33))),
    ((2, 1, 10, 16, 20), torch.nn.Conv3d, (slice(6, 9), slice(2, 6), slice(12, 17))),
], ids=["1d", "2d", "3d"])
def test_maps_localize_the_region_the_answer_depends_on(shape, conv, region, plus):
    torch.manual_seed(0)
    layer = conv(1, 4, 3, padding=1)
    torch.nn.init.constant_(layer.weight, 1.0 / 9)
    torch.nn.init.constant_(layer.bias, 0.0)
    model = _RegionModel(layer, region)
    x = torch.rand(*shape) + 0.1
    maps, raw = grad_cam(model, model.masked, x, target=1, plus=plus, raw=True)
    assert maps.shape == (shape[0], *shape[2:]) and raw.shape == maps.shape  # the layer keeps the input's size
    inside = np.zeros(shape[2:], bool)
    inside[region] = True
    for m, r in zip(maps, raw):
        assert m.max() == pytest.approx(1.0, abs=1e-5) and m.min() >= 0  # high = attention, scaled to [0, 1]
        assert m[inside].min() > 0.2 and m[~inside].max() < 1e-6
        assert r[~inside].max() == 0 and r[inside].min() > 0
    # the default call still returns the normalized maps alone, the same ones
    np.testing.assert_allclose(grad_cam(model, model.masked, x, target=1, plus=plus), maps, atol=1e-6)


def test_raw_maps_keep_the_layer_resolution_and_scale():
    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=2).eval()
    x = torch.randn(2, 3, 64, 64)
    maps, raw = grad_cam(net, net.layer4, x, target=1, plus=True, raw=True)
    assert maps.shape == (2, 64, 64) and raw.shape == (2, 2, 2)
    assert (raw >= 0).all() and raw.max() > 0
    # a signal model's raw map is (N, L') at the layer's length
    sig = torch.nn.Sequential(torch.nn.Conv1d(2, 8, 5, stride=4), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool1d(1),
                              torch.nn.Flatten(), torch.nn.Linear(8, 2))
    maps, raw = grad_cam(sig, sig[1], torch.randn(3, 2, 101), raw=True)
    assert maps.shape == (3, 101) and raw.shape == (3, 25)


def test_without_the_explain_extra_grad_cam_is_one_line_naming_the_install(monkeypatch):
    """pytorch-grad-cam is the kernel's explain extra, not a hard dependency: without it, a map asked for is one
    CardioError naming the install line (None in sys.modules is how Python marks a module absent)."""
    from cardio import CardioError

    for name in [n for n in list(sys.modules) if n.startswith("pytorch_grad_cam")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pytorch_grad_cam", None)
    net = torchvision.models.resnet18(num_classes=1).eval()
    with pytest.raises(CardioError, match=r"-m pip install 'cardio-crt-report\[explain\]'"):
        grad_cam(net, net.layer2, torch.randn(1, 3, 32, 32), target=0)
