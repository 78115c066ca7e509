"""The CRT cohort's table (cohort.csv, read by cardio.cohort.read_table against SCHEMA) and the ECGs its rows name.

One row per ECG record: `patient_id` (a patient may have several ECGs: record_id tells them apart),
the label (the config's `label`, `responder` here; empty = unknown for that patient), the ECG file
(`ecg`, else the record_id) and the clinical covariates. The core's reader types every column and
lists every problem of the table at once (file, CSV line, column); the checks below add what it
cannot see: a .csv/.npy ECG without its sampling rate, and a WFDB record's signal files (a record
`x` is x.hea and the .dat files x.hea names). The CRT outcome is the patient's, so predictions are
made per patient: the core averages a patient's ECG scores (SCHEMA.level, SCHEMA.aggregate).
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cardio import CardioError
from cardio.cohort import OUTSIDE_SWITCH, Column, Problems, Schema, read_table
from cardio_ecg_transfer.leads import MULTI_LEAD_SUFFIXES, lead_name, probe, read_leads
from cardio_ecg_transfer.records import MAX_FS, MAX_GAP_S, MIN_FS, read_ecg, wfdb_signal_files

log = logging.getLogger("cardio.ecg_transfer")

#: Suffixes an `ecg` value without one is tried with, in order: a WFDB record (x.hea and its .dat), a CSV or NumPy
#: ECG (its rate in `fs`), a DICOM waveform, a GE MUSE or HL7 aECG XML file, or an EDF file.
ECG_SUFFIXES = (".hea", ".csv", ".npy", ".dcm", ".xml", ".edf")
#: ECG files that carry no sampling rate of their own: the row's `fs` gives it.
RATE_FROM_TABLE = (".csv", ".npy")
_YES = "1 = yes, 0 = no (also yes/no, true/false)"

SCHEMA = Schema(
    columns=(
        Column("responder", "binary", target=True,
               description="the outcome, named by the config's `label`: 1 = volumetric responder (LVESV reduction "
                           ">= 15 %), 0 = not; empty = unknown (the ECGs are featurized; the patient is neither "
                           "trained on nor scored). No column at all: an unlabelled cohort, for cardio predict"),
        Column("ecg", "path", default="{record_id}", suffixes=ECG_SUFFIXES,
               description="the ECG file, relative to the cohort folder: a WFDB record by its base name (ecg/x for "
                           "ecg/x.hea + ecg/x.dat; a base name with a dot needs its .hea written), a .csv (one "
                           "column per lead) or .npy file (rate in `fs`), a DICOM ECG waveform (.dcm), a GE MUSE or "
                           "HL7 aECG export (.xml) or EDF (.edf); empty or no column: the record_id"),
        Column("fs", "number", low=MIN_FS, high=MAX_FS,
               description="sampling rate (Hz) of a .csv or .npy ECG (WFDB, DICOM, XML and EDF files state their own)"),
        Column("site", "text", description="the recording site (cv.method=external splits by it)"),
        Column("lvesv_reduction_pct", "number", high=100,
               description="LVESV reduction (%) at follow-up: defines the outcome, never a covariate"),
        Column("age", "number", low=0, high=130, description="age (years)"),
        Column("sex", "binary", description="1 = male, 0 = female"),
        Column("height_cm", "number", low=0, description="height (cm)"),
        Column("weight_kg", "number", low=0, description="weight (kg)"),
        Column("qrs_ms", "number", low=0, description="QRS duration (ms), the guideline rule's"),
        Column("lbbb", "binary", description=f"left bundle branch block, the guideline rule's: {_YES}"),
        Column("lvef", "number", low=0, high=100, description="LV ejection fraction (%), the guideline rule's"),
        Column("lvedv", "number", low=0, description="LV end-diastolic volume (ml)"),
        Column("lvesv", "number", low=0, description="LV end-systolic volume (ml) at baseline"),
        Column("scar", "number", low=0, high=100, description="scar burden (% of the LV)"),
        *(Column(name, "binary", description=f"{what}: {_YES}") for name, what in (
            ("acei_arb", "ACE inhibitor or ARB"), ("ckd", "chronic kidney disease"), ("dm", "diabetes mellitus"),
            ("hypertension", "hypertension"), ("smoking", "smoker"), ("beta_blocker", "beta blocker"),
            ("spironolactone", "spironolactone"), ("digoxin", "digoxin"), ("diuretic", "diuretic"))),
    ),
    table="cohort.csv", level="patient", aggregate="mean")


def schema(config: dict) -> Schema:
    """SCHEMA for this config: its `label` names the outcome column, and a covariate the config names that SCHEMA
    does not declare (ecg_transfer.baselines, ecg_transfer.report.table1_continuous) is a number."""
    label = config["label"]
    s = config["ecg_transfer"]
    rule = s["baselines"]["guideline"]
    target = dataclasses.replace(SCHEMA.column("responder"), name=label)
    columns = [target, *(c for c in SCHEMA.columns if not c.target and c.name != label)]
    declared = {c.name for c in columns}
    binary = [rule["lbbb_column"]]
    numbers = [*s["baselines"]["covariates"], rule["qrs_column"], rule["lvef_column"],
               *s["report"]["table1_continuous"]]
    for name in dict.fromkeys([*binary, *numbers]):
        if name not in declared:
            columns.append(Column(name, "binary" if name in binary else "number",
                                  description="a covariate the config names"))
            declared.add(name)
    return dataclasses.replace(SCHEMA, columns=tuple(columns))


def rate_given(table: pd.DataFrame, problems: Problems) -> None:
    """A .csv or .npy ECG needs its sampling rate in `fs` (rows whose `ecg` or `fs` is already a problem aside)."""
    flagged = {p.line for p in problems.items if p.column in ("ecg", "fs")}
    rate = table["fs"] if "fs" in table.columns else pd.Series(np.nan, index=table.index)
    for i, (path, fs) in enumerate(zip(table["ecg"], rate)):
        suffix = Path(str(path)).suffix.lower()
        if suffix in RATE_FROM_TABLE and pd.isna(fs) and i + 2 not in flagged:
            problems.add(f"{Path(str(path)).name} is a {suffix} ECG: its sampling rate (Hz) goes in this column",
                         i + 2, "fs")


def signal_files(table: pd.DataFrame, problems: Problems, root: Path, allow_outside: bool) -> None:
    """A WFDB record is its header and the signal files the header names: each must be a file, inside the cohort
    folder (symlinks resolved) unless cohort.allow_outside_paths."""
    flagged = {p.line for p in problems.items if p.column == "ecg"}
    root = Path(os.path.normpath(Path(root).absolute()))
    for i, path in enumerate(table["ecg"]):
        hea = Path(str(path))
        if hea.suffix.lower() != ".hea" or i + 2 in flagged:
            continue
        for name in wfdb_signal_files(hea):
            dat = Path(os.path.normpath(hea.parent / name))
            inside = dat.is_relative_to(root) and (not dat.exists() or dat.resolve().is_relative_to(root.resolve()))
            if not inside and not allow_outside:
                problems.add(f"WFDB record {hea.with_suffix('').name} names the signal file {name!r}, outside the "
                             f"cohort folder; set {OUTSIDE_SWITCH}: true to allow it", i + 2, "ecg")
            elif not dat.is_file():
                problems.add(f"WFDB record {hea.with_suffix('').name} names the signal file {name!r}, which is not "
                             f"a file in {dat.parent}", i + 2, "ecg")


def files_read(table: pd.DataFrame, problems: Problems, leads: Sequence[str | int | None], limit: int = 10) -> None:
    """Every ECG file reads and holds the leads asked for, checked from its header (leads.probe): a truncated or
    unreadable file, a missing lead or a format cardio does not read is a problem of its row (the first `limit`
    listed, then one line counting the rest: a lead no file has would otherwise fill the screen)."""
    flagged = {p.line for p in problems.items if p.column in ("ecg", "fs")}
    rate = table["fs"] if "fs" in table.columns else pd.Series(np.nan, index=table.index)
    bad = 0
    for i, (path, fs) in enumerate(zip(table["ecg"], rate)):
        if i + 2 in flagged or path is None:
            continue
        try:
            probe(path, leads, None if pd.isna(fs) else float(fs))
        except CardioError as exc:
            bad += 1
            if bad <= limit:
                problems.add(str(exc).replace(f"{path}: ", f"{Path(path).name}: ", 1), i + 2, "ecg")
    if bad > limit:
        problems.add(f"{bad - limit} more row(s) whose ECG file does not read or lacks lead(s) {list(leads)}",
                     None, "ecg")


def files_shared(table: pd.DataFrame, problems: Problems) -> None:
    """One ECG file named by rows of two patients: the same recording on both sides of a split."""
    owners: dict[str, tuple[str, int]] = {}
    for i, (path, pid) in enumerate(zip(table["ecg"], table["patient_id"])):
        if path is None:
            continue
        key = os.path.realpath(path)
        if key in owners and owners[key][0] != pid:
            problems.add(f"{Path(path).name} is also the ECG of another patient (line {owners[key][1]}); a "
                         "recording belongs to one patient", i + 2, "ecg")
        owners.setdefault(key, (pid, i + 2))


def named_covariates(config: dict) -> dict[str, list[str]]:
    """Cohort columns the config's baseline models read: column -> the config keys naming it."""
    b = config["ecg_transfer"]["baselines"]
    named: dict[str, list[str]] = {}
    if any(b[m]["enabled"] for m in ("svm", "rf", "logistic")):
        for c in b["covariates"]:
            named.setdefault(c, []).append("ecg_transfer.baselines.covariates")
    if b["guideline"]["enabled"]:
        for k in ("qrs_column", "lvef_column", "lbbb_column"):
            named.setdefault(b["guideline"][k], []).append(f"ecg_transfer.baselines.guideline.{k}")
    return named


