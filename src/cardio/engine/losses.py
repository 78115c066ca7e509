"""The losses the engine trains with by default: BCE on logits or cross-entropy, and MSE, with missing targets left
out (NaN in a float target, MISSING_CLASS in a class one)."""
from __future__ import annotations

import torch
from torch import nn

MISSING_CLASS = -100  # a class target that is missing (cross-entropy's ignore_index)


def masked_loss(out: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """The default loss with missing targets left out: NaN in a float target, MISSING_CLASS in a class one.

    Binary targets (float 0/1) get BCE on logits, classes (long) cross-entropy; the mean runs over the
    targets present, so a masked entry changes neither the loss nor any gradient. A batch with no
    target present gives a zero loss that still depends on the outputs (backward stays defined).
    `mask` (True = present) may be given explicitly; it defaults to the NaN/MISSING_CLASS entries.
    No host sync: both forms are computed and torch.where picks one on the device (a branch not picked gets
    zero gradients, so the values and gradients are those of the picked form alone).
    """
    if mask is not None:
        y = torch.where(mask, y, torch.full_like(y, MISSING_CLASS if y.dtype == torch.long else float("nan")))
    if y.dtype == torch.long:
        any_present = (y != MISSING_CLASS).any()
        return torch.where(any_present, nn.functional.cross_entropy(out, y, ignore_index=MISSING_CLASS),
                           out.sum() * 0.0)
    out = out.reshape(y.shape)
    present = ~torch.isnan(y)
    y0 = torch.where(present, y, torch.zeros_like(y))  # no NaN reaches a branch's gradient
    losses = nn.functional.binary_cross_entropy_with_logits(out, y0, reduction="none")
    return torch.where(present.all(), nn.functional.binary_cross_entropy_with_logits(out, y0),
                       (losses * present).sum() / present.sum().clamp(min=1))


def masked_mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the targets present (NaN = missing), for regression outputs."""
    out = out.reshape(y.shape)
    present = ~torch.isnan(y)
    diff = torch.where(present, out - torch.nan_to_num(y), torch.zeros_like(out))
    return (diff ** 2).sum() / present.sum().clamp(min=1)


