"""The featurize stage: phase analysis of every record, and the Features the method consumes.

Table: ids, responder, the clinical variables, PSD, PBW, entropy, peak phase and the circular mean
phase of the 17 AHA segments (cardio_imaging.aha17); x: the flattened phase polar maps (what the
autoencoder sees); stage: PhaseStage, the polar grid and every record's PhaseResult (for the figures).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cardio import CardioError, Cohort, Features
from cardio_spect_polar.cohort import Exclusions, analyze_records
from cardio_spect_polar.phase import PhaseResult
from cardio_spect_polar.settings import SpectSettings

PHASE_COLUMNS = ("psd", "pbw", "entropy", "peak")


@dataclass(frozen=True)
class PhaseStage:
    """What featurize hands to explain and evaluate beside the table and the maps."""

    grid: tuple[int, int]                     # (rings, sectors) of every phase polar map
    phase_results: tuple[PhaseResult, ...]    # one per row of the table, for the figures
    esv_excluded: tuple[str, ...] = ()        # patients load left out below the ESV floor


def check_clinical(table: pd.DataFrame, clinical: list[str]) -> None:
    """The clinical variables of spect_polar.analysis.clinical are numeric columns without missing values
    (the cohort reader requires them; a table built otherwise is checked here)."""
    missing = [c for c in clinical if c not in table.columns]
    if missing:
        raise CardioError(f"clinical variable(s) {missing} named in spect_polar.analysis.clinical are not in the "
                          "cohort table")
    bad = [c for c in clinical if not pd.api.types.is_numeric_dtype(table[c]) or table[c].isna().any()]
    if bad:
        raise CardioError(f"clinical column(s) {bad} must be numeric without missing values "
                          "(encode sex as 1 = male, NYHA as 2/3/4, yes/no as 1/0)")


def check_one_grid(results: list, kinds: list[str], grid: tuple[int, int]) -> None:
    """Every phase map on one (rings, sectors) grid: volumes are sampled on phase.rings x phase.sectors,
    ready maps keep theirs; a map off the cohort's grid is an error naming its file."""
    shapes = [r.phase_map.shape for r in results]
    if len(set(shapes)) < 2:
        return
    expected = grid if "volume" in kinds else max(set(shapes), key=shapes.count)
    odd = [(r.source, shape) for r, shape in zip(results, shapes) if shape != expected]
    more = f" (and {len(odd) - 1} more file(s))" if len(odd) > 1 else ""
    raise CardioError(f"{odd[0][0]}: phase polar map of shape {odd[0][1]}, the cohort's maps are {expected} "
                      f"(rings, sectors; phase.rings / phase.sectors for volumes){more}; resample to one grid")


def phase_features(cohort: Cohort[Exclusions], s: SpectSettings, ctx) -> Features[PhaseStage]:
    """Phase analysis of every volume (or summary of every ready phase map) -> Features. Scans without a label
    are analysed too: the core leaves them out of training and scoring."""
    check_clinical(cohort.table, list(s.analysis.clinical))
    ph = s.phase
    results = analyze_records(cohort.table, ph.harmonics, map_items=ctx.map, rings=ph.rings, sectors=ph.sectors,
                              band_px=ph.band_px)
    check_one_grid(results, cohort.table["kind"].tolist(), (ph.rings, ph.sectors))
    table = cohort.table.copy()
    for col in PHASE_COLUMNS:
        table[col] = [float(getattr(r, col)) for r in results]
    segs = np.stack([r.segments17 for r in results])
    for j in range(segs.shape[1]):
        table[f"phase_seg{j + 1:02d}"] = segs[:, j]
    x = np.stack([r.phase_map.ravel() for r in results]).astype(np.float32)
    return Features(table, x=x, label=cohort.label, targets=cohort.targets,
                    stage=PhaseStage(tuple(results[0].phase_map.shape), tuple(results),
                                     cohort.stage.esv_excluded))