def covariates_present(table: pd.DataFrame, problems: Problems, named: dict[str, list[str]]) -> None:
    """A column the config's models read must be in the table with values (a run would stop at its first fold)."""
    flagged = {p.column for p in problems.items}  # a column whose cells are all bad is named by those already
    for column, keys in named.items():
        if column not in flagged and (column not in table.columns or table[column].isna().all()):
            problems.add(f"is named by config key(s) {', '.join(keys)} but the table has no such column or no value "
                         "in it (add it, or leave it out of those keys)", None, column)


def read_cohort_table(root: str | Path, schema: Schema = SCHEMA, *, allow_outside: bool = False,
                      log: logging.Logger = log, config: dict | None = None,
                      leads: Sequence[str | int | None] | None = None) -> pd.DataFrame:
    """cohort.csv of folder `root`, typed and checked (cardio.cohort.read_table); raises CohortProblems. With
    `leads`, each ECG file's header is read for them; with `config`, the columns its models read must hold values."""
    checks = [rate_given, functools.partial(signal_files, root=Path(root).expanduser(), allow_outside=allow_outside),
              files_shared]
    if leads:
        checks.append(functools.partial(files_read, leads=list(leads)))
    if config is not None:
        checks.append(functools.partial(covariates_present, named=named_covariates(config)))
    return read_table(root, schema, allow_outside=allow_outside, log=log, checks=checks)


