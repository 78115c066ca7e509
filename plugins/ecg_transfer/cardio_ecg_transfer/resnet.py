"""torchvision ResNets adapted to one-channel beat spectrograms, with freezing and weight transfer."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from torch import nn

from cardio import CardioError, atomic_path

ARCHITECTURES = {
    "resnet18": torchvision.models.resnet18,
    "resnet50": torchvision.models.resnet50,
    "resnet101": torchvision.models.resnet101,
}
#: Freezing goes stage by stage: "layer2" freezes the stem, layer1 and layer2.
FREEZE_STAGES: tuple[str, ...] = ("stem", "layer1", "layer2", "layer3", "layer4")
HEAD_PREFIX = "net.fc."
#: Buffers of the side-feature input (pretraining only); never transferred.
SIDE_PREFIX = "side_"


class SpectrogramResNet(nn.Module):
    """A torchvision ResNet whose first convolution takes one channel (a spectrogram).

    Everything after the first convolution is torchvision's network unchanged; only the
    final fully connected layer (the head) is sized for `n_outputs`. Input (N, F, T) or
    (N, 1, F, T). With `n_side` > 0 the model also takes a vector of side features per beat
    (the RR and record-relative shape features of `beat_context.py`), standardized with the training
    set's mean and SD and joined to the pooled image features before the head; the backbone is
    the same, so its weights transfer to an image-only model. Frozen stages keep their batch-norm
    statistics: `train()` leaves their batch-norm layers in eval mode, so a frozen stage computes
    exactly the pretrained function.
    """

    side_mean: torch.Tensor  # buffers, registered when n_side > 0
    side_std: torch.Tensor

    def __init__(self, arch: str = "resnet18", n_outputs: int = 5, n_side: int = 0) -> None:
        super().__init__()
        if arch not in ARCHITECTURES:
            raise CardioError(f"unknown architecture {arch!r}; use one of {sorted(ARCHITECTURES)}")
        self.arch = arch
        self.n_outputs = int(n_outputs)
        net = ARCHITECTURES[arch](weights=None)
        old = net.conv1
        net.conv1 = nn.Conv2d(1, old.out_channels, kernel_size=old.kernel_size, stride=old.stride,
                              padding=old.padding, bias=False)
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.n_side = int(n_side)
        net.fc = nn.Linear(net.fc.in_features + self.n_side, self.n_outputs)
        self.net = net
        if self.n_side:  # image-only models keep torchvision's state_dict keys
            self.register_buffer("side_mean", torch.zeros(self.n_side))
            self.register_buffer("side_std", torch.ones(self.n_side))
        self.frozen: str | None = None

    def set_side_scaling(self, side: np.ndarray) -> None:
        """Standardize side features with the mean and SD of these (training) rows."""
        rows = torch.as_tensor(np.asarray(side, dtype=np.float32))
        self.side_mean.copy_(rows.mean(0))
        self.side_std.copy_(rows.std(0).clamp_min(1e-6))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled image features (N, C): torchvision's forward without the head."""
        if x.dim() == 3:
            x = x.unsqueeze(1)
        n = self.net
        x = n.maxpool(n.relu(n.bn1(n.conv1(x))))
        x = n.layer4(n.layer3(n.layer2(n.layer1(x))))
        return torch.flatten(n.avgpool(x), 1)

    def forward(self, x: torch.Tensor, side: torch.Tensor | None = None) -> torch.Tensor:
        f = self.features(x)
        if self.n_side:
            if side is None:
                raise CardioError(f"this {self.arch} takes {self.n_side} side features per beat besides the image")
            f = torch.cat([f, (side.to(f.dtype) - self.side_mean) / self.side_std], dim=1)
        return self.net.fc(f)

    @property
    def cam_layer(self) -> nn.Module:
        """The last convolutional stage, the usual Grad-CAM target."""
        return self.net.layer4

    def stage_modules(self, stage: str) -> list[nn.Module]:
        if stage == "stem":
            return [self.net.conv1, self.net.bn1]
        return [getattr(self.net, stage)]

    def freeze(self, up_to: str | None) -> list[str]:
        """Freeze the stem and every stage up to and including `up_to`; return the frozen parameter names.

        `up_to` is None/"none" (train everything) or one of FREEZE_STAGES; the head is never frozen.
        """
        for p in self.parameters():
            p.requires_grad_(True)
        self.frozen = None
        if up_to in (None, "none"):
            return []
        if up_to not in FREEZE_STAGES:
            raise CardioError(f"ecg_transfer.finetune.freeze={up_to!r} is not known; use none or one of "
                              f"{list(FREEZE_STAGES)}")
        self.frozen = up_to
        stages = FREEZE_STAGES[: FREEZE_STAGES.index(up_to) + 1]
        frozen_ids = set()
        for stage in stages:
            for module in self.stage_modules(stage):
                for p in module.parameters():
                    p.requires_grad_(False)
                    frozen_ids.add(id(p))
        names = [n for n, p in self.named_parameters() if id(p) in frozen_ids]
        self.train(self.training)
        return names

    def train(self, mode: bool = True) -> "SpectrogramResNet":
        super().train(mode)
        if mode and self.frozen is not None:
            for stage in FREEZE_STAGES[: FREEZE_STAGES.index(self.frozen) + 1]:
                for module in self.stage_modules(stage):
                    for m in module.modules():
                        if isinstance(m, nn.modules.batchnorm._BatchNorm):
                            m.eval()
        return self


