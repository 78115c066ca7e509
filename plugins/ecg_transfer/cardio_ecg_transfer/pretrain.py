"""Pretraining on MIT-BIH: beat spectrograms -> ResNet -> AAMI classes, inter-patient (DS1 -> DS2).

Beats are cut around the reference annotations' beat positions (the standard inter-patient
protocol evaluates the classifier, not a QRS detector). Runs once per study; its weights file
lives in the run's checkpoints/ and its results go to the report.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix

from cardio import inner_split
from cardio.data import CardioError

from cardio_ecg_transfer import aami
from cardio_ecg_transfer.beat_images import beat_windows, highpass, input_spec, to_images
from cardio_ecg_transfer.records import load_mitdb
from cardio_ecg_transfer.resnet import build_resnet, save_weights

ENGINE_KEYS = ("epochs", "batch_size", "lr", "weight_decay", "optimizer", "scheduler", "grad_clip", "patience")
RESULTS_NAME = "pretrain_results.json"


def mitdb_dir(config: dict) -> Path:
    """data.mitdb_dir, or <repo>/../shared/data/mitdb (CARDIO_SHARED_DATA overrides the data root)."""
    if config["data"]["mitdb_dir"]:
        return Path(config["data"]["mitdb_dir"]).expanduser()
    root = os.environ.get("CARDIO_SHARED_DATA")
    if root:
        return Path(root) / "mitdb"
    return Path(__file__).resolve().parents[3].parent / "shared" / "data" / "mitdb"


def weights_path(ctx) -> Path:
    arch = ctx.config["pretrain"]["arch"]
    return Path(ctx.checkpoint_dir) / f"pretrained-{arch}.pt"


@dataclass
class BeatSet:
    """Beat images with their AAMI class and record."""

    x: np.ndarray
    y: np.ndarray
    record: np.ndarray
    population: np.ndarray  # beats per class in the records before any subsampling

    def counts(self) -> dict[str, int]:
        c = np.bincount(self.y, minlength=len(aami.AAMI_CLASSES))
        return {k: int(v) for k, v in zip(aami.AAMI_CLASSES, c)}


def _record_beats(root: Path, record: str, config: dict) -> tuple[np.ndarray, np.ndarray]:
    """(beat windows, AAMI class) at the annotated beats of one record."""
    data = config["data"]
    loaded = load_mitdb(root, records=[record], fs=int(data["fs"]), lead=data["mitdb_lead"])
    if not loaded:
        raise CardioError(f"MIT-BIH record {record} could not be read from {root}")
    name, sig, fs, ann_samples, ann_symbols = loaded[0]
    cls = aami.class_index(ann_symbols)
    keep = cls >= 0
    positions, cls = np.asarray(ann_samples)[keep], cls[keep]
    filtered = highpass(np.asarray(sig, dtype=np.float64), fs, float(config["preprocess"]["highpass_hz"]))
    beats, kept = beat_windows(filtered, positions, fs, config)
    at = np.searchsorted(positions, np.asarray(kept))
    if len(at) and (at.max() >= len(positions) or not np.array_equal(positions[at], kept)):
        raise CardioError(f"beat segmentation of MIT-BIH record {record} returned positions that are not annotated beats")
    return np.asarray(beats, dtype=np.float32), cls[at]


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
                   max_total: int | None, seed: int, progress=None, desc: str = "MIT-BIH") -> BeatSet:
    """Beat images of `records` (subsampled as asked), the same for every run with the same settings."""
    if not root.is_dir():
        raise CardioError(f"MIT-BIH directory {root} does not exist; set data.mitdb_dir or run "
                          f"`cardio data fetch mitdb --dir DIR`")
    beats, labels, names = [], [], []
    it = progress(records, desc=f"{desc} beats", total=len(records)) if progress else records
    for record in it:
        b, c = _record_beats(root, record, config)
        beats.append(b)
        labels.append(c)
        names.append(np.full(len(c), record))
    y = np.concatenate(labels)
    rec = np.concatenate(names)
    idx = _choose(y, max_per_class, max_total, np.random.default_rng(seed))
    windows = np.concatenate(beats)[idx]
    fs = float(config["data"]["fs"])
    x = to_images(windows, fs, config)
    population = np.bincount(y, minlength=len(aami.AAMI_CLASSES))
    return BeatSet(x=x, y=y[idx].astype(np.int64), record=rec[idx], population=population)


def cached_beat_set(root: Path, records: list[str], config: dict, cache_dir: Path, *, max_per_class, max_total,
                    seed: int, progress=None, desc: str = "MIT-BIH") -> BeatSet:
    """build_beat_set, kept in cache_dir under a key of everything that defines it."""
    key = json.dumps({"records": records, "input": input_spec(config, config["data"]["fs"]),
                      "lead": config["data"]["mitdb_lead"], "max_per_class": max_per_class,
                      "max_total": max_total, "seed": seed, "version": 2}, sort_keys=True)
    path = Path(cache_dir) / "ecg_transfer" / "mitdb" / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return BeatSet(z["x"], z["y"], z["record"], z["population"])
    out = build_beat_set(root, records, config, max_per_class=max_per_class, max_total=max_total, seed=seed,
                         progress=progress, desc=desc)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, x=out.x, y=out.y, record=out.record.astype(str), population=out.population)
    tmp.replace(path)
    return out


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


def balanced_accuracy(y_true: np.ndarray, outputs: np.ndarray) -> float:
    """Mean per-class sensitivity over the classes present: the early-stopping metric."""
    pred = np.asarray(outputs).argmax(axis=1)
    y_true = np.asarray(y_true)
    return float(np.mean([np.mean(pred[y_true == c] == c) for c in np.unique(y_true)]))


#: Classes averaged by the macro F1: Q has 15 beats in all of MIT-BIH once the paced records
#: are out (8 in DS1, 7 in DS2), so, as in most inter-patient studies, it is reported but not averaged.
MACRO_CLASSES = ("N", "S", "V", "F")


def classification_results(y_true: np.ndarray, pred: np.ndarray) -> dict:
    """Accuracy, per-class sensitivity (Se), positive predictivity (+P) and F1, macro F1, confusion matrix.

    Macro F1 averages N, S, V and F where they occur in the test set; `macro_f1_present` averages
    every class that occurs (Q too). A class never predicted has +P undefined (None).
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
            "macro_f1_present": float(np.mean([per_class[c]["f1"] for c in present])),
            "per_class": per_class, "confusion": cm.tolist(), "classes": list(aami.AAMI_CLASSES)}


