"""Pretraining on MIT-BIH DS1: beat spectrograms -> ResNet -> AAMI classes.

Beats are cut around the reference annotations' beat positions (the standard inter-patient
protocol evaluates the classifier, not a QRS detector). It is the plugin's prepare stage: run
once per study before the folds (it never sees the CRT cohort's labels), it returns a
`Pretrained` (the weights file, the results on held-out DS1 records and the confusion figure)
that the core hands to the folds' training and to the report.

A run sees DS1 only: DS1 records are split by record into fitting and validation records; the
validation records stop the training, choose the prior-correction strength and are what the run
reports. DS2, the inter-patient test set, is predicted by `ds2_look` in `benchmarks/aami_interpatient.py` alone
(`benchmarks/aami_interpatient.py --final`), which appends every look to a ledger.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cardio import CardioError, CoreSettings, write_text_atomic
from cardio.engine import FitResult
from cardio_ecg_transfer import aami, beat_context
from cardio_ecg_transfer.beat_images import input_spec
from cardio_ecg_transfer.beat_metrics import always_n, balanced_accuracy, classification_results, record_intervals
from cardio_ecg_transfer.beat_set import BeatSet, cached_beat_set, split_fit_val
from cardio_ecg_transfer.mitdb import ensure_mitdb, mitdb_dir
from cardio_ecg_transfer.prior_correction import class_weights, prior_correction
from cardio_ecg_transfer.resnet import SpectrogramResNet, build_resnet, save_weights
from cardio_ecg_transfer.settings import EcgSettings
from cardio_public.weights import check_file, name_hash
from cardio_report.figures import Figure
from cardio_stats import plot_confusion

RESULTS_NAME = "pretrain_results-{arch}.json"  # one per architecture: finetune.archs pretrains several in one run
FIGURE_NAME = "pretrain_confusion_{arch}"
#: What the report reads from the results file of a finished pretraining.
RESULT_KEYS = ("arch", "accuracy", "macro_f1", "macro_f1_classes", "n", "per_class", "train_records", "val_records",
               "train_counts", "val_counts", "epochs_run", "best_epoch", "max_beats_per_class", "max_eval_beats")


@dataclass
class Pretrained:
    """What pretraining hands on: the weights file, and the DS1 validation results and confusion figure of the
    pretraining this run did (None for both when pretrain.weights_file gave the weights)."""

    weights: Path
    results: dict | None = None
    figure: Path | None = None


def _arch(config: dict, arch: str | None) -> str:
    """The architecture a pretraining fits: the one given (finetune.archs names several), else pretrain.arch."""
    return arch or EcgSettings.of(config).pretrain.arch


def weights_path(config: dict, ctx, arch: str | None = None) -> Path:
    """checkpoints/pretrained-<arch>.pt of the run."""
    return Path(ctx.checkpoint_dir) / f"pretrained-{_arch(config, arch)}.pt"


def confusion_figure(results: dict, title: str) -> Figure:
    """The held-out DS1 confusion matrix, drawn by the core's plot_confusion (counts and rates in every cell)."""
    return plot_confusion({"pretrained ResNet": results["confusion"]}, list(results["classes"]), title=title,
                          unit="beats")


def prepare(config: dict, ctx, arch: str | None = None, tag: str | None = None) -> Pretrained | None:
    """The prepare stage: pretrain `arch` (or take pretrain.weights_file) when a transfer model is asked for, else
    None."""
    s = EcgSettings.of(config)
    if not (s.pretrain.enabled and s.finetune.transfer):
        return None
    return pretrain(config, ctx, arch, tag)


def _read_results(path: Path) -> dict:
    """The results a finished pretraining of this run left (read back when the run resumes)."""
    try:
        results = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise CardioError(f"{path} is not a readable pretraining results file") from None
    missing = [k for k in RESULT_KEYS if k not in results] if isinstance(results, dict) else list(RESULT_KEYS)
    if missing:
        raise CardioError(f"{path} is not a pretraining results file (it lacks {missing[:5]})")
    return results