@dataclass
class CohortECGs:
    """The checked table (ecg: absolute paths) and each record's ECG at `fs`: one lead (n,) or leads (n_leads, n);
    `skipped` lists (record_id, reason) of the unreadable ECGs left out with skip_bad."""

    table: pd.DataFrame
    signals: dict[str, np.ndarray]
    fs: float
    root: Path
    skipped: list[tuple[str, str]] = field(default_factory=list)


def load_cohort(root: str | Path, schema: Schema = SCHEMA, *, fs: float = 360.0, lead: str | int | None = None,
                leads: Sequence[str] | None = None, skip_bad: bool = False, allow_outside: bool = False,
                progress: Callable | None = None, log: logging.Logger = log, config: dict | None = None,
                max_gap_s: float = MAX_GAP_S) -> CohortECGs:
    """A CRT cohort folder: its checked table and every record's ECG at `fs` (`leads`: several leads by name, else
    `lead`; NaN gaps up to `max_gap_s` bridged, longer refused). An ECG file that cannot be read raises CardioError
    naming it, or with `skip_bad` is left out, listed in `skipped` and logged to `log` (the run's log in a run).
    Messages name files and CSV lines, never patients.
    Every file's header is checked with the table (but for skip_bad, which leaves a bad file out instead)."""
    root = Path(root).expanduser()
    table = read_cohort_table(root, schema, allow_outside=allow_outside, log=log, config=config,
                              leads=None if skip_bad else (leads or [lead]))
    rate = table["fs"] if "fs" in table.columns else pd.Series(np.nan, index=table.index)
    signals: dict[str, np.ndarray] = {}
    skipped: list[tuple[str, str]] = []
    keep = np.ones(len(table), bool)
    rows = range(len(table))
    for i in (progress(rows, desc="cohort ECGs", total=len(table)) if progress else rows):
        rid, path = str(table["record_id"].iloc[i]), Path(table["ecg"].iloc[i])
        source_fs = None if pd.isna(rate.iloc[i]) else float(rate.iloc[i])
        try:
            if leads:
                signals[rid] = read_leads(path, leads, fs, source_fs, max_gap_s).signals
            elif path.suffix.lower() in MULTI_LEAD_SUFFIXES:  # a cart file: its leads by standard name
                signals[rid] = read_leads(path, [lead_name(lead)], fs, source_fs, max_gap_s).signals[0]
            else:
                signals[rid] = read_ecg(path, fs, lead, source_fs, max_gap_s).signal
        except CardioError as exc:
            if not skip_bad:
                raise
            log.warning("skipping a bad cohort ECG: %s", exc)
            skipped.append((rid, str(exc)))
            keep[i] = False
    table = table[keep].reset_index(drop=True)
    if table.empty:
        raise CardioError(f"{root / schema.table}: no readable ECG record left in the cohort")
    return CohortECGs(table, signals, float(fs), root, skipped)