def results_table(results: dict) -> pd.DataFrame:
    rows = [{"class": c, "n": v["support"], "Se": v["se"], "+P": v["ppv"], "F1": v["f1"]}
            for c, v in results["per_class"].items()]
    return pd.DataFrame(rows)


def plot_confusion(results: dict, path: Path, title: str) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(results["confusion"], dtype=float)
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    fig, ax = plt.subplots(figsize=(4.6, 4.0))
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    classes = results["classes"]
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference (AAMI)")
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=7,
                    color="white" if frac[i, j] > 0.5 else "black")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def pretrain(config: dict, ctx) -> Path:
    """Pretrain (or resume, or reuse) the ResNet on MIT-BIH; return the path of its weights file.

    With pretrain.weights_file set, that file is used and nothing is trained. The engine's
    checkpoint `pretrain` makes a killed pretraining resume; a finished one is not redone.
    """
    pt = config["pretrain"]
    if pt["weights_file"]:
        path = Path(pt["weights_file"]).expanduser()
        if not path.is_file():
            raise CardioError(f"pretrain.weights_file {path} does not exist")
        return path
    out = weights_path(ctx)
    if out.is_file() and (Path(ctx.checkpoint_dir) / RESULTS_NAME).is_file():
        return out
    root = mitdb_dir(config)
    train_records, test_records = aami.split_records(pt["split"], pt["records"])
    ctx.log.info("pretraining %s on MIT-BIH %d DS1 records, testing on %d DS2 records",
                 pt["arch"], len(train_records), len(test_records))
    train = cached_beat_set(root, train_records, config, ctx.cache_dir, max_per_class=pt["max_beats_per_class"],
                            max_total=None, seed=ctx.seed, progress=ctx.progress, desc="DS1")
    test = cached_beat_set(root, test_records, config, ctx.cache_dir, max_per_class=None,
                           max_total=pt["max_eval_beats"], seed=ctx.seed + 1, progress=ctx.progress, desc="DS2")
    model, fit = train_classifier(train, config, ctx)
    logits = ctx.engine.predict(model, ctx.engine.ArrayDataset(test.x), ctx)
    shift = prior_shift(train, float(pt["balance_power"])) if pt["prior_correction"] else np.zeros(logits.shape[1])
    pred = (logits + shift[None, :]).argmax(axis=1)
    results = classification_results(test.y, pred)
    results.update({"arch": pt["arch"], "train_records": train_records, "test_records": test_records,
                    "train_counts": train.counts(), "test_counts": test.counts(),
                    "max_beats_per_class": pt["max_beats_per_class"], "max_eval_beats": pt["max_eval_beats"],
                    "prior_correction": [float(v) for v in shift], "epochs_run": len(fit.history), "best_epoch": fit.best_epoch, "history": fit.history,
                    "input": input_spec(config, config["data"]["fs"]), "input_shape": list(train.x.shape[1:])})
    if ctx.is_main:
        save_weights(model, out, meta={"input": input_spec(config, config["data"]["fs"]),
                                       "classes": list(aami.AAMI_CLASSES), "task": "AAMI beat classes, MIT-BIH DS1"})
        tmp = Path(ctx.checkpoint_dir) / (RESULTS_NAME + ".tmp")
        tmp.write_text(json.dumps(results, indent=2))
        tmp.replace(Path(ctx.checkpoint_dir) / RESULTS_NAME)
        plot_confusion(results, ctx.figure_path("pretrain_confusion"),
                       f"{pt['arch']} on MIT-BIH DS2 (acc {results['accuracy']:.3f}, macro F1 {results['macro_f1']:.3f})")
    if ctx.world_size > 1:
        import torch.distributed as dist
        dist.barrier()
    ctx.log.info("pretraining: DS2 accuracy %.3f, macro F1 %.3f, V Se %s", results["accuracy"], results["macro_f1"],
                 results["per_class"]["V"]["se"])
    return out