def mitdb_root(config: dict, ctx) -> Path:
    """MIT-BIH's folder (ecg_transfer.mitdb_dir, $CARDIO_DATA/mitdb or the cache), downloaded there when absent and
    online."""
    return ensure_mitdb(mitdb_dir(EcgSettings.of(config).mitdb_dir, ctx.cache_dir), progress=ctx.progress)


@dataclass
class Fitted:
    """A pretrained network with its logit shift, and what it was fitted and validated on."""

    arch: str
    model: SpectrogramResNet
    shift: np.ndarray
    strength: float
    strength_scores: dict
    fit: FitResult
    train: BeatSet
    val: BeatSet
    fit_records: list[str]
    val_records: list[str]


def fit_pretraining(root: Path, records: list[str], config: dict, ctx, seed: int | None = None,
                    name: str = "pretrain", tag: str | None = None, arch: str | None = None) -> Fitted:
    """Fit the 5-class ResNet on `records` (DS1 or a part of it): a grouped fitting/validation split of the
    records, class-capped fitting beats, early stopping and the prior strength on the validation records.
    `name` names the engine's checkpoint (a rerun resumes from it)."""
    pt = EcgSettings.of(config).pretrain
    seed = ctx.seed if seed is None else int(seed)
    fit_records, val_records = split_fit_val(records, config, seed)
    train = cached_beat_set(root, fit_records, config, ctx.cache, max_per_class=pt.max_beats_per_class,
                            max_total=None, seed=seed, progress=ctx.progress, desc="DS1 fitting")
    val = cached_beat_set(root, val_records, config, ctx.cache, max_per_class=None,
                          max_total=pt.max_eval_beats, seed=seed + 1, progress=ctx.progress, desc="DS1 validation")
    model, fit = train_classifier(train, val, config, ctx, seed, name, tag, arch)
    shift, strength, scores = prior_correction(model, train, val, config, ctx)
    return Fitted(_arch(config, arch), model, shift, strength, scores, fit, train, val, fit_records, val_records)


def predict(fitted: Fitted, beats: BeatSet, ctx) -> np.ndarray:
    """AAMI class index of every beat: the network's logits plus the prior shift."""
    logits = ctx.engine.predict(fitted.model, ctx.engine.ArrayDataset(beats.inputs()), ctx)
    return (logits + fitted.shift[None, :]).argmax(axis=1)


def pretrain(config: dict, ctx, arch: str | None = None, tag: str | None = None) -> Pretrained:
    """Pretrain (or resume, or reuse) the ResNet on MIT-BIH DS1; return its weights file and DS1 validation results.

    With pretrain.weights_file set, that file is used and nothing is trained. The engine's
    checkpoint `pretrain` makes a killed pretraining resume; a finished one is not redone (its
    results are read back from checkpoints/). Rank 0 alone writes files; every rank returns the
    same Pretrained, and the core waits for all ranks before the folds read the weights.
    """
    s = EcgSettings.of(config)
    pt = s.pretrain
    if pt.weights_file:
        path = Path(pt.weights_file).expanduser()
        if not path.is_file():
            raise CardioError(f"ecg_transfer.pretrain.weights_file {path} does not exist")
        if name_hash(path):  # a release file (backbone_release) or any file named by its hash: checked by it
            check_file(path, "ecg_transfer.pretrain.weights_file")
        return Pretrained(weights=path)
    arch = _arch(config, arch)
    out = weights_path(config, ctx, arch)
    results_file = Path(ctx.checkpoint_dir) / RESULTS_NAME.format(arch=arch)
    figure = ctx.figure_path(FIGURE_NAME.format(arch=arch))
    if out.is_file() and results_file.is_file():
        return Pretrained(weights=out, results=_read_results(results_file),
                          figure=figure if figure.is_file() else None)
    records = aami.ds1_records(pt.records)
    root = mitdb_root(config, ctx)
    ctx.log.info("pretraining %s on MIT-BIH DS1 (%d records; DS2 is not used)", arch, len(records))
    fitted = fit_pretraining(root, records, config, ctx, tag=tag, arch=arch)
    pred = predict(fitted, fitted.val, ctx)
    results = classification_results(fitted.val.y, pred)
    results["ci"] = record_intervals(fitted.val.y, pred, fitted.val.record, config)
    results["always_n"] = always_n(fitted.val.y)
    results.update(describe(fitted, config))
    if ctx.is_main:
        save_weights(fitted.model, out, meta={"input": input_spec(config, s.fs),
                                              "classes": list(aami.AAMI_CLASSES),
                                              "task": "AAMI beat classes, MIT-BIH DS1"})
        write_text_atomic(results_file, json.dumps(results, indent=2))
        ctx.save_figure(confusion_figure(results, f"{arch} on held-out DS1 records (macro F1 "
                                                  f"{results['macro_f1']:.3f})"), FIGURE_NAME.format(arch=arch),
                        caption=f"Pretraining: the confusion matrix of {arch} over the AAMI beat classes on the "
                                "held-out MIT-BIH DS1 validation records.")
    ctx.log.info("pretraining: DS1 validation macro F1 %.3f, balanced accuracy %.3f, V Se %s, S Se %s",
                 results["macro_f1"], results["balanced_accuracy"], results["per_class"]["V"]["se"],
                 results["per_class"]["S"]["se"])
    return Pretrained(weights=out, results=results, figure=figure)


