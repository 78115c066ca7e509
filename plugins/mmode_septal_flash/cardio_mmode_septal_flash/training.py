"""Training and prediction, per fold and per variant (full, cropped M-modes), through the core engine.

Inside the training fold only: the validation rows the core chose (the holdout protocol's validation
patients, else `train.val_fraction` of the training patients), the mean image
of the training images (subtracted from every input), the x11 offline augmentation (every shifted
line of a training patient is a sample) and the online random contrast. Validation records are
augmented offline as the paper's were (its 253 validation samples are 23 patients x 11 lines;
`model.val_augment: false` scores the unshifted line only); test records are seen through the
unshifted line only, as in the paper. The outcome is features.label (septal_flash, or the config's
`label`, e.g. responder). Records without a label are neither fitted nor validated on; they are
predicted, with y_true NaN.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from cardio import CoreSettings, Features, Predictions, engine
from cardio_mmode_septal_flash.model import SeptalFlashNet
from cardio_mmode_septal_flash.settings import SeptalFlashSettings
from cardio_mmode_septal_flash.store import LineSamples, StoredArray, line_sum


def model_name(variant: str) -> str:
    return f"densenet121-{variant}"


class Inputs:
    """uint8 M-modes -> [0, 1], optional random contrast, minus the training mean image: one (s, s) image gives
    (1, s, s), a batch (n, s, s) gives (n, 1, s, s), float32 on the batch's device. The engine applies it to whole
    batches on the device (ArrayDataset.batch_transform): one contrast factor per image, drawn by torch's generator
    of that device (on the CPU the same draws, in the same order, as one image at a time)."""

    def __init__(self, mean: np.ndarray, contrast: tuple[float, float] | None = None) -> None:
        self.mean = torch.as_tensor(mean, dtype=torch.float32)
        self._mean = self.mean
        self.contrast = contrast

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        single = x.ndim == 2
        x = (x[None] if single else x).float() / 255.0
        if self.contrast is not None:  # contrast about each image's own mean, as Keras' random_contrast
            lo, hi = self.contrast
            c = lo + (hi - lo) * torch.rand(len(x), 1, 1, device=x.device)
            m = x.mean(dim=(-2, -1), keepdim=True)
            x = ((x - m) * c + m).clamp(0.0, 1.0)
        if self._mean.device != x.device:  # a copy moved once to where the batches are (self.mean stays on the CPU)
            self._mean = self.mean.to(x.device)
        x = x - self._mean
        return x if single else x[:, None]


# A 2-unit softmax head: SF is called at the argmax, i.e. p(SF) >= 0.5.
THRESHOLD = 0.5


@dataclass
class SeptalFlashModel:
    """One fold's fit: a network and its training mean image per variant."""

    nets: dict[str, SeptalFlashNet]
    inputs: dict[str, Inputs]
    weights_source: str
    history: dict = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)  # per variant; THRESHOLD when absent


def _auc(y: np.ndarray, out: np.ndarray) -> float:
    """Validation score: AUC of the SF softmax probability (0.5 when the rows hold one class)."""
    p = torch.softmax(torch.as_tensor(out), dim=1)[:, 1].numpy()
    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else 0.5


def _validation_set(x: StoredArray, y: np.ndarray, rows: np.ndarray, augment: bool, mean: np.ndarray) -> LineSamples:
    """The validation rows' M-modes: every shifted line of each (the paper's x11), or the unshifted line only."""
    k = x.shape[1]
    if augment:
        return LineSamples(x, rows, range(k), np.repeat(y[rows], k), batch_transform=Inputs(mean))
    return LineSamples(x, rows, [k // 2], y[rows], batch_transform=Inputs(mean))


def train(features: Features, train_index: np.ndarray, val_index: np.ndarray, config: dict,
          ctx) -> SeptalFlashModel:
    """One DenseNet-121 per variant on the fit rows, its epoch chosen on the core's validation rows (the protocol's,
    else `train.val_fraction` of the training patients). The core has checked that the rows to fit hold both
    classes."""
    s = SeptalFlashSettings.of(config)
    # the core hands only rows with the label (features.trainable: it is this plugin's one target)
    fit_rows, val_rows = np.asarray(train_index, dtype=int), np.asarray(val_index, dtype=int)
    y = features.table[features.label].fillna(engine.MISSING_CLASS).to_numpy().astype(np.int64)  # rows used have one
    nets: dict[str, SeptalFlashNet] = {}
    inputs, history, source = {}, {}, ""
    for variant in s.model.variants:
        x = features.x[variant]  # (N, K, s, s) uint8, read per batch (store.py)
        total, count = line_sum(x, fit_rows)
        mean = (total / count).astype(np.float32) / 255.0  # the mean of every training line
        lo, hi = s.model.contrast
        # each variant's network starts alike, whichever variants the run has
        net = engine.build(lambda: SeptalFlashNet(s.model.weights), ctx)
        train_set = LineSamples(x, fit_rows, range(x.shape[1]), np.repeat(y[fit_rows], x.shape[1]),
                                batch_transform=Inputs(mean, (lo, hi)))
        fit = engine.fit(net, train_set,
                         _validation_set(x, y, val_rows, s.model.val_augment, mean), ctx,
                         name=f"septal-flash-{variant}", train=CoreSettings.of(config).train.as_dict(),
                         settings=s.train.as_dict(),
                         metric=_auc)
        nets[variant], inputs[variant] = cast(SeptalFlashNet, fit.model.cpu().eval()), Inputs(mean)  # the net built
        history[variant], source = fit.history, net.source
    return SeptalFlashModel(nets, inputs, source, history, {v: THRESHOLD for v in nets})


def probabilities(model: SeptalFlashModel, variant: str, images: np.ndarray, ctx) -> np.ndarray:
    """Softmax probability of SF for (n, s, s) uint8 M-modes."""
    return engine.predict_proba(model.nets[variant], engine.ArrayDataset(images, batch_transform=model.inputs[variant]),
                                ctx, softmax=True)[:, 1]


def predict(model: SeptalFlashModel, features: Features, test_index: np.ndarray, ctx) -> Predictions:
    """SF probabilities of the test records (y_true NaN where unlabelled), unshifted line, one model per variant;
    each variant's threshold (0.5: the argmax)."""
    table = features.table.iloc[test_index]
    parts = []
    for variant in model.nets:
        x = features.x[variant]
        samples = LineSamples(x, test_index, [x.shape[1] // 2], batch_transform=model.inputs[variant])
        p = engine.predict_proba(model.nets[variant], samples, ctx, softmax=True)[:, 1]  # read per batch
        parts.append(Predictions.from_arrays(table["record_id"], table["patient_id"], table[features.label], p,
                                             model=model_name(variant), task=features.label, kind="binary",
                                             threshold=model.thresholds.get(variant, THRESHOLD)))
    return Predictions.concat(parts)
