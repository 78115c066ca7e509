"""One base run as fusion reads it: what fuse builds and the fusion section reports (a module of its own, so that
neither imports the other)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass
class Modality:
    """One base run, reduced to patient-level scores of its chosen model (ids are the project's pseudonyms)."""
    name: str
    run: Path
    plugin: str
    model: str
    config: dict
    outer: pd.DataFrame  # patient_id, fold, y, score
    inner: pd.DataFrame  # patient_id, fold, y, score (inner out-of-fold, per outer fold)
    scores_digest: str = ""  # the outer scores without ids (_scores_digest): a copied run has its original's
    key_id: str | None = None  # run.json's name of its pseudonym key (None: a run made before cardio recorded it)