def build_resnet(arch: str = "resnet18", n_outputs: int = 5, n_side: int = 0) -> SpectrogramResNet:
    """A freshly initialised SpectrogramResNet (a fit builds it through the core's engine.build, which seeds it)."""
    return SpectrogramResNet(arch, n_outputs, n_side)


def save_weights(model: SpectrogramResNet, path: Path, meta: dict[str, Any] | None = None) -> Path:
    """Write the model's weights and how to rebuild it, atomically (a killed run leaves no half file)."""
    path = Path(path)
    payload = {"arch": model.arch, "n_outputs": model.n_outputs, "n_side": model.n_side,
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               "meta": dict(meta or {})}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def read_weights(path: Path) -> dict[str, Any]:
    """Load a file written by save_weights (tensors and plain values only: weights_only=True), or a release's
    .safetensors (backbone_release: the same fields in its header's metadata)."""
    path = Path(path)
    if not path.is_file():
        raise CardioError(f"pretrained weights file {path} does not exist")
    if path.suffix == ".safetensors":
        return _read_release(path)
    try:
        with warnings.catch_warnings():  # torch warns, on stderr, about the pickle protocol of foreign files
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a foreign or damaged file: say which, never torch's advice to unpickle it
        raise CardioError(f"{path} is not a readable cardio checkpoint (tensors and plain values only)") from None
    if (not isinstance(payload, dict) or "arch" not in payload
            or not isinstance(payload.get("state_dict"), dict)):
        raise CardioError(f"{path} is not a cardio ecg_transfer weights file (no 'arch'/'state_dict')")
    return payload


def _read_release(path: Path) -> dict[str, Any]:
    """A release file of backbone_release as save_weights' payload."""
    import json

    from safetensors.torch import load_file

    from cardio_public.weights import release_metadata

    try:
        meta = release_metadata(path)
        state = load_file(str(path))
        payload = {"arch": meta["arch"], "n_outputs": int(meta["n_outputs"]), "n_side": int(meta["n_side"]),
                   "state_dict": state, "meta": {"input": json.loads(meta["input"]), "task": meta["task"],
                                                 "classes": json.loads(meta["classes"])}}
    except Exception as e:  # a damaged file or a header without our fields (safetensors raises its own types)
        raise CardioError(f"{path} is not a cardio ecg_transfer release file ({type(e).__name__})") from None
    return payload


def load_pretrained(model: SpectrogramResNet, path: Path) -> dict[str, Any]:
    """Copy every pretrained weight except the head into `model`; return the file's meta.

    The architecture must match; the head (`net.fc`) keeps its fresh initialisation, since the
    pretraining task (AAMI classes) and the target task have different outputs, and so does the
    side-feature scaling (the pretraining head's input only).
    """
    payload = read_weights(path)
    if payload["arch"] != model.arch:
        raise CardioError(f"{path} holds {payload['arch']} weights but the model is {model.arch}; "
                          "set ecg_transfer.pretrain.arch to the architecture of the weights")
    skip = (HEAD_PREFIX, SIDE_PREFIX)
    state = {k: v for k, v in payload["state_dict"].items() if not k.startswith(skip)}
    own = {k for k in model.state_dict() if not k.startswith(skip)}
    missing, unexpected = sorted(own - set(state)), sorted(set(state) - own)
    if missing or unexpected:
        raise CardioError(f"{path} does not fit a {model.arch}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for k, v in state.items():
        if model.state_dict()[k].shape != v.shape:
            raise CardioError(f"{path}: weight {k} has shape {tuple(v.shape)}, "
                              f"the model expects {tuple(model.state_dict()[k].shape)}")
    model.load_state_dict(state, strict=False)
    return dict(payload.get("meta") or {})
