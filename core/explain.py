"""Class-activation maps for image and video models (Grad-CAM, Grad-CAM++), via pytorch-grad-cam."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


def grad_cam(model: nn.Module, layer: nn.Module, x: torch.Tensor, target: int | None = None,
             plus: bool = False, batch_size: int = 32) -> np.ndarray:
    """Maps in [0, 1] at the input's size: (N, H, W) for (N, C, H, W), (N, T, H, W) for video (N, C, T, H, W).

    `target` is the output unit to explain (the logit of a one-output binary model is unit 0);
    None explains each sample's highest-scoring unit.
    """
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus  # optional dependency: `pip install grad-cam`
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    if x.ndim not in (4, 5):
        raise ValueError(f"grad_cam expects (N, C, H, W) or (N, C, T, H, W) input, got shape {tuple(x.shape)}")
    was_training = model.training
    model.eval()
    method = (GradCAMPlusPlus if plus else GradCAM)(model=model, target_layers=[layer])
    try:
        maps = []
        for start in range(0, len(x), batch_size):
            # A gradient must reach the layer even when the layers before it are frozen.
            chunk = x[start:start + batch_size].detach().clone().requires_grad_(True)
            targets = None if target is None else [ClassifierOutputTarget(target)] * len(chunk)
            maps.append(method(input_tensor=chunk, targets=targets))
    finally:
        method.activations_and_grads.release()
        model.train(was_training)
    return np.concatenate(maps).astype(np.float32)
