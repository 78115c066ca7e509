"""Class-prior correction of the pretrained classifier: balanced training shifts the priors; a strength chosen
on the validation records moves the logits back toward the records' class mix."""
from __future__ import annotations

import numpy as np

from cardio_ecg_transfer import aami
from cardio_ecg_transfer.beat_metrics import weighted_macro_f1
from cardio_ecg_transfer.beat_set import BeatSet
from cardio_ecg_transfer.settings import EcgSettings


def class_weights(y: np.ndarray, power: float) -> np.ndarray:
    """Per-beat sampling weights proportional to class count ** -power (1: balanced, 0: as is)."""
    counts = np.bincount(y, minlength=len(aami.AAMI_CLASSES)).astype(float)
    w = np.where(counts[y] > 0, counts[y], 1.0) ** -float(power)
    return w / w.sum()


def prior_shift(train: BeatSet, power: float) -> np.ndarray:
    """Log-ratio of DS1's natural class frequencies to the ones the sampler showed the network.

    Training on a class-balanced subset teaches the network balanced priors; adding this to the
    logits restores DS1's class mix (a label-shift correction that uses training data only).
    """
    shown = np.bincount(train.y, minlength=len(aami.AAMI_CLASSES)).astype(float) ** (1.0 - float(power))
    natural = train.population.astype(float)
    ok = (shown > 0) & (natural > 0)
    out = np.zeros(len(shown))
    out[ok] = np.log(natural[ok] / natural[ok].sum()) - np.log(shown[ok] / shown[ok].sum())
    return out


#: Strengths of the prior correction tried on the DS1 validation records (1 is the exact Bayes shift).
PRIOR_STRENGTHS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)


def choose_prior_strength(logits: np.ndarray, y: np.ndarray, shift: np.ndarray,
                          weights: np.ndarray) -> tuple[float, dict[str, float]]:
    """The strength of PRIOR_STRENGTHS whose shifted logits give the best weighted macro F1 (ties: nearest 1)."""
    scores = {s: weighted_macro_f1(y, (logits + s * shift[None, :]).argmax(axis=1), weights) for s in PRIOR_STRENGTHS}
    best = max(scores, key=lambda s: (np.nan_to_num(scores[s], nan=-1.0), -abs(s - 1.0)))
    return float(best), {f"{s:g}": float(v) for s, v in scores.items()}


def prior_correction(model, train: BeatSet, val: BeatSet, config: dict, ctx
                     ) -> tuple[np.ndarray, float, dict[str, float]]:
    """(logit shift, strength, macro F1 per strength tried): the label-shift correction of the test logits.

    Zero without pretrain.prior_correction; the strength is pretrain.prior_strength, or the one of
    PRIOR_STRENGTHS best on the DS1 validation records (their natural class mix; DS2 is never used).
    """
    pt = EcgSettings.of(config).pretrain
    if not pt.prior_correction:
        return np.zeros(len(aami.AAMI_CLASSES)), 0.0, {}
    shift = prior_shift(train, float(pt.balance_power))
    strength = 1.0 if pt.prior_strength is None else float(pt.prior_strength)
    strength_scores: dict[str, float] = {}
    if pt.prior_strength is None and len(val.y):
        val_logits = ctx.engine.predict(model, ctx.engine.ArrayDataset(val.inputs()), ctx)
        strength, strength_scores = choose_prior_strength(val_logits, val.y, shift, np.ones(len(val.y)))
        ctx.log.info("prior correction strength %g (DS1 validation macro F1 %s)", strength,
                     {k: round(v, 3) for k, v in strength_scores.items()})
    return strength * shift, strength, strength_scores
