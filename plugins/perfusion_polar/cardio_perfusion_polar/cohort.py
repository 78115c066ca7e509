"""A perfusion polar-map cohort: labels.csv and one polar map per record, read through the core's cohort reader.

The folder is the user's (`cohort.dir`) or the synthetic one (synthetic.py), kept in the run's cache.
labels.csv follows the core's hierarchy (cardio.data.cohort): a patient may have several studies (a rest/stress
study on another date), each one record with its own map, `maps/<record_id>.npy` (else `.csv`, a ring x sector
table resampled onto the bull's-eye grid: polar_table.py) unless the `map` column names another file in the
folder. Loading reads every map once to check it (so `cardio validate` lists a bad map with the table's other
problems); featurizing reads them again through the cohort's loader and adds the 17-segment means of each
channel (AHA model of `cardio_imaging.aha17`), which the logistic baseline uses.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cardio import CardioError, Cohort, CoreSettings, Features
from cardio.data.cohort import Column, Problems, Schema, read_table
from cardio.data.files import read_npy
from cardio.data.same_recording import copy_problems
from cardio_imaging import aha17
from cardio_imaging.same_image import same_images
from cardio_perfusion_polar import polar_table
from cardio_perfusion_polar.polar_table import Orientation
from cardio_perfusion_polar.settings import PerfusionSettings
from cardio_perfusion_polar.synthetic import CHANNELS, IMPAIRED_MFR, RISK_TASKS, SEGMENT_TASKS, cached_cohort

LABEL = "impaired_mfr"
RISK_FACTORS = tuple(t for t in RISK_TASKS if t != LABEL)
_RISK_TEXT = {"sex_male": "1 = male, 0 = female", "smoking": "1 = smoker",
              "hypertension": "1 = hypertension", "dyslipidemia": "1 = dyslipidemia", "diabetes": "1 = diabetes"}

# labels.csv of a perfusion cohort, one row per study (= record: one set of rest, stress and MFR maps).
SCHEMA = Schema(columns=(
    Column("map", "path", required=True, default="maps/{record_id}", suffixes=(".npy", ".csv"),
           description="the study's polar maps: a (3, N, N) .npy array (rest %, stress %, MFR) laid out like "
                       "cardio_imaging.aha17.image_labels(N), or a ring x sector .csv table (channel, ring, sector, "
                       "value; docs/data/perfusion_polar.md); default maps/<record_id>.npy, else .csv"),
    *(Column(name, "number", required=True, target=True, low=0.0,
             description=f"myocardial flow reserve of AHA segment {i + 1} (step 1's regression target; "
                         "empty = not measured)") for i, name in enumerate(SEGMENT_TASKS)),
    Column(LABEL, "binary", target=True,
           description=f"impaired global MFR (mean segment MFR < {IMPAIRED_MFR}): the label. When the column is "
                       "absent or empty it is derived from the segment MFRs, only for studies with all 17 "
                       "(else missing)"),
    *(Column(name, "binary", required=True, target=True, description=f"{_RISK_TEXT[name]} (step 2's target; "
                                                                     "empty = unknown)") for name in RISK_FACTORS),
    Column("global_mfr", "number", low=0.0, description="global MFR (an outcome: never a covariate)"),
    Column("age", "number", low=0.0, high=120.0, description="years at the study (described, not modelled)"),
), table="labels.csv", level="record", aggregate="mean")
TARGETS = (LABEL, *RISK_FACTORS, *SEGMENT_TASKS)
# A rest or stress map is % of its own maximum: its peak (99th percentile of the disc) lies near 100.
PERCENT_PEAK = (20.0, 200.0)
# Flow reserve (stress / rest flow) runs from about 0.5 in severe disease to 4-6 in health with every PET tracer
# (Rb-82, N-13 ammonia, O-15 water): a median above this is no flow reserve.
MFR_MEDIAN_MAX = 8.0
# The map's MFR segment means and the table's mfr_segNN differ by resampling and smoothing (mean relative difference
# at most 4.4% on 200 synthetic maps): more than MIRROR_MISMATCH, and twice what the map mirrored left-right gives,
# is a mirrored map. A global_mfr lies within GLOBAL_FACTOR of the segments' mean.
MIRROR_MISMATCH = 0.06
GLOBAL_FACTOR = 1.25


def derived_label(table: pd.DataFrame) -> pd.Series:
    """Impaired MFR from the segment MFRs: 1.0 when their mean is below 2.0, NaN unless all 17 are present."""
    segments = table[SEGMENT_TASKS]
    impaired = (segments.mean(axis=1) < IMPAIRED_MFR).astype(float)
    return impaired.where(segments.notna().all(axis=1))


def label_values(table: pd.DataFrame) -> pd.Series:
    """The label as given in labels.csv, or derived from the segment MFRs when no row gives it."""
    return table[LABEL] if table[LABEL].notna().any() else derived_label(table)


def check_classes(table: pd.DataFrame, problems: Problems) -> None:
    """Each binary task holds both classes among the studies that have it, each in at least two patients: the
    split that tests a class's only patient leaves its training rows without that class, which stops a run."""
    for task in RISK_TASKS:
        values = label_values(table) if task == LABEL else table[task]
        what = (f"{LABEL} (derived: mean of the 17 segment MFRs < {IMPAIRED_MFR})"
                if task == LABEL and table[LABEL].isna().all() else "the column")
        present = values.dropna()
        if present.empty:
            continue  # unlabelled (a cohort to predict); a run's checks refuse a target with no value
        if present.nunique() == 1:
            problems.add(f"{what} is {int(present.iloc[0])} in every one of its {len(present)} row(s); "
                         "each task needs both classes", column=task)
            continue
        per_class = table.loc[present.index].assign(y=present).groupby("y")["patient_id"].nunique()
        if per_class.min() < 2:
            problems.add(f"{what} is {int(per_class.idxmin())} in one patient only; each task needs two "
                         "patients of each class", column=task)


