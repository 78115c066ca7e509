"""The patients `cardio synthetic-crt` hands each plugin's cardio_write_synthetic (hookspecs.py), and the one check
of them that every plugin's writer makes before it writes a file."""
from __future__ import annotations

import numpy as np
import pandas as pd

from cardio.data import CardioError

SAFE_ID = r"[A-Za-z0-9][A-Za-z0-9._-]*"  # a patient id that is a plain file name (it names the patient's files)


def check_multimodal_patients(patients: pd.DataFrame, plugin: str) -> None:
    """The patients a plugin's cardio_write_synthetic receives (`cardio synthetic-crt`): ids usable as file names,
    once each; responder 0/1 (or empty); a finite drive. One CardioError naming every problem, led by `plugin`."""
    missing = [c for c in ("patient_id", "responder", "drive") if c not in patients.columns]
    if missing:
        raise CardioError(f"{plugin}: patients lacks column(s) {missing}; it has {list(patients.columns)}")
    ids = patients["patient_id"].astype(str)
    problems = []  # rows, never the ids: an error names no patient
    if (~ids.str.fullmatch(SAFE_ID)).any():
        problems.append(f"patient ids that are not plain file names (rows {_rows(~ids.str.fullmatch(SAFE_ID))})")
    if ids.duplicated().any():
        problems.append(f"patient ids given twice (rows {_rows(ids.duplicated(keep=False))})")
    y = pd.to_numeric(patients["responder"], errors="coerce")
    bad = ~(y.isin([0, 1]) | patients["responder"].isna())
    if bad.any():
        problems.append(f"responder values other than 0/1: {list(patients['responder'][bad][:3])}")
    if not np.isfinite(pd.to_numeric(patients["drive"], errors="coerce").to_numpy(dtype=float)).all():
        problems.append("drive values that are empty or not finite numbers")
    if problems:
        raise CardioError(f"{plugin}: patients has " + "; ".join(problems))


def _rows(mask: pd.Series, n: int = 5) -> str:
    rows = np.flatnonzero(mask.to_numpy()).tolist()
    return ", ".join(map(str, rows[:n])) + (" ..." if len(rows) > n else "")
