"""The DenseNet-121: weights from a file when given (the report names the source), else from scratch."""
from __future__ import annotations

import pytest

pytest.importorskip("cardio_mmode_septal_flash")

import torch
import torchvision

from cardio import CardioError
from cardio_mmode_septal_flash.model import SeptalFlashNet


def test_weights_from_a_file_or_from_scratch(tmp_path, one_thread):
    from cardio_public.weights import sha256_of
    from cardio_testing.harness import named_by_hash

    torch.manual_seed(1)
    backbone = torchvision.models.densenet121(num_classes=1000)
    path = tmp_path / "densenet121_backbone.pt"
    torch.save(backbone.state_dict(), path)
    with pytest.raises(CardioError, match="densenet121_backbone.pt: no hash to check it against"):
        SeptalFlashNet(str(path))  # issue 56: a file is checked against its name's hash or refused
    path = named_by_hash(path)
    net = SeptalFlashNet(str(path))
    assert net.source == f"file {path.name}, sha256 {sha256_of(path)}"
    assert torch.equal(net.net.features.conv0.weight, backbone.features.conv0.weight)
    assert net.net.classifier.out_features == 2  # the head is new: two units, softmax in the loss
    assert net(torch.rand(2, 1, 64, 64)).shape == (2, 2)
    assert SeptalFlashNet().source == "none (trained from scratch)"
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CardioError, match="other-[0-9a-f]{8}.pt.*not DenseNet-121"):
        SeptalFlashNet(str(named_by_hash(tmp_path / "other.pt")))
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CardioError, match="broken-[0-9a-f]{8}.pt"):
        SeptalFlashNet(str(named_by_hash(tmp_path / "broken.pt")))
    with pytest.raises(CardioError, match="missing.pt.*not found"):
        SeptalFlashNet(str(tmp_path / "missing.pt"))


def test_validation_records_are_augmented_as_the_paper_s(tmp_path):
    """The paper's 253 validation samples are 23 patients x 11 lines; val_augment=false keeps the unshifted line."""
    import numpy as np

    from cardio_mmode_septal_flash.store import ArrayWriter, StoredArray
    from cardio_mmode_septal_flash.training import _validation_set

    x = np.arange(30 * 11 * 4, dtype=np.uint8).reshape(30, 11, 2, 2)  # 30 records, 11 lines, 2 x 2 inputs
    writer = ArrayWriter(tmp_path / "x.npy", x.shape)
    for row in x:
        writer.append(row)
    writer.close()
    stored = StoredArray(tmp_path / "x.npy", x.shape)
    y = np.arange(30) % 2
    rows = np.arange(23)
    mean = np.zeros((2, 2), np.float32)
    augmented = _validation_set(stored, y, rows, True, mean)
    assert augmented.y is not None and len(augmented) == 253
    assert np.array_equal(augmented.y, np.repeat(y[rows], 11))
    assert np.array_equal(augmented.images(np.arange(11, 22)), x[1])  # record 1's eleven lines, in order
    centre = _validation_set(stored, y, rows, False, mean)
    assert len(centre) == 23 and np.array_equal(centre.images(np.arange(23)), x[rows, 5])
