"""The network: torchvision r2plus1d_18 with one output per configured target (BCE logits of the binary ones, then
squared-loss regressions of the continuous ones; targets.py)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torchvision.models.video.resnet import BasicBlock, Conv2Plus1D, VideoResNet

from cardio import CardioError
from cardio.engine import masked_loss, masked_mse
from cardio_echo_cmr.settings import EchoSettings
from cardio_echo_cmr.targets import DEFAULT

# The default targets' outputs (the CMR set); a configured list gives its own (targets.parse).
BINARY_HEADS = tuple(t.name for t in DEFAULT if t.binary)
REGRESSION_HEADS = tuple(t.name for t in DEFAULT if not t.binary)
HEADS = BINARY_HEADS + REGRESSION_HEADS
#: echo_cmr.weights naming torchvision's Kinetics-400 r2plus1d_18 (R2Plus1D_18_Weights.KINETICS400_V1), the start of
#: the EchoNet-Dynamic code the paper builds on: downloaded once into torch's hub cache, checked by its name's hash.
KINETICS = "kinetics400"


class EchoVideoNet(nn.Module):
    """r2plus1d_18 on (N, 3, T, H, W) clips normalised by the training fold's mean and SD."""

    mean: torch.Tensor  # buffers (register_buffer below)
    sd: torch.Tensor

    def __init__(self, mean: float = 0.0, sd: float = 1.0, weights_file: str | None = None,
                 arch: str = "r2plus1d_18", n_outputs: int = len(HEADS)) -> None:
        super().__init__()
        from torchvision.models.video import r2plus1d_18
        from torchvision.models.video.resnet import R2Plus1dStem

        from cardio_public.weights import torchvision_model

        if weights_file == KINETICS:
            if arch != "r2plus1d_18":
                raise CardioError(f"echo_cmr.weights: {KINETICS} is a start of r2plus1d_18, not of {arch}")
            self.net, _ = torchvision_model(arch, "KINETICS400_V1", "echo_cmr.weights=null to train from scratch")
        elif arch == "r2plus1d_18":
            self.net = r2plus1d_18(weights=None)
        elif arch == "r2plus1d_10":  # torchvision's own (2+1)D blocks, one per stage: a CPU-sized run
            self.net = VideoResNet(BasicBlock, [Conv2Plus1D] * 4, [1, 1, 1, 1], R2Plus1dStem)
        elif arch == "r2plus1d_10_narrow":  # a quarter of r2plus1d_10's widths: the controls' CPU runs
            self.net = NarrowR2Plus1d()
        else:
            raise CardioError(f"echo_cmr.arch must be r2plus1d_18, r2plus1d_10 or r2plus1d_10_narrow, got {arch!r}")
        if weights_file and weights_file != KINETICS:
            load_kinetics(self.net, weights_file)
        self.net.fc = nn.Linear(self.net.fc.in_features, n_outputs)
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("sd", torch.tensor(float(sd)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4:  # (N, T, H, W) grey clips: the three input planes get the same frame
            x = x.unsqueeze(1).expand(-1, 3, -1, -1, -1)
        return self.net((x - self.mean) / self.sd)


class NarrowR2Plus1d(VideoResNet):
    """r2plus1d_10 (torchvision's VideoResNet, one (2+1)D block per stage) at a quarter of its widths: 16-128
    channels, 0.8M weights instead of 12.5M, for CPU runs of the controls (VideoResNet fixes 64-512 in its
    __init__, so this one repeats it with the widths as an argument; the blocks are torchvision's)."""

    def __init__(self, widths: tuple[int, int, int, int] = (16, 32, 64, 128), stem_mid: int = 12) -> None:
        nn.Module.__init__(self)  # not VideoResNet's: it would build the 64-512 layers first
        self.inplanes = widths[0]
        self.stem = nn.Sequential(  # R2Plus1dStem's layout at these widths
            nn.Conv3d(3, stem_mid, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False), nn.BatchNorm3d(stem_mid),
            nn.ReLU(inplace=True), nn.Conv3d(stem_mid, widths[0], (3, 1, 1), (1, 1, 1), (1, 0, 0), bias=False),
            nn.BatchNorm3d(widths[0]), nn.ReLU(inplace=True))
        for i, (width, stride) in enumerate(zip(widths, (1, 2, 2, 2)), start=1):
            setattr(self, f"layer{i}", self._make_layer(BasicBlock, Conv2Plus1D, width, 1, stride=stride))
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.fc = nn.Linear(widths[-1], 400)
        for m in self.modules():  # VideoResNet's initialisation
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0)


def load_kinetics(net: nn.Module, path: str) -> None:
    """A torchvision r2plus1d_18 state dict (Kinetics-400) from a .pth or .safetensors file; fc is replaced."""
    from cardio.engine import read_weights
    from cardio_public.weights import check_file

    p = check_file(path, "echo_cmr.weights").path
    state = {k: v for k, v in read_weights(p, "echo_cmr.weights").items() if not k.startswith("fc.")}
    missing, unexpected = net.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if not k.startswith("fc.")]:
        raise CardioError(f"echo_cmr.weights {p}: does not fit torchvision r2plus1d_18")


def weights_source(s: EchoSettings) -> str:
    if s.arch != "r2plus1d_18":
        return (f"{s.arch} (torchvision VideoResNet, one (2+1)D block per stage) trained from scratch; the "
                "r2plus1d_18 of EchoNet-Dynamic, which the paper cites, is the `paper` profile")
    from cardio_public.weights import check_file, torchvision_weights

    if s.weights == KINETICS:
        return ("Kinetics-400 r2plus1d_18 weights (torchvision KINETICS400_V1: "
                f"{torchvision_weights('r2plus1d_18', 'KINETICS400_V1').describe()})")
    if s.weights:
        return f"Kinetics-400 r2plus1d_18 weights from the file {check_file(s.weights, 'echo_cmr.weights').describe()}"
    return "r2plus1d_18 trained from scratch (no Kinetics-400 weights file given; none can be downloaded here)"


class HeadLoss(nn.Module):
    """BCE-with-logits on the first `n_binary` heads plus MSE on the (standardised) regression heads after them,
    each over the targets present: a NaN target (a missing label) changes neither the loss nor any gradient
    (cardio.engine's masked losses; with every target present they equal the plain BCE and MSE). A block with no
    head adds nothing."""

    def __init__(self, n_binary: int = len(BINARY_HEADS)) -> None:
        super().__init__()
        self.nb = n_binary

    def forward(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        nb, loss = self.nb, out.new_zeros(())
        if nb:
            loss = loss + masked_loss(out[:, :nb].float(), y[:, :nb].float())
        if out.shape[1] > nb:
            loss = loss + masked_mse(out[:, nb:].float(), y[:, nb:].float())
        return loss


def flops_per_clip(frames: int, size: int, arch: str = "r2plus1d_18") -> float:
    """Forward multiply-accumulates x 2 of r2plus1d_18 on one clip, counted by torch's FLOP counter."""
    from torch.utils.flop_counter import FlopCounterMode

    net = EchoVideoNet(arch=arch).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.zeros(1, 3, frames, size, size))
    return float(counter.get_total_flops())


def as_array(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)