def train_classifier(train: BeatSet, config: dict, ctx):
    """Fit the 5-class ResNet with the core's loop; early stopping on a record-grouped part of DS1."""
    pt = config["pretrain"]
    if len(np.unique(train.y)) < 2:
        raise CardioError(f"the MIT-BIH training beats hold one class only ({train.counts()}); use more records")
    model = build_resnet(pt["arch"], n_outputs=len(aami.AAMI_CLASSES), seed=ctx.seed)
    rows = np.arange(len(train.y))
    val_ds = None
    if pt["val_fraction"]:
        table = pd.DataFrame({"record_id": np.arange(len(rows)).astype(str), "patient_id": train.record})
        rows, val_rows = inner_split(table, rows, fraction=float(pt["val_fraction"]), seed=ctx.seed)
        val_ds = ctx.engine.ArrayDataset(train.x[val_rows], train.y[val_rows])
    train_ds = ctx.engine.ArrayDataset(train.x[rows], train.y[rows])
    weights = class_weights(train.y[rows], float(pt["balance_power"]))
    settings = {k: pt[k] for k in ENGINE_KEYS}
    res = ctx.engine.fit(model, train_ds, val_ds, ctx, name="pretrain", settings=settings,
                         metric=balanced_accuracy if val_ds is not None else None, sample_weights=weights)
    return res.model, res


def read_results(ctx) -> dict | None:
    path = Path(ctx.checkpoint_dir) / RESULTS_NAME
    return json.loads(path.read_text()) if path.is_file() else None
