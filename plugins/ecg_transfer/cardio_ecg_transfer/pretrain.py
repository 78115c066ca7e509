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
import pandas as pd
from sklearn.metrics import confusion_matrix

from cardio import Cache, CardioError, write_text_atomic
from cardio.figures import Figure, subplots
from cardio.stats import bootstrap_metric, format_interval
from cardio_ecg_transfer import aami, beat_context
from cardio_ecg_transfer.beat_images import beat_windows, highpass, input_spec, to_images
from cardio_ecg_transfer.records import ensure_mitdb, load_mitdb, mitdb_dir
from cardio_ecg_transfer.resnet import build_resnet, save_weights

RESULTS_NAME = "pretrain_results.json"
FIGURE_NAME = "pretrain_confusion"
#: What the report reads from the results file of a finished pretraining.
RESULT_KEYS = ("arch", "accuracy", "macro_f1", "macro_f1_classes", "n", "per_class", "train_records", "val_records",
               "train_counts", "val_counts", "epochs_run", "best_epoch", "max_beats_per_class", "max_eval_beats")
#: Version of the cached MIT-BIH beat sets (bump when their content changes).
BEAT_SET_VERSION = 4


@dataclass
class Pretrained:
    """What pretraining hands on: the weights file, and the DS1 validation results and confusion figure of the
    pretraining this run did (None for both when pretrain.weights_file gave the weights)."""

    weights: Path
    results: dict | None = None
    figure: Path | None = None


def weights_path(config: dict, ctx) -> Path:
    """checkpoints/pretrained-<arch>.pt of the run."""
    return Path(ctx.checkpoint_dir) / f"pretrained-{config['ecg_transfer']['pretrain']['arch']}.pt"


@dataclass
class BeatSet:
    """Beat images with their AAMI class, record and side features (beat_context)."""

    x: np.ndarray
    y: np.ndarray
    record: np.ndarray
    population: np.ndarray  # beats per class in the records before any subsampling
    side: np.ndarray  # (n, k) RR / shape features; k = 0 without side features

    def inputs(self, rows: np.ndarray | slice = slice(None)):
        """The model input of these rows: the images, or (images, side features)."""
        return (self.x[rows], self.side[rows]) if self.side.shape[1] else self.x[rows]

    def counts(self) -> dict[str, int]:
        c = np.bincount(self.y, minlength=len(aami.AAMI_CLASSES))
        return {k: int(v) for k, v in zip(aami.AAMI_CLASSES, c)}


