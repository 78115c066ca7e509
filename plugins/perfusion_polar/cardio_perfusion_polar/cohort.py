"""A perfusion polar-map cohort: a folder of labels.csv + maps/<patient_id>.npy, checked and read back.

The folder is the user's (`perfusion.dir`) or the synthetic one (synthetic.py), kept in the run's
cache. Featurizing reads every map and adds the 17-segment means of each channel (AHA model of
`cardio.aha17`), which the logistic baseline uses.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cardio import CardioError, Cohort, Features, aha17, confined_path
from cardio_perfusion_polar.synthetic import CHANNELS, IMPAIRED_MFR, RISK_TASKS, SEGMENT_TASKS, cached_cohort

LABEL = "impaired_mfr"


def read_cohort(root: Path) -> pd.DataFrame:
    """labels.csv of a perfusion cohort folder, checked; adds record_id and the map path."""
    root = Path(root)
    csv = root / "labels.csv"
    if not csv.exists():
        raise CardioError(f"perfusion cohort {root}: labels.csv not found")
    try:
        table = pd.read_csv(csv, dtype={"patient_id": str})
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:  # empty, binary or malformed
        raise CardioError(f"{csv}: unreadable CSV ({str(e).splitlines()[0]})") from None
    need = ["patient_id"] + SEGMENT_TASKS + [t for t in RISK_TASKS if t != LABEL]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise CardioError(f"{csv}: column(s) {missing} missing")
    bad = [c for c in need[1:] if table[c].isna().any()]
    if bad:
        raise CardioError(f"{csv}: column(s) {bad} have missing values")
    for c in RISK_TASKS[1:]:
        if not set(table[c].unique()) <= {0, 1}:
            raise CardioError(f"{csv}: column {c!r} must be 0/1")
    if LABEL not in table.columns:
        table[LABEL] = (table[SEGMENT_TASKS].mean(axis=1) < IMPAIRED_MFR).astype(int)
    table["record_id"] = table["patient_id"].astype(str)
    # a patient id such as "../x" must not reach outside the cohort folder
    table["map_path"] = [str(confined_path(root, f"maps/{p}.npy", what=f"{csv.name} patient_id's map"))
                         for p in table["patient_id"]]
    return table


def load_map(path: str | Path, size: int | None = None) -> np.ndarray:
    """One (3, H, W) float32 polar map from .npy, checked; errors name the file."""
    path = Path(path)
    if not path.exists():
        raise CardioError(f"polar map {path} not found")
    try:
        m = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise CardioError(f"polar map {path} is not a readable .npy array: {e}") from None
    if m.ndim != 3 or m.shape[0] != 3 or m.shape[1] != m.shape[2]:
        raise CardioError(f"polar map {path} must have shape (3, N, N) (rest, stress, MFR); got {m.shape}")
    if size is not None and m.shape[1] != size:
        raise CardioError(f"polar map {path} is {m.shape[1]}x{m.shape[2]}, the cohort's maps are {size}x{size}")
    if not np.isfinite(m).all():
        raise CardioError(f"polar map {path} holds {int((~np.isfinite(m)).sum())} NaN/inf value(s)")
    return m.astype(np.float32)


def load_maps(table: pd.DataFrame, progress=None) -> np.ndarray:
    """Every map of the table, (n, 3, N, N); all maps must share the first one's size."""
    paths = table["map_path"].tolist()
    first = load_map(paths[0])
    it = progress(paths, desc="read polar maps", total=len(paths)) if progress else paths
    return np.stack([load_map(p, first.shape[1]) for p in it])


def segment_means(maps: np.ndarray) -> np.ndarray:
    """Mean of every channel in each AHA segment of the bull's-eye: (n, C, N, N) -> (n, C, 17)."""
    return aha17.segment_values(maps, aha17.image_labels(maps.shape[-1]))


def outcome_columns(table: pd.DataFrame) -> tuple[str, ...]:
    """Columns the core must treat as outcomes: the flow reserves the label derives from, and every task's label."""
    return tuple(c for c in [*SEGMENT_TASKS, "global_mfr", *RISK_TASKS] if c in table.columns and c != LABEL)


# --------------------------------------------------------------------------- stages

def load(cfg: dict, ctx) -> Cohort:
    """The user's folder (perfusion.dir) or the synthetic cohort, written once into the run's cache."""
    if cfg["dir"]:
        root = Path(cfg["dir"]).expanduser()
    else:
        root = cached_cohort(ctx.cache, int(cfg["n_patients"]), int(cfg["size"]), int(cfg["seed"]))
    table = read_cohort(root)
    paths = dict(zip(table["record_id"], table["map_path"]))
    return Cohort(table, loader=lambda rid: load_map(paths[rid]), label=LABEL, root=root,
                  outcomes=outcome_columns(table))


def featurize(cohort: Cohort, ctx) -> Features:
    """Read every map back from disk (checked); x: the maps (for the ResNet) and their 51 segment means
    (for the baseline), which also join the table as <channel>_map_segNN columns (rest_map_seg01 ...).

    The names keep "_map_": the segment MFRs of labels.csv (mfr_segNN) are the regression targets,
    and the MFR map's segment means must not overwrite them.
    """
    maps = load_maps(cohort.table, ctx.progress)
    means = segment_means(maps)
    table = cohort.table.copy()
    for c, ch in enumerate(CHANNELS):
        for s in range(aha17.N_SEGMENTS):
            table[f"{ch}_map_seg{s + 1:02d}"] = means[:, c, s]
    return Features(table, x={"maps": maps, "segments": means.reshape(len(maps), -1)}, label=LABEL,
                    meta={"size": maps.shape[-1]})
