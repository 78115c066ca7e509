"""Per-output model selection: one network per view, and for each of its outputs the weights of the epoch where
that output's own validation metric was best (the paper trained one model per task; this keeps one checkpoint per
task of a shared network, so the tissue outputs are not reported at the epoch that suited wall motion).

`BestPerHead` is the engine's validation metric: each call scores every output on the validation rows that have it
(AUROC for a binary output, ties to the lower BCE; minus the MSE of a standardised regression output), keeps a copy of
the weights for each output that improved, and returns the number of epochs in which any output improved, so the
engine stops after `patience` epochs in which none did.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from cardio_echo_cmr.targets import DEFAULT, Target


def binary_score(y: np.ndarray, out: np.ndarray) -> float:
    """Validation AUROC of one binary output on its labelled rows (0.5 with one class or none).

    Ties go to the lower BCE: on a few validation patients the AUROC reaches 1 within an epoch or two, and the first
    such epoch is an undertrained network. The BCE term is scaled below half the AUROC's smallest step,
    0.5 / (n_pos * n_neg), so it never outranks a real AUROC difference.
    """
    present = ~np.isnan(y)
    if not present.any():
        return 0.5
    y, out = y[present], out[present]
    pos = int(y.sum())
    auc = float(roc_auc_score(y, out)) if 0 < pos < len(y) else 0.5
    bce = float(torch.nn.functional.binary_cross_entropy_with_logits(torch.from_numpy(out).float(),
                                                                     torch.from_numpy(y).float()))
    return auc - 0.25 / max(pos * (len(y) - pos), 1) * bce / (1.0 + bce)


def regression_score(y: np.ndarray, out: np.ndarray) -> float:
    """Minus the validation MSE of a standardised output on its labelled rows (0 when none is labelled)."""
    present = ~np.isnan(y)
    return -float(np.mean((y[present] - out[present]) ** 2)) if present.any() else 0.0


class BestPerHead:
    """The engine metric that keeps the best weights of each output (see the module's text)."""

    def __init__(self, net: torch.nn.Module, targets: tuple[Target, ...] = DEFAULT) -> None:
        self.net = net
        self.heads = tuple(t.name for t in targets)
        self.binary = tuple(t.binary for t in targets)
        self.best = {h: -math.inf for h in self.heads}
        self.epoch_of: dict[str, int] = {}
        self.states: dict[int, dict] = {}
        self.scores: list[dict[str, float]] = []
        self.improving_epochs = 0

    def __call__(self, y: np.ndarray, out: np.ndarray) -> float:
        epoch = len(self.scores) + 1
        # the engine hands a one-output network's outputs as (N,): one column per head again
        y, out = (np.asarray(a).reshape(len(a), len(self.heads)) for a in (y, out))
        scores = {h: (binary_score if b else regression_score)(y[:, j].astype(float), out[:, j].astype(float))
                  for j, (h, b) in enumerate(zip(self.heads, self.binary))}
        self.scores.append(scores)
        improved = [h for h in self.heads if scores[h] > self.best[h]]
        if improved:
            self.improving_epochs += 1
            self.states[epoch] = {k: v.detach().to("cpu", copy=True) for k, v in self.net.state_dict().items()}
            for h in improved:
                self.best[h], self.epoch_of[h] = scores[h], epoch
            kept = set(self.epoch_of.values())
            self.states = {e: s for e, s in self.states.items() if e in kept}
        return float(self.improving_epochs)


def select_nets(net: torch.nn.Module, selector: BestPerHead | None,
                heads: tuple[str, ...] | None = None) -> tuple[dict[int, torch.nn.Module], dict]:
    """({epoch: network}, {output: epoch}) after training: each output's best epoch and its weights; without
    validation rows (no selector scores) every output keeps the engine's weights (lowest training loss), epoch 0."""
    import copy

    if selector is None or not selector.states:
        return {0: net.cpu().eval()}, dict.fromkeys(heads or (selector.heads if selector else
                                                              tuple(t.name for t in DEFAULT)), 0)
    nets = {}
    for epoch, state in selector.states.items():
        clone = copy.deepcopy(net).cpu()
        clone.load_state_dict(state)
        nets[epoch] = clone.eval()
    last = max(selector.states)  # an output whose score was never finite keeps the last kept weights
    return nets, {h: selector.epoch_of.get(h, last) for h in selector.heads}
