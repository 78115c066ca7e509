"""MIT-BIH beat sets for pretraining: beats of chosen records as spectrogram images with their AAMI classes,
subsampled per class, cached by their settings; and the record-level fit/validation split of DS1."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cardio import Cache, CardioError
from cardio_ecg_transfer import aami, beat_context
from cardio_ecg_transfer.beat_images import beat_windows, highpass, input_spec, to_images
from cardio_ecg_transfer.mitdb import load_mitdb
from cardio_ecg_transfer.settings import EcgSettings

#: Version of the cached MIT-BIH beat sets (bump when their content changes).
BEAT_SET_VERSION = 4


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
    s = EcgSettings.of(config)
    loaded = load_mitdb(root, records=[record], fs=s.fs, lead=s.mitdb_lead)
    if not loaded:
        raise CardioError(f"MIT-BIH record {record} could not be read from {root}")
    name, sig, fs, ann_samples, ann_symbols = loaded[0]
    cls = aami.class_index(ann_symbols)
    keep = cls >= 0
    positions, cls = np.asarray(ann_samples)[keep], cls[keep]
    cutoff = float(s.preprocess.highpass_hz)
    filtered = highpass(np.asarray(sig, dtype=np.float64), fs, cutoff)
    beats, kept = beat_windows(filtered, positions, fs, config)
    at = np.searchsorted(positions, np.asarray(kept))
    if len(at) and (at.max() >= len(positions) or not np.array_equal(positions[at], kept)):
        raise CardioError(f"beat segmentation of MIT-BIH record {record} returned positions "
                          "that are not annotated beats")
    kinds = list(s.pretrain.side_features)
    channels: tuple[np.ndarray, np.ndarray] | None = None
    if "two_lead" in kinds:  # both MIT-BIH channels, high-passed the same way; the one read above is reused
        first, second = (filtered if c == s.mitdb_lead else highpass(np.asarray(
            load_mitdb(root, records=[record], fs=s.fs, lead=c)[0][1], dtype=np.float64), fs, cutoff)
            for c in (0, 1))
        channels = (first, second)
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
    fs = float(EcgSettings.of(config).fs)
    x = to_images(windows, fs, config)
    population = np.bincount(y, minlength=len(aami.AAMI_CLASSES))
    return BeatSet(x=x, y=y[idx].astype(np.int64), record=rec[idx], population=population,
                   side=np.concatenate(sides)[idx])


def cached_beat_set(root: Path, records: list[str], config: dict, cache: Cache, *, max_per_class, max_total,
                    seed: int, progress=None, desc: str = "MIT-BIH", test_look: bool = False) -> BeatSet:
    """build_beat_set, kept in the run's cache (ecg_transfer/mitdb) under a key of everything that defines it."""
    s = EcgSettings.of(config)
    key = {"records": records, "input": input_spec(config, s.fs), "lead": s.mitdb_lead, "max_per_class": max_per_class,
           "max_total": max_total, "seed": seed, "side": list(s.pretrain.side_features)}

    def build(tmp: Path) -> None:
        out = build_beat_set(root, records, config, max_per_class=max_per_class, max_total=max_total, seed=seed,
                             progress=progress, desc=desc, test_look=test_look)
        np.savez(tmp, x=out.x, y=out.y, record=out.record.astype(str), population=out.population, side=out.side)

    path = cache.get("ecg_transfer/mitdb", key, build, suffix=".npz", version=BEAT_SET_VERSION)
    with np.load(path, allow_pickle=False) as z:
        return BeatSet(z["x"], z["y"], z["record"], z["population"], z["side"])


def split_fit_val(records: list[str], config: dict, seed: int) -> tuple[list[str], list[str]]:
    """(fitting records, validation records): DS1 records split by record (grouped: a record's beats stay
    together), pretrain.val_fraction of them for validation, at least one on each side."""
    frac = float(EcgSettings.of(config).pretrain.val_fraction)
    if not 0 < frac < 1:
        raise CardioError(f"ecg_transfer.pretrain.val_fraction={frac:g} must be in (0, 1): held-out DS1 records "
                          "stop the training, choose the prior strength and are what a run reports")
    if len(records) < 2:
        raise CardioError(f"pretraining needs at least 2 DS1 records (fitting and validation), got {records}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    n_val = min(len(records) - 1, max(1, int(round(frac * len(records)))))
    val = set(rng.choice(records, size=n_val, replace=False).tolist())
    return [r for r in records if r not in val], [r for r in records if r in val]


def subset(beats: BeatSet, rows: np.ndarray) -> BeatSet:
    """The beats of `rows` (population kept: it describes the records, not the subset)."""
    return BeatSet(beats.x[rows], beats.y[rows], beats.record[rows], beats.population, beats.side[rows])
