"""The network: torchvision's DenseNet-121 with a 2-unit head (softmax over non-SF, SF), every layer trained."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from cardio import CardioError


class SeptalFlashNet(nn.Module):
    """DenseNet-121 on one grey M-mode channel, repeated to the three planes the backbone (and its weights) expect."""

    def __init__(self, weights: str | None = None) -> None:
        super().__init__()
        from cardio_public.weights import torchvision_model

        key = "mmode_septal_flash.model.weights to a file (e.g. RadImageNet's) or null"
        self.net, checked = torchvision_model("densenet121", "IMAGENET1K_V1" if weights == "imagenet" else None, key)
        self.source = "none (trained from scratch)"
        if checked:  # for users with internet: torchvision downloads them into torch's hub cache once
            self.source = f"ImageNet (torchvision IMAGENET1K_V1: {checked.describe()})"
        elif weights:
            self._load_file(Path(weights).expanduser())
        self.net.classifier = nn.Linear(self.net.classifier.in_features, 2)
        # channels-last on every device: oneDNN's NHWC convolutions take 10-18% less CPU time per DenseNet-121
        # training step on the CPU (the engine's train.channels_last acts on CUDA only)
        self.net.to(memory_format=torch.channels_last)

    def _load_file(self, path: Path) -> None:
        """A DenseNet-121 backbone state dict (.pt/.pth, or .safetensors), or RadImageNet's Keras DenseNet-121 (.h5,
        radimagenet.py); the classifier is replaced anyway."""
        from cardio.engine import read_weights
        from cardio_public.weights import check_file

        checked = check_file(path, "mmode_septal_flash.model.weights")
        if path.suffix == ".h5":  # RadImageNet's own Keras file, read by h5py
            from cardio_mmode_septal_flash.radimagenet import densenet121_from_keras

            raw = densenet121_from_keras(path)
        else:
            raw = read_weights(path, "mmode_septal_flash.model.weights")
        state = {k.removeprefix("net."): v for k, v in raw.items()
                 if not k.removeprefix("net.").startswith("classifier.")}
        missing, unexpected = self.net.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("classifier.")]
        if missing or unexpected:
            raise CardioError(f"{path}: not DenseNet-121 weights ({len(missing)} missing, {len(unexpected)} "
                              f"unexpected keys, e.g. {(missing or unexpected)[0]!r})")
        self.source = f"file {checked.describe()}"

    @property
    def last_block(self) -> nn.Module:
        """The last dense block: its output (1024 x 8 x 8 for a 256 x 256 input) is what Grad-CAM++ explains."""
        return self.net.features.denseblock4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.expand(-1, 3, -1, -1).contiguous(memory_format=torch.channels_last))
