"""Class-activation maps for signal, image and video models (Grad-CAM, Grad-CAM++), via pytorch-grad-cam.

Orientation: every map is non-negative and high where the model looked for the explained unit
(attention), low elsewhere; normalized maps span [0, 1] per sample (min-max, as pytorch-grad-cam
scales them), raw maps keep the layer's own units.
"""
from __future__ import annotations

from typing import Literal, overload

import numpy as np
import torch
from torch import nn

from cardio import pip_install
from cardio.data import CardioError


class _AsImage(nn.Module):
    """A 1-D model seen as a 2-D one: (N, C, 1, L) in, the model gets (N, C, L).

    pytorch-grad-cam 1.5.7 handles 2-D and 3-D activations only; a height of one lets it treat
    signals as images, and the reshape transform gives the layer's (N, K, L') the same extra axis.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.squeeze(2))


def _unsqueeze_1d(t: torch.Tensor) -> torch.Tensor:
    return t.unsqueeze(2) if t.ndim == 3 else t


@overload
def grad_cam(model: nn.Module, layer: nn.Module, x: torch.Tensor, target: int | None = None,
             plus: bool = False, batch_size: int = 32, *, raw: Literal[False] = False) -> np.ndarray: ...


@overload
def grad_cam(model: nn.Module, layer: nn.Module, x: torch.Tensor, target: int | None = None,
             plus: bool = False, batch_size: int = 32, *,
             raw: Literal[True]) -> tuple[np.ndarray, np.ndarray]: ...


def grad_cam(model: nn.Module, layer: nn.Module, x: torch.Tensor, target: int | None = None,
             plus: bool = False, batch_size: int = 32, *,
             raw: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Maps at the input's size, high = attention, each scaled to [0, 1].

    Shapes: (N, L) for signals (N, C, L), (N, H, W) for images (N, C, H, W), (N, T, H, W) for video
    (N, C, T, H, W). `target` is the output unit to explain (the logit of a one-output binary model
    is unit 0); None explains each sample's highest-scoring unit.

    raw=True returns (normalized, raw): raw holds the maps before scaling and upsampling, at the
    layer's resolution (e.g. (N, 8, 8) for DenseNet-121's last block on a 256 x 256 image), i.e.
    ReLU(sum_k w_k A_k) in the activations' units, so that map strength can be compared between
    samples and classes (a normalized map always peaks at 1).
    """
    try:  # the report service's explain extra, which the plugins that explain with it require
        from pytorch_grad_cam import GradCAM, GradCAMPlusPlus
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    except ImportError:
        raise CardioError("Grad-CAM maps need pytorch-grad-cam, which is not installed: "
                          f"{pip_install(repr('cardio-crt-report[explain]'))}") from None

    if x.ndim not in (3, 4, 5):
        raise ValueError(f"grad_cam expects (N, C, L), (N, C, H, W) or (N, C, T, H, W) input, "
                         f"got shape {tuple(x.shape)}")
    signal = x.ndim == 3
    was_training = model.training
    model.eval()
    net, inputs = (_AsImage(model), x.unsqueeze(2)) if signal else (model, x)
    method = (GradCAMPlusPlus if plus else GradCAM)(model=net, target_layers=[layer],
                                                    reshape_transform=_unsqueeze_1d if signal else None)
    try:
        maps, raws = [], []
        for start in range(0, len(inputs), batch_size):
            # A gradient must reach the layer even when the layers before it are frozen.
            chunk = inputs[start:start + batch_size].detach().clone().requires_grad_(True)
            targets = None if target is None else [ClassifierOutputTarget(target)] * len(chunk)
            maps.append(method(input_tensor=chunk, targets=targets))
            if raw:
                # the library's own channel weights and weighted sum, before it scales the map
                ag = method.activations_and_grads
                acts, grads = ag.activations[0].numpy(), ag.gradients[0].numpy()
                cam = method.get_cam_image(chunk, layer, targets, acts, grads)
                raws.append(np.maximum(cam, 0).astype(np.float32))
    finally:
        method.activations_and_grads.release()
        model.train(was_training)
    out = np.concatenate(maps).astype(np.float32)
    if signal:
        out = out[:, 0]
    if not raw:
        return out
    raw_maps = np.concatenate(raws)
    return out, (raw_maps[:, 0] if signal else raw_maps)