def check_maps(size: int | None = None, orientation: Orientation = Orientation()):
    """A table check reading every map as featurize will (a .npy array, or a ring x sector table resampled to
    size x size): each map that would stop a run is a problem of its line, and the maps must share one size, so
    that a cohort `cardio validate` passes does not fail on its maps later."""
    def check(table: pd.DataFrame, problems: Problems) -> None:
        sizes: dict[int, list[int]] = {}
        means: dict[int, np.ndarray] = {}  # row -> (3, 17) segment means of its map
        refused = problems.refused("map")
        for i, path in enumerate(table["map"]):
            if path is None or i + 2 in refused or not Path(path).is_file():
                continue  # the reader has listed it already
            try:
                m = _read(Path(path), size, orientation)
            except CardioError as e:
                problems.add(f"{Path(path).name} {e}", i + 2, "map")
                continue
            sizes.setdefault(m.shape[1], []).append(i + 2)
            means[i] = aha17.segment_values(m, aha17.image_labels(m.shape[-1]))
            _check_segments(table, i, Path(path), m, means[i][2], problems)
        _same_studies(table, means, problems)
        if len(sizes) < 2:
            return
        # the configured size where maps have it (ring x sector tables are resampled to it), else the most common
        common = size if size in sizes else max(sizes, key=lambda n: len(sizes[n]))
        for n, lines in sizes.items():
            for line in lines[:10] if n != common else ():
                problems.add(f"{Path(table['map'].iloc[line - 2]).name} is a {n}x{n} map; the cohort's maps are "
                             f"{common}x{common} ({len(sizes[common])} of them; every map of a cohort has one size, "
                             f"perfusion_polar.size = {size} for ring x sector tables): resample it", line, "map")
            if n != common and len(lines) > 10:
                problems.add(f"{len(lines) - 10} more {n}x{n} map(s) on lines {lines[10:40]}", None, "map")
    return check


def _check_segments(table: pd.DataFrame, i: int, path: Path, m: np.ndarray, mfr: np.ndarray,
                    problems: Problems) -> None:
    """The pattern of the map's MFR segment means against the row's mfr_segNN (each over its mean, so a scale is no
    matter): a map mirrored left-right (septum and lateral wall exchanged) matches them only mirrored."""
    given = table[SEGMENT_TASKS].iloc[i].to_numpy(dtype=float)
    if not np.isfinite(given).all() or given.mean() <= 0 or mfr.mean() <= 0:
        return
    pattern = given / given.mean()
    own = float(np.mean(np.abs(mfr / mfr.mean() - pattern)))
    if own <= MIRROR_MISMATCH:
        return
    flipped = aha17.segment_values(m[2][:, ::-1], aha17.image_labels(m.shape[-1]))
    mirrored = float(np.mean(np.abs(flipped / flipped.mean() - pattern)))
    if mirrored < own / 2:
        problems.add(f"{path.name}: its MFR map matches the row's mfr_seg01-17 only mirrored left-right (mean "
                     f"difference {mirrored:.0%} mirrored, {own:.0%} as stored): a map mirrored (septum and lateral "
                     "wall exchanged)? export it as seen from the apex (septum left), or set perfusion_polar.tables",
                     i + 2, "map")


