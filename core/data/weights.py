"""Pretrained starts for torchvision backbones: torchvision's weights API, the file kept in torch's hub cache.

A user with internet gets the weights on the first run (torchvision downloads them into
``$TORCH_HOME/hub/checkpoints/`` and checks the file's hash there); every later run, and a machine without internet
where the file was copied to that folder under its published name, reads them from the cache. Weights that
torchvision does not publish (RadImageNet) are a user's file, read by the plugin (cardio.engine.read_weights).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from cardio.data import CardioError


def cache_file(arch: str, weights: str) -> Path:
    """Where torch's hub keeps torchvision's `weights` of `arch` (e.g. resnet18, IMAGENET1K_V1)."""
    import torch
    import torchvision

    enum = torchvision.models.get_model_weights(arch)[weights]
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(enum.url).name


def torchvision_model(arch: str, weights: str | None, key: str) -> Any:
    """torchvision's `arch` started from its published `weights` (None: random initialisation); a failed download
    or unreadable cached file is one line naming the file to place and the config key (`key`) that turns it off."""
    import torchvision

    try:
        builder = torchvision.models.get_model_builder(arch)
        if weights is not None:
            torchvision.models.get_model_weights(arch)[weights]
    except (ValueError, KeyError):
        raise CardioError(f"{key}: torchvision has no {arch} with weights {weights!r}") from None
    if weights is None:
        return builder(weights=None)
    try:
        return builder(weights=weights)
    except Exception as e:  # no network, a corrupt download or cached file
        raise CardioError(f"cannot load torchvision's {weights} weights of {arch} ({type(e).__name__}: {e}); "
                          f"without internet, copy the file to {cache_file(arch, weights)}, or set {key}") from None
