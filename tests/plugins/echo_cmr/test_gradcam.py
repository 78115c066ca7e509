"""Grad-CAM of the echo networks: a stage with room for a map, and a map that is not blank."""
from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("cardio_echo_cmr")

from cardio_echo_cmr.model import EchoVideoNet
from cardio_echo_cmr.report import MIN_CAM_SIDE, cam_layer, gradcam_maps


@pytest.mark.parametrize("size, frames, arch, expected", [(16, 8, "r2plus1d_10", "layer2"),
                                                           (112, 32, "r2plus1d_18", "layer4")])
def test_gradcam_stage_keeps_a_map(size, frames, arch, expected):
    """At the CPU default (16 x 16 px) layer4 is 1 x 1 x 1 and its map a constant (the overlays were blank);
    the deepest stage with MIN_CAM_SIDE positions per axis is used instead, and layer4 at the paper's 112."""
    torch.manual_seed(0)
    net = EchoVideoNet(100.0, 50.0, None, arch).eval()
    x = torch.rand(1, 3, frames, size, size) * 255
    name, _ = cam_layer(net, x)
    assert name == expected
    if size == 16:
        clip = (np.random.default_rng(0).random((frames, size, size)) * 255).astype(np.uint8)
        cam, used = gradcam_maps(net, clip, head=1)
        assert used == "layer2" and cam.shape == (frames, size, size)
        assert cam.max() == pytest.approx(1.0) and np.unique(cam.round(3)).size > MIN_CAM_SIDE