def check_global_mfr(table: pd.DataFrame, problems: Problems) -> None:
    """global_mfr against the mean of the row's 17 segment MFRs: a global reserve outside the segments' range
    by more than GLOBAL_FACTOR is another unit or another study."""
    if "global_mfr" not in table.columns:
        return
    mean = table[SEGMENT_TASKS].mean(axis=1, skipna=False)
    ratio = table["global_mfr"] / mean
    bad = ratio.notna() & ((ratio > GLOBAL_FACTOR) | (ratio < 1 / GLOBAL_FACTOR))
    for i in np.flatnonzero(bad.to_numpy())[:10]:
        problems.add(f"global_mfr {table['global_mfr'].iloc[i]:g} is {ratio.iloc[i]:.2g} times the mean of the "
                     f"row's 17 segment MFRs ({mean.iloc[i]:.3g}): a global flow reserve lies near that mean",
                     int(i) + 2, "global_mfr")


def _same_studies(table: pd.DataFrame, means: dict[int, np.ndarray], problems: Problems) -> None:
    """One study under two patients, by content (cardio_imaging.same_image): maps whose segment means, each channel
    standardised, correlate at r >= 0.99. A re-export (a ring x sector table, another size) has other bytes."""
    def standard(x: np.ndarray) -> np.ndarray:
        return ((x - x.mean(axis=1, keepdims=True)) / (x.std(axis=1, keepdims=True) + 1e-9)).ravel()

    copy_problems(table, problems, "map", same_images({i: standard(v) for i, v in means.items()}), "study",
                  "their 51 segment means (rest, stress, MFR)")


def read_cohort(root: str | Path, allow_outside: bool = False, log=None, size: int | None = None,
                orientation: Orientation = Orientation()) -> pd.DataFrame:
    """labels.csv of a perfusion cohort folder, typed and checked (every problem at once, every map read), the
    label derived when the table has none; `map` holds each record's absolute map path. `size` and `orientation`
    say how ring x sector tables become (3, size, size) maps (polar_table.py)."""
    table = read_table(root, SCHEMA, allow_outside=allow_outside, log=log,
                       checks=[check_classes, check_global_mfr, check_maps(size, orientation)])
    table[LABEL] = label_values(table)
    return table


def _read(path: Path, size: int | None, orientation: Orientation) -> np.ndarray:
    """One (3, N, N) float32 map; CardioError with the problem alone (the caller names the file)."""
    if path.suffix.lower() == ".csv":
        if size is None:
            raise CardioError("is a ring x sector table: give the grid size it is resampled to (perfusion_polar.size)")
        m = polar_table.to_image(polar_table.read_table(path), size, orientation)
    else:
        try:
            m = read_npy(path)
        except CardioError as e:  # an .npz, pickled objects, a damaged header, a truncated or empty file
            raise CardioError(f"is not a readable .npy array: {str(e).removeprefix(f'{path}: ')}") from None
    if not isinstance(m, np.ndarray) or not np.issubdtype(m.dtype, np.number) or np.iscomplexobj(m):
        raise CardioError(f"must hold real numbers; got {getattr(m, 'dtype', type(m).__name__)}")
    if m.ndim != 3 or m.shape[0] != 3 or m.shape[1] != m.shape[2]:
        raise CardioError(f"has shape {m.shape}; a map is (3, N, N): rest, stress, MFR")
    m = m.astype(np.float32)  # checked after the cast: 1e300 is finite in float64 and inf in float32
    if not np.isfinite(m).all():
        raise CardioError(f"holds {int((~np.isfinite(m)).sum())} NaN/inf value(s) (as float32: values beyond "
                          "3.4e38 count too); export the map with every pixel measured, or leave the study out")
    flat = [name for name, channel in zip(CHANNELS, m) if channel.max() == channel.min()]
    if flat:
        raise CardioError(f"holds one value in every pixel of its {', '.join(flat)} map(s) (a blank export, no "
                          "image); export the maps again, or leave the study out")
    _check_plausible(m)
    return m