def _record_beats(root: Path, record: str, config: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(beat windows, AAMI class, side features) at the annotated beats of one record."""
    data = config["ecg_transfer"]
    loaded = load_mitdb(root, records=[record], fs=int(data["fs"]), lead=data["mitdb_lead"])
    if not loaded:
        raise CardioError(f"MIT-BIH record {record} could not be read from {root}")
    name, sig, fs, ann_samples, ann_symbols = loaded[0]
    cls = aami.class_index(ann_symbols)
    keep = cls >= 0
    positions, cls = np.asarray(ann_samples)[keep], cls[keep]
    cutoff = float(config["ecg_transfer"]["preprocess"]["highpass_hz"])
    filtered = highpass(np.asarray(sig, dtype=np.float64), fs, cutoff)
    beats, kept = beat_windows(filtered, positions, fs, config)
    at = np.searchsorted(positions, np.asarray(kept))
    if len(at) and (at.max() >= len(positions) or not np.array_equal(positions[at], kept)):
        raise CardioError(f"beat segmentation of MIT-BIH record {record} returned positions "
                          "that are not annotated beats")
    kinds = config["ecg_transfer"]["pretrain"]["side_features"]
    channels = None
    if "two_lead" in kinds:  # both MIT-BIH channels, high-passed the same way; the one read above is reused
        channels = tuple(filtered if c == data["mitdb_lead"] else highpass(np.asarray(
            load_mitdb(root, records=[record], fs=int(data["fs"]), lead=c)[0][1], dtype=np.float64), fs, cutoff)
            for c in (0, 1))
    side = beat_context.side_features(filtered, positions, fs, kinds, channels)
    return np.asarray(beats, dtype=np.float32), cls[at], side[at]


def _choose(y: np.ndarray, max_per_class: int | None, max_total: int | None, rng: np.random.Generator) -> np.ndarray:
    """Indices of a subset: at most max_per_class beats of each class, or a uniform sample of max_total."""
    idx = np.arange(len(y))
    if max_per_class:
        parts = []
        for c in np.unique(y):
            members = idx[y == c]
            parts.append(members if len(members) <= max_per_class else
                         rng.choice(members, size=int(max_per_class), replace=False))
        idx = np.sort(np.concatenate(parts))
    if max_total and len(idx) > max_total:
        idx = np.sort(rng.choice(idx, size=int(max_total), replace=False))
    return idx


def build_beat_set(root: Path, records: list[str], config: dict, *, max_per_class: int | None,
                   max_total: int | None, seed: int, progress=None, desc: str = "MIT-BIH",
                   test_look: bool = False) -> BeatSet:
    """Beat images of `records` (subsampled as asked), the same for every run with the same settings.

    DS2 records are refused unless `test_look` (only ds2_look of benchmarks/aami_interpatient.py, which ledgers
    the look, sets it).
    """
    if not test_look and set(records) & set(aami.DS2):
        raise CardioError(f"DS2 record(s) {sorted(set(records) & set(aami.DS2))} asked for outside the ledgered "
                          "DS2 look (benchmarks/aami_interpatient.py --final)")
    if not root.is_dir():
        raise CardioError(f"MIT-BIH directory {root} does not exist; set ecg_transfer.mitdb_dir or run "
                          f"`cardio data fetch mitdb --dir {root}`")
    beats, labels, names, sides = [], [], [], []
    it = progress(records, desc=f"{desc} beats", total=len(records)) if progress else records
    for record in it:
        b, c, side = _record_beats(root, record, config)
        beats.append(b)
        labels.append(c)
        names.append(np.full(len(c), record))
        sides.append(side)
    y = np.concatenate(labels)
    rec = np.concatenate(names)
    idx = _choose(y, max_per_class, max_total, np.random.default_rng(seed))
    windows = np.concatenate(beats)[idx]
    fs = float(config["ecg_transfer"]["fs"])
    x = to_images(windows, fs, config)
    population = np.bincount(y, minlength=len(aami.AAMI_CLASSES))
    return BeatSet(x=x, y=y[idx].astype(np.int64), record=rec[idx], population=population,
                   side=np.concatenate(sides)[idx])


def cached_beat_set(root: Path, records: list[str], config: dict, cache: Cache, *, max_per_class, max_total,
                    seed: int, progress=None, desc: str = "MIT-BIH", test_look: bool = False) -> BeatSet:
    """build_beat_set, kept in the run's cache (ecg_transfer/mitdb) under a key of everything that defines it."""
    key = {"records": records, "input": input_spec(config, config["ecg_transfer"]["fs"]),
           "lead": config["ecg_transfer"]["mitdb_lead"], "max_per_class": max_per_class,
           "max_total": max_total, "seed": seed, "side": list(config["ecg_transfer"]["pretrain"]["side_features"])}

    def build(tmp: Path) -> None:
        out = build_beat_set(root, records, config, max_per_class=max_per_class, max_total=max_total, seed=seed,
                             progress=progress, desc=desc, test_look=test_look)
        np.savez(tmp, x=out.x, y=out.y, record=out.record.astype(str), population=out.population, side=out.side)

    path = cache.get("ecg_transfer/mitdb", key, build, suffix=".npz", version=BEAT_SET_VERSION)
    with np.load(path, allow_pickle=False) as z:
        return BeatSet(z["x"], z["y"], z["record"], z["population"], z["side"])


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


def weighted_macro_f1(y_true: np.ndarray, pred: np.ndarray, weights: np.ndarray) -> float:
    """Macro F1 over MACRO_CLASSES present in y_true, each beat counted with its weight."""
    cm = confusion_matrix(y_true, pred, labels=list(range(len(aami.AAMI_CLASSES))), sample_weight=weights)
    f1 = [2 * cm[i, i] / (cm[i].sum() + cm[:, i].sum())
          for i, c in enumerate(aami.AAMI_CLASSES) if c in MACRO_CLASSES and cm[i].sum() > 0]
    return float(np.mean(f1)) if f1 else float("nan")


def choose_prior_strength(logits: np.ndarray, y: np.ndarray, shift: np.ndarray,
                          weights: np.ndarray) -> tuple[float, dict[str, float]]:
    """The strength of PRIOR_STRENGTHS whose shifted logits give the best weighted macro F1 (ties: nearest 1)."""
    scores = {s: weighted_macro_f1(y, (logits + s * shift[None, :]).argmax(axis=1), weights) for s in PRIOR_STRENGTHS}
    best = max(scores, key=lambda s: (np.nan_to_num(scores[s], nan=-1.0), -abs(s - 1.0)))
    return float(best), {f"{s:g}": float(v) for s, v in scores.items()}


def balanced_accuracy(y_true: np.ndarray, outputs: np.ndarray) -> float:
    """Mean per-class sensitivity over the classes present: the early-stopping metric."""
    pred = np.asarray(outputs).argmax(axis=1)
    y_true = np.asarray(y_true)
    return float(np.mean([np.mean(pred[y_true == c] == c) for c in np.unique(y_true)]))


#: Classes averaged by the macro F1: Q has 15 beats in all of MIT-BIH once the paced records
#: are out (8 in DS1, 7 in DS2), so, as in most inter-patient studies, it is reported but not averaged.
MACRO_CLASSES = ("N", "S", "V", "F")


def classification_results(y_true: np.ndarray, pred: np.ndarray) -> dict:
    """Accuracy, per-class sensitivity (Se), positive predictivity (+P) and F1, macro F1, balanced accuracy,
    confusion matrix.

    Macro F1 and balanced accuracy (mean Se) average N, S, V and F where they occur in the test set;
    `macro_f1_present` averages every class that occurs (Q too). A class never predicted has +P
    undefined (None) and F1 0.
    """
    k = len(aami.AAMI_CLASSES)
    cm = confusion_matrix(y_true, pred, labels=list(range(k)))
    per_class = {}
    for i, name in enumerate(aami.AAMI_CLASSES):
        tp, support, predicted = cm[i, i], cm[i].sum(), cm[:, i].sum()
        se = tp / support if support else None
        ppv = tp / predicted if predicted else None
        f1 = 2 * tp / (support + predicted) if support + predicted else None
        per_class[name] = {"support": int(support), "predicted": int(predicted),
                           "se": None if se is None else float(se), "ppv": None if ppv is None else float(ppv),
                           "f1": None if f1 is None else float(f1)}
    macro = [c for c in MACRO_CLASSES if per_class[c]["support"]]
    present = [c for c in aami.AAMI_CLASSES if per_class[c]["support"]]
    return {"n": int(len(y_true)), "accuracy": float(np.mean(y_true == pred)),
            "macro_f1": float(np.mean([per_class[c]["f1"] for c in macro])), "macro_f1_classes": macro,
            "balanced_accuracy": float(np.mean([per_class[c]["se"] for c in macro])),
            "macro_f1_present": float(np.mean([per_class[c]["f1"] for c in present])),
            "per_class": per_class, "confusion": cm.tolist(), "classes": list(aami.AAMI_CLASSES)}


def always_n(y_true: np.ndarray) -> dict:
    """classification_results of the baseline that calls every beat N."""
    return classification_results(np.asarray(y_true), np.zeros(len(y_true), dtype=np.int64))


# Metrics of a stack of per-record confusion matrices (the record bootstrap resamples records).
def _accuracy(cms: np.ndarray) -> float:
    cm = cms.sum(axis=0)
    return float(np.trace(cm) / cm.sum())


def _class_se(c: int):
    def se(cms: np.ndarray) -> float:
        cm = cms.sum(axis=0)
        return float(cm[c, c] / cm[c].sum()) if cm[c].sum() else float("nan")
    return se


def _class_ppv(c: int):
    def ppv(cms: np.ndarray) -> float:
        cm = cms.sum(axis=0)
        return float(cm[c, c] / cm[:, c].sum()) if cm[:, c].sum() else float("nan")
    return ppv


def _macro(classes: list[int], kind: str):
    def metric(cms: np.ndarray) -> float:
        cm = cms.sum(axis=0)
        vals = []
        for c in classes:
            if not cm[c].sum():
                continue
            vals.append(cm[c, c] / cm[c].sum() if kind == "se" else 2 * cm[c, c] / (cm[c].sum() + cm[:, c].sum()))
        return float(np.mean(vals)) if vals else float("nan")
    return metric


def record_bootstrap(y_true: np.ndarray, pred: np.ndarray, record: np.ndarray, config: dict, seed: int) -> dict:
    """CIs (stats.level, 95% by default) of accuracy, macro F1, balanced accuracy and per-class Se and +P that
    resample test records, not beats.

    Beats of one record are alike, so a beat-level interval would be far too narrow; the
    record (patient) is the unit that varies between studies. Percentile bootstrap of
    cardio.stats over per-record confusion matrices.
    """
    labels = list(range(len(aami.AAMI_CLASSES)))
    names = np.unique(record)
    if len(names) < 2:  # one record: nothing to resample (the report says there is no interval)
        return {"unit": "record", "n_records": int(len(names)), "estimates": {},
                "skipped": "a record-level interval needs at least 2 records"}
    cms = np.stack([confusion_matrix(y_true[record == r], pred[record == r], labels=labels) for r in names])
    st = config["stats"]
    kw = dict(n_resamples=int(st["n_resamples"]), seed=seed, level=float(st["level"]))
    macro = [aami.AAMI_CLASSES.index(c) for c in MACRO_CLASSES]
    out = {"accuracy": bootstrap_metric(_accuracy, cms, metric="accuracy", **kw).to_dict(),
           "macro_f1": bootstrap_metric(_macro(macro, "f1"), cms, metric="macro_f1", **kw).to_dict(),
           "balanced_accuracy": bootstrap_metric(_macro(macro, "se"), cms, metric="balanced_accuracy", **kw).to_dict()}
    for i, c in enumerate(aami.AAMI_CLASSES):
        if c in MACRO_CLASSES and cms[:, i].sum():
            out[f"se_{c}"] = bootstrap_metric(_class_se(i), cms, metric=f"se_{c}", **kw).to_dict()
        if c in MACRO_CLASSES and cms[:, :, i].sum():
            out[f"ppv_{c}"] = bootstrap_metric(_class_ppv(i), cms, metric=f"ppv_{c}", **kw).to_dict()
    return {"unit": "record", "n_records": int(len(names)), "estimates": out}


def ci_text(results: dict, key: str) -> str:
    """'[lo, hi]' of a record-bootstrap CI in results, or '' where there is none."""
    e = (results.get("ci") or {}).get("estimates", {}).get(key) or {}
    return format_interval(e.get("ci_low"), e.get("ci_high"))


def results_table(results: dict) -> pd.DataFrame:
    level = (results.get("ci") or {}).get("estimates", {}).get("accuracy", {}).get("level", 0.95)
    rows = [{"class": c, "n": v["support"], "Se": v["se"], f"Se {level:.0%} CI (records)": ci_text(results, f"se_{c}"),
             "+P": v["ppv"], f"+P {level:.0%} CI (records)": ci_text(results, f"ppv_{c}"), "F1": v["f1"]}
            for c, v in results["per_class"].items()]
    return pd.DataFrame(rows)


def confusion_figure(results: dict, title: str) -> Figure:
    """A confusion matrix: counts with the row-normalized rate (the fraction of each reference class) in every
    cell, shaded by that rate; a class the model never predicted is flagged on its axis label."""
    cm = np.asarray(results["confusion"], dtype=float)
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    fig, ax = subplots(figsize=(5.2, 4.4), layout="tight")
    image = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the reference class")
    classes = results["classes"]
    never = cm.sum(axis=0) == 0
    ax.set_xticks(range(len(classes)), [f"{c}\n(never)" if n else c for c, n in zip(classes, never)])
    ax.set_yticks(range(len(classes)), [f"{c} (n={int(r)})" for c, r in zip(classes, rows[:, 0])])
    ax.set_xlabel("predicted AAMI class")
    ax.set_ylabel("reference AAMI class (beats)")
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{int(cm[i, j])}\n{frac[i, j]:.0%}" if rows[i, 0] else "–", ha="center", va="center",
                    fontsize=6.5, color="white" if frac[i, j] > 0.5 else "black")
    ax.set_title(title, fontsize=9)
    return fig


