"""The DenseNet-121: weights from a file when given (the report names the source), else from scratch."""
from __future__ import annotations

import pytest

pytest.importorskip("cardio_mmode_septal_flash")

import torch
import torchvision

from cardio import CardioError
from cardio_mmode_septal_flash.model import SeptalFlashNet


def test_weights_from_a_file_or_from_scratch(tmp_path, one_thread):
    torch.manual_seed(1)
    backbone = torchvision.models.densenet121(num_classes=1000)
    path = tmp_path / "densenet121_backbone.pt"
    torch.save(backbone.state_dict(), path)
    net = SeptalFlashNet(str(path))
    assert net.source == "file densenet121_backbone.pt"
    assert torch.equal(net.net.features.conv0.weight, backbone.features.conv0.weight)
    assert net.net.classifier.out_features == 2  # the head is new: two units, softmax in the loss
    assert net(torch.rand(2, 1, 64, 64)).shape == (2, 2)
    assert SeptalFlashNet().source == "none (trained from scratch)"
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CardioError, match="other.pt.*not DenseNet-121"):
        SeptalFlashNet(str(tmp_path / "other.pt"))
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CardioError, match="broken.pt"):
        SeptalFlashNet(str(tmp_path / "broken.pt"))
    with pytest.raises(CardioError, match="missing.pt.*not found"):
        SeptalFlashNet(str(tmp_path / "missing.pt"))
