"""The network: a torchvision ResNet whose three input planes are the rest, stress and MFR polar maps."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from cardio import CardioError
from cardio_perfusion_polar.settings import PerfusionSettings

# Channel scales that bring the maps (rest %, stress %, MFR) to about [0, 1] before the network.
CHANNEL_SCALE = np.array([100.0, 100.0, 4.0], dtype=np.float32)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ARCHS = ("resnet18", "resnet34", "resnet50")
IMAGENET_WEIGHTS = {"resnet18": "IMAGENET1K_V1", "resnet34": "IMAGENET1K_V1", "resnet50": "IMAGENET1K_V2"}


class PolarResNet(nn.Module):
    """A torchvision ResNet on 3-channel polar maps (rest, stress, MFR as the three input planes)."""

    mean: torch.Tensor  # buffers (register_buffer), typed for the checker
    std: torch.Tensor

    def __init__(self, arch: str, n_outputs: int, imagenet: bool = False, weights_file: str | None = None) -> None:
        super().__init__()
        from cardio_public.weights import torchvision_model

        self.frozen: tuple[str, ...] = ()  # name prefixes of the layers freeze() fixed
        if arch not in ARCHS:
            raise CardioError(f"perfusion_polar.arch must be one of {list(ARCHS)}, got {arch!r}")
        # Real ImageNet weights for users with internet (torchvision downloads them into torch's hub cache once).
        weights = IMAGENET_WEIGHTS[arch] if imagenet and not weights_file else None
        self.net, _ = torchvision_model(arch, weights, "perfusion_polar.imagenet=false to train from scratch")
        if weights_file:
            load_backbone(self.net, weights_file, arch)
        self.net.fc = nn.Linear(self.net.fc.in_features, n_outputs)
        pretrained = bool(imagenet or weights_file)
        mean, std = (IMAGENET_MEAN, IMAGENET_STD) if pretrained else ((0.5,) * 3, (0.25,) * 3)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)

    def new_head(self, n_outputs: int) -> None:
        """Replace the last layer (step 2 keeps step 1's backbone and learns a new head)."""
        self.net.fc = nn.Linear(self.net.fc.in_features, n_outputs)

    def freeze(self, prefixes: list[str]) -> None:
        """Keep the backbone layers whose names start with one of `prefixes` fixed: their parameters, and their
        BatchNorm statistics, which training mode would otherwise still move toward the new data."""
        self.frozen = tuple(prefixes)
        for name, p in self.net.named_parameters():
            p.requires_grad = not name.startswith(self.frozen)
        self.train(self.training)

    def train(self, mode: bool = True) -> PolarResNet:
        super().train(mode)
        for name, m in self.net.named_modules():
            if mode and isinstance(m, nn.modules.batchnorm._BatchNorm) and name.startswith(self.frozen):
                m.eval()
        return self


def load_backbone(net: nn.Module, path: str, arch: str) -> None:
    """A torchvision ResNet state dict from a file (.pth/.pt by torch.load without pickle, or .safetensors);
    the classifier (fc.*) is dropped, every other weight must fit `arch`. Errors name the file."""
    from cardio.engine import read_weights
    from cardio_public.weights import check_file

    p = check_file(path, "perfusion_polar.weights").path
    state = {k: v for k, v in read_weights(p, "perfusion_polar.weights").items() if not k.startswith("fc.")}
    names = set(net.state_dict())
    missing = sorted(k for k in names - set(state) if not k.startswith("fc."))
    unexpected = sorted(set(state) - names)
    if missing or unexpected:
        raise CardioError(f"perfusion_polar.weights {p}: does not fit a torchvision {arch} ({len(missing)} missing, "
                          f"{len(unexpected)} unexpected weight(s), e.g. {(missing + unexpected)[0]})")
    try:
        net.load_state_dict(state, strict=False)
    except RuntimeError:  # shapes of another architecture
        raise CardioError(f"perfusion_polar.weights {p}: weight shapes do not fit a torchvision {arch}") from None


def weights_source(s: PerfusionSettings) -> str:
    """Which starting weights the backbone had, for the report."""
    from cardio_public.weights import check_file, torchvision_weights

    if s.weights:
        checked = check_file(s.weights, "perfusion_polar.weights")
        return f"ImageNet-pretrained {s.arch} from the file {checked.describe()}"
    if s.imagenet:
        return (f"torchvision ImageNet weights {IMAGENET_WEIGHTS[s.arch]} for {s.arch} "
                f"({torchvision_weights(s.arch, IMAGENET_WEIGHTS[s.arch]).describe()})")
    return f"{s.arch} from random initialisation (no ImageNet weights)"


def scaled(maps: np.ndarray) -> np.ndarray:
    """(n, 3, N, N) maps divided by the channel scales, float32: what the network sees."""
    return (maps / CHANNEL_SCALE[None, :, None, None]).astype(np.float32)
