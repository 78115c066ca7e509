"""Fine-tuning for CRT response: the pretrained ResNet with a new binary head, and the same ResNet from scratch.

Every beat of a patient carries the patient's label; an ECG record's score is the mean of the
predicted response probabilities of its beats (the beats are exchangeable views of one ECG), and a
patient's the mean of their ECGs' scores (cardio_stats.aggregate_scores, as the core aggregates
the predictions to the patient).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cardio import CardioError, CoreSettings
from cardio_ecg_transfer.resnet import SpectrogramResNet, build_resnet, load_pretrained
from cardio_ecg_transfer.settings import EcgSettings
from cardio_stats import aggregate_scores, choose_threshold

#: How beat probabilities become a patient's score (a rule of cardio_stats.aggregate_scores).
AGGREGATION = "mean"
#: How the decision threshold is chosen on the patient scores (a rule of cardio_stats.choose_threshold).
THRESHOLD_RULE = "youden"


@dataclass
class BeatModel:
    """A fitted beat classifier, the threshold chosen on its training fold, and how it started."""

    name: str
    model: SpectrogramResNet
    threshold: float
    init: str  # "pretrained" or "scratch"
    history: list[dict] = field(default_factory=list)
    frozen: list[str] = field(default_factory=list)


def balanced_beat_weights(patient_id: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sampling weights giving each class equal mass, and each patient equal mass within a class.

    Without this, patients with fast heart rates (more beats in a fixed-length ECG) and the
    majority class would dominate the fine-tuning.
    """
    frame = pd.DataFrame({"p": np.asarray(patient_id).astype(str), "y": np.asarray(y)})
    beats_per_patient = frame.groupby("p")["p"].transform("size").to_numpy(dtype=float)
    patients_per_class = frame.groupby("y")["p"].transform("nunique").to_numpy(dtype=float)
    w = 1.0 / (beats_per_patient * patients_per_class)
    return w / w.sum()


def record_scores(model: SpectrogramResNet, features, rows: np.ndarray, ctx) -> pd.Series:
    """Each ECG record's score on these beat rows: the beats' (and leads') response probabilities, aggregated
    (index: record id, in order of first appearance)."""
    rows = np.asarray(rows)
    probs = ctx.engine.predict_proba(model, ctx.engine.ArrayDataset(features.x[rows]), ctx)
    return aggregate_scores(features.table["record_id"].astype(str).to_numpy()[rows], probs, how=AGGREGATION)


def patient_scores(model: SpectrogramResNet, features, rows: np.ndarray, ctx) -> pd.Series:
    """Each patient's score on these beat rows: the scores of their ECG records, aggregated as the core aggregates
    the predictions (index: patient id, in order of first appearance)."""
    records = record_scores(model, features, rows, ctx)
    table = features.table
    owner = dict(zip(table["record_id"].astype(str), table["patient_id"].astype(str)))
    return aggregate_scores([owner[r] for r in records.index], records.to_numpy(), how=AGGREGATION)


def build_beat_model(arch: str, pretrained: Path | None, freeze: str | None, ctx
                     ) -> tuple[SpectrogramResNet, list[str], dict]:
    """A binary-head ResNet (built by the core's engine.build: the transfer and the scratch model of each
    architecture start alike), initialised from `pretrained` (all but the head) when given, then frozen."""
    model = ctx.engine.build(lambda: build_resnet(arch, n_outputs=1), ctx)
    meta: dict = {}
    if pretrained is not None:
        meta = load_pretrained(model, pretrained)
    frozen = model.freeze(freeze) if pretrained is not None else model.freeze(None)
    return model, frozen, meta


def train_beat_model(features, fit_rows: np.ndarray, val_rows: np.ndarray, config: dict, ctx, *, arch: str,
                     init: str, pretrained: Path | None = None) -> BeatModel:
    """Fine-tune (init="pretrained") or train from scratch (init="scratch") on one training fold.

    Early stopping watches the loss on the core's validation rows (patients of the training fold held out,
    `train.val_fraction`); the Youden threshold is chosen on patient scores of them (finetune.threshold_rows).
    The core has checked that the rows to fit hold both classes (else it gave no validation rows).
    """
    ft = EcgSettings.of(config).finetune
    if init == "pretrained" and pretrained is None:
        raise CardioError("fine-tuning needs pretrained weights: enable ecg_transfer.pretrain or set "
                          "ecg_transfer.pretrain.weights_file")
    model, frozen, meta = build_beat_model(arch, pretrained if init == "pretrained" else None, ft.freeze, ctx)
    if init == "pretrained":
        _check_input_matches(meta, features.stage.input if features.stage is not None else None, pretrained, ctx)

    table = features.table
    y_all = table[features.label].to_numpy(dtype=np.float32)
    pids = table["patient_id"].astype(str).to_numpy()
    x = features.x
    train_index = np.union1d(fit_rows, val_rows)
    train_ds = ctx.engine.ArrayDataset(x[fit_rows], y_all[fit_rows])
    val_ds = ctx.engine.ArrayDataset(x[val_rows], y_all[val_rows]) if len(val_rows) else None
    weights = balanced_beat_weights(pids[fit_rows], y_all[fit_rows]) if ft.balance else None
    name = "transfer" if init == "pretrained" else "scratch"
    # several architectures in one run (finetune.archs): each fit its own checkpoint, <fold>-<arch>-<name>
    several = len(ft.archs or ()) > 1
    res = ctx.engine.fit(model, train_ds, val_ds, ctx, name=f"{arch}-{name}" if several else name,
                         train=CoreSettings.of(config).train.as_dict(), settings=ft.as_dict(), sample_weights=weights)

    threshold = fold_threshold(res.model, features, np.asarray(train_index), val_rows, ft.threshold_rows, ctx)
    return BeatModel(name=f"{arch}-{name}", model=res.model, threshold=float(threshold), init=init,
                     history=res.history, frozen=frozen)


def fold_threshold(model, features, train_index: np.ndarray, val_rows: np.ndarray, rows: str, ctx) -> float:
    """Youden's cut-off on patient scores of the training fold: its validation patients, or all of it.

    A network fitted to a few dozen patients scores its own fitting patients too confidently, so
    the default takes the cut-off on the held-out validation patients of the fold (both classes
    needed), falling back to the whole training fold.
    """
    if rows not in ("validation", "training"):
        raise CardioError(f"ecg_transfer.finetune.threshold_rows={rows!r}: use validation or training")
    table = features.table
    y_all = table[features.label].to_numpy(dtype=np.float32)
    use = np.asarray(val_rows) if rows == "validation" and len(val_rows) else train_index
    if len(np.unique(y_all[use])) < 2:
        use = train_index
    pids = table["patient_id"].astype(str).to_numpy()[use]
    per_patient = patient_scores(model, features, use, ctx)
    y_patient = pd.Series(y_all[use], index=pids).groupby(level=0).max()
    return choose_threshold(y_patient.loc[per_patient.index].to_numpy(), per_patient.to_numpy(), THRESHOLD_RULE)


def _check_input_matches(meta: dict, current: dict | None, path: Path | None, ctx) -> None:
    """Transfer is only meaningful when pretraining saw spectrograms made the same way."""
    before = meta.get("input")
    if before and current and before != current:
        ctx.log.warning("pretrained weights %s were trained on inputs %s, fine-tuning uses %s",
                        path, before, current)


def freeze_report(model: torch.nn.Module) -> dict[str, int]:
    """How many parameters train and how many are frozen (for the log and the report)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable": int(trainable), "frozen": int(total - trainable)}