def prepare(config: dict, ctx) -> Pretrained | None:
    """The prepare stage: pretrain (or take pretrain.weights_file) when a transfer model is asked for, else None."""
    if not (config["ecg_transfer"]["pretrain"]["enabled"] and config["ecg_transfer"]["finetune"]["transfer"]):
        return None
    return pretrain(config, ctx)


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
    return ensure_mitdb(mitdb_dir(config["ecg_transfer"]["mitdb_dir"], ctx.cache_dir), progress=ctx.progress)


def split_fit_val(records: list[str], config: dict, seed: int) -> tuple[list[str], list[str]]:
    """(fitting records, validation records): DS1 records split by record (grouped: a record's beats stay
    together), pretrain.val_fraction of them for validation, at least one on each side."""
    frac = float(config["ecg_transfer"]["pretrain"]["val_fraction"])
    if not 0 < frac < 1:
        raise CardioError(f"ecg_transfer.pretrain.val_fraction={frac:g} must be in (0, 1): held-out DS1 records "
                          "stop the training, choose the prior strength and are what a run reports")
    if len(records) < 2:
        raise CardioError(f"pretraining needs at least 2 DS1 records (fitting and validation), got {records}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    n_val = min(len(records) - 1, max(1, int(round(frac * len(records)))))
    val = set(rng.choice(records, size=n_val, replace=False).tolist())
    return [r for r in records if r not in val], [r for r in records if r in val]


@dataclass
class Fitted:
    """A pretrained network with its logit shift, and what it was fitted and validated on."""

    model: object
    shift: np.ndarray
    strength: float
    strength_scores: dict
    fit: object
    train: BeatSet
    val: BeatSet
    fit_records: list[str]
    val_records: list[str]


def fit_pretraining(root: Path, records: list[str], config: dict, ctx, seed: int | None = None,
                    name: str = "pretrain") -> Fitted:
    """Fit the 5-class ResNet on `records` (DS1 or a part of it): a grouped fitting/validation split of the
    records, class-capped fitting beats, early stopping and the prior strength on the validation records.
    `name` names the engine's checkpoint (a rerun resumes from it)."""
    pt = config["ecg_transfer"]["pretrain"]
    seed = ctx.seed if seed is None else int(seed)
    fit_records, val_records = split_fit_val(records, config, seed)
    train = cached_beat_set(root, fit_records, config, ctx.cache, max_per_class=pt["max_beats_per_class"],
                            max_total=None, seed=seed, progress=ctx.progress, desc="DS1 fitting")
    val = cached_beat_set(root, val_records, config, ctx.cache, max_per_class=None,
                          max_total=pt["max_eval_beats"], seed=seed + 1, progress=ctx.progress, desc="DS1 validation")
    model, fit = train_classifier(train, val, config, ctx, seed, name)
    shift, strength, scores = prior_correction(model, train, val, config, ctx)
    return Fitted(model, shift, strength, scores, fit, train, val, fit_records, val_records)


def predict(fitted: Fitted, beats: BeatSet, ctx) -> np.ndarray:
    """AAMI class index of every beat: the network's logits plus the prior shift."""
    logits = ctx.engine.predict(fitted.model, ctx.engine.ArrayDataset(beats.inputs()), ctx)
    return (logits + fitted.shift[None, :]).argmax(axis=1)


def pretrain(config: dict, ctx) -> Pretrained:
    """Pretrain (or resume, or reuse) the ResNet on MIT-BIH DS1; return its weights file and DS1 validation results.

    With pretrain.weights_file set, that file is used and nothing is trained. The engine's
    checkpoint `pretrain` makes a killed pretraining resume; a finished one is not redone (its
    results are read back from checkpoints/). Rank 0 alone writes files; every rank returns the
    same Pretrained, and the core waits for all ranks before the folds read the weights.
    """
    pt = config["ecg_transfer"]["pretrain"]
    if pt["weights_file"]:
        path = Path(pt["weights_file"]).expanduser()
        if not path.is_file():
            raise CardioError(f"ecg_transfer.pretrain.weights_file {path} does not exist")
        return Pretrained(weights=path)
    out = weights_path(config, ctx)
    results_file = Path(ctx.checkpoint_dir) / RESULTS_NAME
    figure = ctx.figure_path(FIGURE_NAME)
    if out.is_file() and results_file.is_file():
        return Pretrained(weights=out, results=_read_results(results_file),
                          figure=figure if figure.is_file() else None)
    records = aami.ds1_records(pt["records"])
    root = mitdb_root(config, ctx)
    ctx.log.info("pretraining %s on MIT-BIH DS1 (%d records; DS2 is not used)", pt["arch"], len(records))
    fitted = fit_pretraining(root, records, config, ctx)
    pred = predict(fitted, fitted.val, ctx)
    results = classification_results(fitted.val.y, pred)
    results["ci"] = record_bootstrap(fitted.val.y, pred, fitted.val.record, config, seed=ctx.seed)
    results["always_n"] = always_n(fitted.val.y)
    results.update(describe(fitted, config))
    if ctx.is_main:
        save_weights(fitted.model, out, meta={"input": input_spec(config, config["ecg_transfer"]["fs"]),
                                              "classes": list(aami.AAMI_CLASSES),
                                              "task": "AAMI beat classes, MIT-BIH DS1"})
        write_text_atomic(results_file, json.dumps(results, indent=2))
        ctx.save_figure(confusion_figure(results, f"{pt['arch']} on held-out DS1 records (macro F1 "
                                                  f"{results['macro_f1']:.3f})"), FIGURE_NAME)
    ctx.log.info("pretraining: DS1 validation macro F1 %.3f, balanced accuracy %.3f, V Se %s, S Se %s",
                 results["macro_f1"], results["balanced_accuracy"], results["per_class"]["V"]["se"],
                 results["per_class"]["S"]["se"])
    return Pretrained(weights=out, results=results, figure=figure)


def describe(fitted: Fitted, config: dict) -> dict:
    """The settings and choices of a fitted pretraining, for its results file and the ledger."""
    pt = config["ecg_transfer"]["pretrain"]
    return {"arch": pt["arch"], "evaluated_on": "DS1 validation records", "train_records": fitted.fit_records,
            "val_records": fitted.val_records, "train_counts": fitted.train.counts(), "val_counts": fitted.val.counts(),
            "max_beats_per_class": pt["max_beats_per_class"], "max_eval_beats": pt["max_eval_beats"],
            "prior_correction": [float(v) for v in fitted.shift], "prior_strength": fitted.strength,
            "prior_strength_scores": fitted.strength_scores, "epochs_run": len(fitted.fit.history),
            "best_epoch": fitted.fit.best_epoch, "history": fitted.fit.history,
            "input": input_spec(config, config["ecg_transfer"]["fs"]), "input_shape": list(fitted.train.x.shape[1:]),
            "side_features": beat_context.names(pt["side_features"])}


def prior_correction(model, train: BeatSet, val: BeatSet, config: dict, ctx
                     ) -> tuple[np.ndarray, float, dict[str, float]]:
    """(logit shift, strength, macro F1 per strength tried): the label-shift correction of the test logits.

    Zero without pretrain.prior_correction; the strength is pretrain.prior_strength, or the one of
    PRIOR_STRENGTHS best on the DS1 validation records (their natural class mix; DS2 is never used).
    """
    pt = config["ecg_transfer"]["pretrain"]
    if not pt["prior_correction"]:
        return np.zeros(len(aami.AAMI_CLASSES)), 0.0, {}
    shift = prior_shift(train, float(pt["balance_power"]))
    strength = 1.0 if pt["prior_strength"] is None else float(pt["prior_strength"])
    strength_scores: dict[str, float] = {}
    if pt["prior_strength"] is None and len(val.y):
        val_logits = ctx.engine.predict(model, ctx.engine.ArrayDataset(val.inputs()), ctx)
        strength, strength_scores = choose_prior_strength(val_logits, val.y, shift, np.ones(len(val.y)))
        ctx.log.info("prior correction strength %g (DS1 validation macro F1 %s)", strength,
                     {k: round(v, 3) for k, v in strength_scores.items()})
    return strength * shift, strength, strength_scores


def train_classifier(train: BeatSet, val: BeatSet | None, config: dict, ctx, seed: int, name: str = "pretrain"):
    """(model, fit result): the 5-class ResNet fitted by the core's loop on the fitting records' beats,
    early-stopped on the validation records' balanced accuracy (val None: every epoch runs, no stopping)."""
    pt = config["ecg_transfer"]["pretrain"]
    if len(np.unique(train.y)) < 2:
        raise CardioError(f"the MIT-BIH training beats hold one class only ({train.counts()}); use more records")
    model = build_resnet(pt["arch"], n_outputs=len(aami.AAMI_CLASSES), seed=seed, n_side=train.side.shape[1])
    if model.n_side:
        model.set_side_scaling(train.side)
    train_ds = ctx.engine.ArrayDataset(train.inputs(), train.y)
    val_ds = None if val is None else ctx.engine.ArrayDataset(val.inputs(), val.y)
    weights = class_weights(train.y, float(pt["balance_power"]))
    settings = pt if val is not None else {**pt, "patience": 0}
    res = ctx.engine.fit(model, train_ds, val_ds, ctx, name=name, settings=settings,
                         metric=balanced_accuracy if val is not None else None, sample_weights=weights)
    return res.model, res


def subset(beats: BeatSet, rows: np.ndarray) -> BeatSet:
    """The beats of `rows` (population kept: it describes the records, not the subset)."""
    return BeatSet(beats.x[rows], beats.y[rows], beats.record[rows], beats.population, beats.side[rows])


#: Classes the side-feature model is fitted on; Q (8 DS1 beats) would be a class of a handful of points.
SIDE_MODEL_CLASSES = ("N", "S", "V", "F")


#: Classifiers a side model of the fused protocol may be (pretrain.side_models[*].model).
SIDE_MODELS = ("logistic", "boosting")


@dataclass
class SideModel:
    """One fitted side classifier of the fused protocol and the side-feature columns it reads."""

    columns: np.ndarray
    model: object


def fit_side_model(beats: BeatSet, kind: str = "logistic", columns: np.ndarray | None = None,
                   seed: int = 0) -> SideModel:
    """Class-balanced classifier of the side features of `beats` (N, S, V, F; `columns` of them, all by default).

    "logistic" is the linear, de Chazal-like model on standardized features: RR intervals relative to
    the record's own rhythm find S beats that the spectrogram alone cannot tell from N. "boosting" is
    scikit-learn's histogram gradient boosting, which finds interactions such as "wide and unlike the
    record's beat on either channel". Balanced class weights give either the same (uniform) class prior
    as the balanced CNN, so their log-probabilities add.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind not in SIDE_MODELS:
        raise CardioError(f"ecg_transfer.pretrain.side_models: model {kind!r} is not known; use one of {SIDE_MODELS}")
    if not beats.side.shape[1]:
        raise CardioError("the side-feature model needs ecg_transfer.pretrain.side_features")
    columns = np.arange(beats.side.shape[1]) if columns is None else np.asarray(columns, dtype=np.int64)
    keep = np.isin(beats.y, [aami.AAMI_CLASSES.index(c) for c in SIDE_MODEL_CLASSES])
    if kind == "logistic":
        model = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=2000))
    else:
        model = HistGradientBoostingClassifier(class_weight="balanced", max_iter=200, max_leaf_nodes=15,
                                               early_stopping=False, random_state=int(seed))
    return SideModel(columns, model.fit(beats.side[keep][:, columns], beats.y[keep]))


def fit_side_models(beats: BeatSet, config: dict, seed: int = 0) -> list[SideModel]:
    """Every side model of pretrain.side_models, each on the columns of its feature kinds."""
    pt = config["ecg_transfer"]["pretrain"]
    specs = pt.get("side_models") or [{"model": "logistic", "features": list(pt["side_features"])}]
    all_names = beat_context.names(pt["side_features"])
    fitted = []
    for spec in specs:
        if not isinstance(spec, dict) or set(spec) != {"model", "features"}:
            raise CardioError("ecg_transfer.pretrain.side_models: each entry is {model: ..., features: [...]}, "
                              f"got {spec!r}")
        missing = [k for k in spec["features"] if k not in pt["side_features"]]
        if missing:
            raise CardioError(f"ecg_transfer.pretrain.side_models: features {missing} are not in "
                              f"ecg_transfer.pretrain.side_features {list(pt['side_features'])}")
        wanted = set(beat_context.names(spec["features"]))
        columns = np.array([i for i, n in enumerate(all_names) if n in wanted])
        fitted.append(fit_side_model(beats, spec["model"], columns, seed=seed))
    return fitted


def side_log_proba(models: SideModel | list[SideModel], beats: BeatSet) -> np.ndarray:
    """(n, 5) summed log-probabilities of the side models over AAMI_CLASSES (-30 for a class one was not fitted on)."""
    total = np.zeros((len(beats.y), len(aami.AAMI_CLASSES)))
    for m in [models] if isinstance(models, SideModel) else models:
        out = np.full_like(total, -30.0)
        # log of predict_proba: gradient boosting has no predict_log_proba; the floor keeps a 0 finite
        out[:, m.model.classes_] = np.log(np.maximum(m.model.predict_proba(beats.side[:, m.columns]), 1e-13))
        total += out
    return total
