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
    if not csv.is_file():
        raise CardioError(f"perfusion cohort {root}: labels.csv not found")
    try:
        table = pd.read_csv(csv, dtype={"patient_id": str})
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:  # empty, binary or malformed
        raise CardioError(f"{csv}: unreadable CSV ({str(e).splitlines()[0]})") from None
    check_labels(table, csv)
    if LABEL not in table.columns:
        table[LABEL] = (table[SEGMENT_TASKS].mean(axis=1) < IMPAIRED_MFR).astype(int)
        if table[LABEL].nunique() == 1:
            raise CardioError(f"{csv}: impaired_mfr (mean segment MFR < {IMPAIRED_MFR}) is {int(table[LABEL].iloc[0])} "
                              "for every patient; the label needs both classes")
    table["record_id"] = table["patient_id"].astype(str)
    table["map_path"] = map_paths(table["patient_id"], root, csv)
    return table


def _lines(mask) -> str:
    """CSV line numbers (header = line 1) of the rows a check flags, the first ten."""
    rows = [int(i) + 2 for i in np.flatnonzero(np.asarray(mask))]
    return f"(CSV lines {rows[:10]}{' ...' if len(rows) > 10 else ''})"


def check_labels(table: pd.DataFrame, csv: Path) -> None:
    """The columns of labels.csv: ids present and unique, segment MFRs finite numbers, risk factors 0/1."""
    need = ["patient_id"] + SEGMENT_TASKS + [t for t in RISK_TASKS if t != LABEL]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise CardioError(f"{csv}: column(s) {missing} missing")
    if table.empty:
        raise CardioError(f"{csv}: no patients (the CSV has a header only)")
    ids = table["patient_id"]
    if ids.isna().any():
        raise CardioError(f"{csv}: {int(ids.isna().sum())} row(s) lack a patient_id {_lines(ids.isna())}")
    if ids.duplicated().any():
        raise CardioError(f"{csv}: {int(ids.duplicated().sum())} duplicated patient_id value(s) "
                          f"{_lines(ids.duplicated())}")
    bad = [c for c in need[1:] if table[c].isna().any()]
    if bad:
        raise CardioError(f"{csv}: column(s) {bad} have missing values")
    for c in SEGMENT_TASKS:
        values = pd.to_numeric(table[c], errors="coerce")
        if not np.isfinite(values).all():
            raise CardioError(f"{csv}: column {c!r} must hold finite numbers (flow reserves) "
                              f"{_lines(~np.isfinite(values))}")
    for c in [t for t in RISK_TASKS if t in table.columns]:  # impaired_mfr too, when the CSV gives it
        not_binary = ~pd.to_numeric(table[c], errors="coerce").isin([0, 1])
        if not_binary.any():
            raise CardioError(f"{csv}: column {c!r} must be 0/1 {_lines(not_binary)}")
        values = pd.to_numeric(table[c])
        if values.nunique() == 1:  # no AUC, no fit: refused before any training
            raise CardioError(f"{csv}: column {c!r} is {int(values.iloc[0])} for every patient; each task needs "
                              "both classes")


def map_paths(ids: pd.Series, root: Path, csv: Path) -> list[str]:
    """maps/<patient_id>.npy of every patient; an id that is not a plain file name is refused."""
    odd = [i for i, p in enumerate(ids) if p in (".", "..") or "/" in p or "\\" in p or not p.strip()]
    if odd:
        raise CardioError(f"{csv}: patient_id {ids.iloc[odd[0]]!r} is not a plain file name (its map is "
                          f"maps/<patient_id>.npy) {_lines(np.isin(np.arange(len(ids)), odd))}")
    # confined_path as well: no id may lead a path out of the cohort folder
    return [str(confined_path(root, f"maps/{p}.npy", what=f"{csv.name} patient_id's map")) for p in ids]


def load_map(path: str | Path, size: int | None = None) -> np.ndarray:
    """One (3, H, W) float32 polar map from .npy, checked; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise CardioError(f"polar map {path} not found")
    try:
        m = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:  # pickled/object, damaged, truncated or empty files
        raise CardioError(f"polar map {path} is not a readable .npy array: {' '.join(str(e).split())}") from None
    if not isinstance(m, np.ndarray) or not np.issubdtype(m.dtype, np.number) or np.iscomplexobj(m):
        raise CardioError(f"polar map {path} must hold real numbers; got {getattr(m, 'dtype', type(m).__name__)}")
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
        root = cached_cohort(ctx.cache, int(cfg["n_patients"]), int(cfg["size"]), int(cfg["seed"]), cfg.get("truth"))
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
