"""cardio.explain: Grad-CAM and Grad-CAM++ on image and video models, frozen layers included."""
import numpy as np
import pytest
import torch
import torchvision

from cardio.explain import grad_cam

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


def test_rejects_flat_input():
    net = torch.nn.Linear(4, 1)
    with pytest.raises(ValueError, match="expects"):
        grad_cam(net, net, torch.randn(2, 4))
