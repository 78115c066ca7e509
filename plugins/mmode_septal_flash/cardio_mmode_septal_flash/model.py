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
        import torchvision

        self.net = torchvision.models.densenet121(weights=None)
        self.source = "none (trained from scratch)"
        if weights == "imagenet":  # for users with internet: torchvision downloads and caches them
            try:
                self.net = torchvision.models.densenet121(weights="IMAGENET1K_V1")
            except Exception as e:  # no network, or a corrupt download
                raise CardioError(f"cannot load ImageNet weights for DenseNet-121: {e}; set "
                                  "septal_flash.model.weights to a file or null") from None
            self.source = "ImageNet (torchvision IMAGENET1K_V1)"
        elif weights:
            self._load_file(Path(weights).expanduser())
        self.net.classifier = nn.Linear(self.net.classifier.in_features, 2)

    def _load_file(self, path: Path) -> None:
        """A DenseNet-121 backbone state dict (.pt/.pth, or .safetensors); the classifier is replaced anyway."""
        if not path.is_file():
            raise CardioError(f"{path}: DenseNet-121 weights file not found (septal_flash.model.weights)")
        try:
            if path.suffix == ".safetensors":
                from safetensors.torch import load_file

                state = load_file(str(path))
            else:
                state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # pickled objects, damaged or foreign files
            raise CardioError(f"{path}: not a readable weights file ({' '.join(str(e).split())[:200]})") from None
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        if not isinstance(state, dict):
            raise CardioError(f"{path}: expected a state dict of DenseNet-121 tensors")
        state = {k.removeprefix("module.").removeprefix("net."): v for k, v in state.items()
                 if not k.removeprefix("module.").removeprefix("net.").startswith("classifier.")}
        missing, unexpected = self.net.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("classifier.")]
        if missing or unexpected:
            raise CardioError(f"{path}: not DenseNet-121 weights ({len(missing)} missing, {len(unexpected)} "
                              f"unexpected keys, e.g. {(missing or unexpected)[0]!r})")
        self.source = f"file {path.name}"

    @property
    def last_block(self) -> nn.Module:
        """The last dense block: its output (1024 x 8 x 8 for a 256 x 256 input) is what Grad-CAM++ explains."""
        return self.net.features.denseblock4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.expand(-1, 3, -1, -1))
