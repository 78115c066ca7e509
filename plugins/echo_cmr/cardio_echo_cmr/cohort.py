"""An echo-CMR cohort: labels.csv (one row per study and view) + the videos it names, checked and pivoted to one
record per study with a video column per view."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cardio import CardioError, Cohort, Features, confined_path
from cardio_echo_cmr import video
from cardio_echo_cmr.synthetic import VIEWS, cached_cohort

BINARY = ("wma", "lge", "t1_abnormal", "t2_abnormal", "ecv_abnormal")
CONTINUOUS = ("t1_ms", "t2_ms", "ecv_pct")
CSV_COLUMNS = ("patient_id", "study_id", "view", "file", "wma_view", "wma_global", "lge_view", "lge_global",
               *CONTINUOUS)
LABEL = "wma"


def read_cohort(root: Path, thresholds: dict) -> pd.DataFrame:
    """One row per study: record_id (= study id), patient_id, video_<VIEW>, wma_<VIEW>, lge_<VIEW>, the global
    labels and T1/T2/ECV with their abnormal flags at the configured thresholds."""
    root = Path(root)
    csv = root / "labels.csv"
    if not csv.is_file():
        raise CardioError(f"echo cohort {root}: labels.csv not found")
    try:
        rows = pd.read_csv(csv, dtype={"patient_id": str, "study_id": str})
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise CardioError(f"{csv}: unreadable CSV ({str(e).splitlines()[0]})") from None
    missing = [c for c in CSV_COLUMNS if c not in rows.columns]
    if missing:
        raise CardioError(f"{csv}: column(s) {missing} missing")
    bad_view = ~rows["view"].isin(VIEWS)
    if bad_view.any():
        raise CardioError(f"{csv}: view must be one of {list(VIEWS)} (line {int(np.flatnonzero(bad_view)[0]) + 2})")
    if rows.duplicated(["study_id", "view"]).any():
        raise CardioError(f"{csv}: a study lists the same view twice")
    paths = []
    for i, f in enumerate(rows["file"].astype(str)):
        p = confined_path(root, f, what=f"{csv.name} file")
        if not Path(p).is_file():
            raise CardioError(f"{csv}: study {rows['study_id'].iloc[i]} view {rows['view'].iloc[i]} names {f}, "
                              f"which is not there (line {i + 2})")
        paths.append(str(p))
    rows["path"] = paths
    studies = rows.groupby("study_id", sort=True)
    table = studies[["patient_id", "wma_global", "lge_global", *CONTINUOUS]].first()
    if (studies["patient_id"].nunique() > 1).any():
        raise CardioError(f"{csv}: a study_id belongs to two patient_ids")
    table = table.rename(columns={"wma_global": "wma", "lge_global": "lge"})
    for view in VIEWS:
        part = rows[rows["view"] == view].set_index("study_id")
        table[f"video_{view}"] = part["path"].reindex(table.index)
        table[f"wma_{view}"] = part["wma_view"].reindex(table.index)
        table[f"lge_{view}"] = part["lge_view"].reindex(table.index)
    table["t1_abnormal"] = (table["t1_ms"] >= thresholds["t1_ms"]).astype(int)
    table["t2_abnormal"] = (table["t2_ms"] >= thresholds["t2_ms"]).astype(int)
    table["ecv_abnormal"] = (table["ecv_pct"] >= thresholds["ecv_pct"]).astype(int)
    table = table.reset_index().rename(columns={"study_id": "record_id"})
    for c in ("wma", "lge", *CONTINUOUS):
        if table[c].isna().any():
            raise CardioError(f"{csv}: column {c!r} has missing values")
    return table


def load(cfg: dict, ctx) -> Cohort:
    root = Path(cfg["dir"]).expanduser() if cfg["dir"] else cached_cohort(ctx.cache, cfg["synthetic"])
    table = read_cohort(root, cfg["thresholds"])
    outcomes = tuple(c for c in table.columns if c.startswith(("wma", "lge", "t1", "t2", "ecv")) and c != LABEL)
    return Cohort(table, label=LABEL, root=root, outcomes=outcomes)


def featurize(cohort: Cohort, cfg: dict, ctx) -> Features:
    """Every video preprocessed once into the clip cache (parallel, progress bar); x holds the cache paths."""
    table = cohort.table.copy()
    size = int(cfg["clip"]["size"])
    x, padded = {}, 0
    for view in VIEWS:
        present = table[f"video_{view}"].notna().to_numpy()
        paths = table.loc[present, f"video_{view}"].astype(str).tolist()
        built = video.preprocess_all(paths, size, ctx, cfg.get("workers"))
        col = np.array([None] * len(table), dtype=object)
        col[present] = built
        x[view] = col
        need = int(cfg["clip"]["frames"]) * int(cfg["clip"]["period"])
        padded += sum(len(np.load(p, mmap_mode="r")) < need for p in built)
    if padded:
        ctx.log.warning("echo_cmr: %d video(s) are shorter than a clip (%d frames at period %d); their clips are "
                        "padded by repeating the last frame", padded, cfg["clip"]["frames"], cfg["clip"]["period"])
    return Features(table, x=x, label=LABEL, meta={"padded_videos": padded, "size": size})