def describe(fitted: Fitted, config: dict) -> dict:
    """The settings and choices of a fitted pretraining, for its results file and the ledger."""
    s = EcgSettings.of(config)
    pt = s.pretrain
    return {"arch": fitted.arch, "evaluated_on": "DS1 validation records", "train_records": fitted.fit_records,
            "val_records": fitted.val_records, "train_counts": fitted.train.counts(), "val_counts": fitted.val.counts(),
            "max_beats_per_class": pt.max_beats_per_class, "max_eval_beats": pt.max_eval_beats,
            "prior_correction": [float(v) for v in fitted.shift], "prior_strength": fitted.strength,
            "prior_strength_scores": fitted.strength_scores, "epochs_run": len(fitted.fit.history),
            "best_epoch": fitted.fit.best_epoch, "history": fitted.fit.history,
            "input": input_spec(config, s.fs), "input_shape": list(fitted.train.x.shape[1:]),
            "side_features": beat_context.names(pt.side_features)}


def train_classifier(train: BeatSet, val: BeatSet | None, config: dict, ctx, seed: int, name: str = "pretrain",
                     tag: str | None = None, arch: str | None = None) -> tuple[SpectrogramResNet, FitResult]:
    """(model, fit result): the 5-class ResNet fitted by the core's loop on the fitting records' beats,
    early-stopped on the validation records' balanced accuracy (val None: every epoch runs, no stopping)."""
    pt = EcgSettings.of(config).pretrain
    if len(np.unique(train.y)) < 2:
        raise CardioError(f"the MIT-BIH training beats hold one class only ({train.counts()}); use more records")
    model = ctx.engine.build(lambda: build_resnet(_arch(config, arch), n_outputs=len(aami.AAMI_CLASSES),
                                                  n_side=train.side.shape[1]), ctx, seed=seed)
    if model.n_side:
        model.set_side_scaling(train.side)
    train_ds = ctx.engine.ArrayDataset(train.inputs(), train.y)
    val_ds = None if val is None else ctx.engine.ArrayDataset(val.inputs(), val.y)
    weights = class_weights(train.y, float(pt.balance_power))
    settings = pt.as_dict() if val is not None else {**pt.as_dict(), "patience": 0}
    res = ctx.engine.fit(model, train_ds, val_ds, ctx, name=name, tag=tag,
                         train=CoreSettings.of(config).train.as_dict(), settings=settings,
                         metric=balanced_accuracy if val is not None else None, sample_weights=weights)
    return model, res  # res.model is model: the engine trains it in place