def _check_plausible(m: np.ndarray) -> None:
    """Values a perfusion study can hold: rest and stress in % of their maximum, a flow reserve within any tracer's
    range, a stress map that is not the rest map."""
    inside = aha17.image_labels(m.shape[-1]) > 0
    for name, channel in zip(CHANNELS[:2], m[:2]):
        peak = float(np.percentile(channel[inside], 99))
        if not PERCENT_PEAK[0] <= peak <= PERCENT_PEAK[1]:
            hint = " (fractions of 1? multiply by 100)" if 0 < peak <= 1.5 else ""
            raise CardioError(f"holds a {name} map peaking at {peak:.3g}; a perfusion map is % of its maximum, "
                              f"peaking near 100{hint}")
    if np.array_equal(m[0], m[1]):
        raise CardioError("holds a stress map equal to its rest map in every pixel: the rest scan given as stress? "
                          "export the stress scan")
    mfr = float(np.median(m[2][inside]))
    if not 0 < mfr <= MFR_MEDIAN_MAX:
        raise CardioError(f"holds an MFR map of median {mfr:.3g}; a myocardial flow reserve (stress / rest flow) "
                          f"lies between about 0.5 and 6 with every tracer (above {MFR_MEDIAN_MAX:g}: a flow map, or "
                          "scaled?)")


def load_map(path: str | Path, size: int | None = None, orientation: Orientation = Orientation()) -> np.ndarray:
    """One (3, N, N) float32 polar map from .npy, or from a ring x sector .csv table resampled to size x size;
    checked, errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise CardioError(f"polar map {path} not found")
    try:
        return _read(path, size, orientation)
    except CardioError as e:
        raise CardioError(f"polar map {path} {e}") from None


def load_maps(cohort: Cohort, progress=None) -> np.ndarray:
    """Every map of the cohort through its loader, (n, 3, N, N); all maps must share one size."""
    ids = cohort.table["record_id"].tolist()
    it = progress(ids, desc="read polar maps", total=len(ids)) if progress else ids
    maps = [cohort.array(rid) for rid in it]
    sizes = sorted({m.shape[1] for m in maps})
    if len(sizes) > 1:
        raise CardioError(f"the cohort's polar maps have {len(sizes)} sizes {sizes}; every map has one size")
    return np.stack(maps)


def segment_means(maps: np.ndarray) -> np.ndarray:
    """Mean of every channel in each AHA segment of the bull's-eye: (n, C, N, N) -> (n, C, 17)."""
    return aha17.segment_values(maps, aha17.image_labels(maps.shape[-1]))


def outcome_columns(table: pd.DataFrame) -> tuple[str, ...]:
    """Columns the core must treat as outcomes: the flow reserves the label derives from, and every task's label."""
    return tuple(c for c in [*SEGMENT_TASKS, "global_mfr", *RISK_TASKS] if c in table.columns and c != LABEL)


# --------------------------------------------------------------------------- stages

def load(config: dict, ctx) -> Cohort:
    """The user's folder (cohort.dir) or the synthetic cohort, written once into the run's cache."""
    s, where = PerfusionSettings.of(config), CoreSettings.of(config).cohort
    if where.dir:
        root = Path(where.dir).expanduser()
    else:
        root = cached_cohort(ctx.cache, s.n_patients, s.size, s.seed, s.truth.as_dict(), s.second_scans)
    size, orientation = s.size, Orientation.from_settings(s.tables)
    table = read_cohort(root, allow_outside=where.allow_outside_paths, log=ctx.log, size=size,
                        orientation=orientation)
    paths = dict(zip(table["record_id"], table["map"]))
    return Cohort(table, loader=lambda rid: load_map(paths[rid], size, orientation), label=LABEL, root=root,
                  outcomes=outcome_columns(table), targets=TARGETS, level=SCHEMA.level, aggregate=SCHEMA.aggregate)


def featurize(cohort: Cohort, ctx) -> Features:
    """Read every map back from disk (checked); x: the maps (for the ResNet) and their 51 segment means
    (for the baseline), which also join the table as <channel>_map_segNN columns (rest_map_seg01 ...).

    The names keep "_map_": the segment MFRs of labels.csv (mfr_segNN) are the regression targets,
    and the MFR map's segment means must not overwrite them.
    """
    maps = load_maps(cohort, ctx.progress)
    means = segment_means(maps)
    table = cohort.table.copy()
    for c, ch in enumerate(CHANNELS):
        for s in range(aha17.N_SEGMENTS):
            table[f"{ch}_map_seg{s + 1:02d}"] = means[:, c, s]
    return Features(table, x={"maps": maps, "segments": means.reshape(len(maps), -1)}, label=LABEL,
                    targets=cohort.targets)
