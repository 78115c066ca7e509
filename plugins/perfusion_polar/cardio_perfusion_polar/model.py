"""The network: a torchvision ResNet whose three input planes are the rest, stress and MFR polar maps."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from cardio import CardioError

# Channel scales that bring the maps (rest %, stress %, MFR) to about [0, 1] before the network.
CHANNEL_SCALE = np.array([100.0, 100.0, 4.0], dtype=np.float32)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ARCHS = ("resnet18", "resnet34", "resnet50")
IMAGENET_WEIGHTS = {"resnet18": "IMAGENET1K_V1", "resnet34": "IMAGENET1K_V1", "resnet50": "IMAGENET1K_V2"}


class PolarResNet(nn.Module):
    """A torchvision ResNet on 3-channel polar maps (rest, stress, MFR as the three input planes)."""

    def __init__(self, arch: str, n_outputs: int, imagenet: bool = False) -> None:
        super().__init__()
        import torchvision

        if arch not in ARCHS:
            raise CardioError(f"perfusion.arch must be one of {list(ARCHS)}, got {arch!r}")
        # Real ImageNet weights for users with internet (torchvision downloads and caches them).
        weights = IMAGENET_WEIGHTS[arch] if imagenet else None
        try:
            self.net = getattr(torchvision.models, arch)(weights=weights)
        except Exception as e:  # no network, or a corrupt download
            raise CardioError(f"cannot load ImageNet weights {weights} for {arch}: {e}; "
                              "set perfusion.imagenet=false to train from scratch") from None
        self.net.fc = nn.Linear(self.net.fc.in_features, n_outputs)
        mean, std = (IMAGENET_MEAN, IMAGENET_STD) if imagenet else ((0.5,) * 3, (0.25,) * 3)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)

    def new_head(self, n_outputs: int) -> None:
        """Replace the last layer (step 2 keeps step 1's backbone and learns a new head)."""
        self.net.fc = nn.Linear(self.net.fc.in_features, n_outputs)

    def freeze(self, prefixes: list[str]) -> None:
        """Keep the backbone parameters whose names start with one of `prefixes` fixed."""
        for name, p in self.net.named_parameters():
            p.requires_grad = not any(name.startswith(pref) for pref in prefixes)


def scaled(maps: np.ndarray) -> np.ndarray:
    """(n, 3, N, N) maps divided by the channel scales, float32: what the network sees."""
    return (maps / CHANNEL_SCALE[None, :, None, None]).astype(np.float32)
