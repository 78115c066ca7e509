"""The CRT cohort's table (cohort.csv, read by cardio.data.cohort.read_table against SCHEMA) and the ECGs its rows name.

One row per ECG record: `patient_id` (a patient may have several ECGs: record_id tells them apart),
the label (the config's `label`, `responder` here; empty = unknown for that patient), the ECG file
(`ecg`, else the record_id) and the clinical covariates. The core's reader types every column and
lists every problem of the table at once (file, CSV line, column); the checks below add what it
cannot see: a .csv/.npy ECG without its sampling rate, a WFDB record's signal files (a record
`x` is x.hea and the .dat files x.hea names), and every ECG read whole as the run reads it (ECGReader:
its format, NaN gaps, length, flat stretches, clipped peaks, a rate its header contradicts, a beat to cut), so
that a damaged record is listed with the table's problems. The CRT outcome is the patient's, so predictions are
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
from cardio.data.cohort import OUTSIDE_SWITCH, Column, Problems, Schema, read_records, read_table
from cardio.data.same_recording import copy_problems
from cardio_ecg_transfer import plausibility
from cardio_ecg_transfer.beat_images import beat_windows, highpass
from cardio_ecg_transfer.lead_codes import canonical_lead, stand_in
from cardio_ecg_transfer.leads import MULTI_LEAD_SUFFIXES, file_leads, lead_name, read_leads, stated_rate
from cardio_ecg_transfer.records import MAX_FS, MAX_GAP_S, MIN_FS, read_ecg, wfdb_record_files, wfdb_signal_files
from cardio_ecg_transfer.rpeaks import detect_rpeaks
from cardio_ecg_transfer.settings import EcgSettings
from cardio_response.volumetric import VolumetricResponse
from cardio_signal.same_signal import Recording, same_recordings

log = logging.getLogger("cardio.ecg_transfer")

#: Suffixes an `ecg` value without one is tried with, in order: a WFDB record (x.hea and its .dat), a CSV or NumPy
#: ECG (its rate in `fs`), a DICOM waveform, a GE MUSE or HL7 aECG XML file, or an EDF file.
ECG_SUFFIXES = (".hea", ".csv", ".npy", ".dcm", ".xml", ".edf")
#: ECG files that carry no sampling rate of their own: the row's `fs` gives it.
RATE_FROM_TABLE = (".csv", ".npy")
_YES = "1 = yes, 0 = no (also yes/no, true/false)"

#: He et al.'s outcome: LVESV reduction >= 15% at the 6-month echo (derived where empty, checked where given); a
#: run reads by the rule of its settings (ecg_transfer.response), of which these are the defaults
RESPONSE = VolumetricResponse()

SCHEMA = Schema(
    columns=(
        Column("responder", "binary", target=True,
               description="the outcome, named by the config's `label`: 1 = volumetric responder (LVESV reduction "
                           ">= 15 %), 0 = not; empty = unknown (the ECGs are featurized; the patient is neither "
                           "trained on nor scored). No column at all: an unlabelled cohort, for cardio predict"),
        Column("ecg", "path", default="{record_id}", suffixes=ECG_SUFFIXES, files=wfdb_record_files,
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
        Column("qrs_ms", "number", low=0, description="QRS duration (ms), the guideline rule's",
               aliases=("qrs_duration", "qrsd", "qrs", "qrs_duration_ms", "qrsduration")),
        Column("lbbb", "binary", description=f"left bundle branch block, the guideline rule's: {_YES}"),
        Column("lvef", "number", low=0, high=100, description="LV ejection fraction (%), the guideline rule's",
               aliases=("ef", "ejection_fraction", "lvef_pct", "ef_pct")),
        Column("lvedv", "number", low=0, description="LV end-diastolic volume (ml)"),
        Column("lvesv", "number", low=0, description="LV end-systolic volume (ml) at baseline"),
        Column("scar", "number", low=0, high=100, description="scar burden (% of the LV)"),
        *(Column(name, "binary", description=f"{what}: {_YES}") for name, what in (
            ("acei_arb", "ACE inhibitor or ARB"), ("ckd", "chronic kidney disease"), ("dm", "diabetes mellitus"),
            ("hypertension", "hypertension"), ("smoking", "smoker"), ("beta_blocker", "beta blocker"),
            ("spironolactone", "spironolactone"), ("digoxin", "digoxin"), ("diuretic", "diuretic"))),
    ),
    table="cohort.csv", level="patient", aggregate="mean", response=RESPONSE)
SCHEMA = dataclasses.replace(SCHEMA, columns=RESPONSE.columns(SCHEMA.columns))  # the rule's columns, after the others


def schema(label: str, s: EcgSettings) -> Schema:
    """SCHEMA for a run: the config's `label` names the outcome column, derived and checked by the settings' rule
    (ecg_transfer.response), and a covariate the settings name that SCHEMA does not declare (ecg_transfer.baselines,
    ecg_transfer.report.table1_continuous) is a number."""
    rule = s.baselines.guideline
    target = dataclasses.replace(SCHEMA.column("responder"), name=label)
    columns = [target, *(c for c in SCHEMA.columns if not c.target and c.name != label)]
    columns = list(s.response.columns(tuple(columns)))  # and the columns the settings' rule names
    declared = {c.name for c in columns}
    binary = [rule.lbbb_column]
    numbers = [*s.baselines.covariates, rule.qrs_column, rule.lvef_column, *s.report.table1_continuous]
    for name in dict.fromkeys([*binary, *numbers]):
        if name not in declared:
            columns.append(Column(name, "binary" if name in binary else "number",
                                  description="a covariate the config names"))
            declared.add(name)
    return dataclasses.replace(SCHEMA, columns=tuple(columns), response=s.response)


def rate_given(table: pd.DataFrame, problems: Problems) -> None:
    """A .csv or .npy ECG needs its sampling rate in `fs` (rows whose `ecg` or `fs` is already a problem aside)."""
    flagged = problems.refused("ecg", "fs")
    rate = table["fs"] if "fs" in table.columns else pd.Series(np.nan, index=table.index)
    for i, (path, fs) in enumerate(zip(table["ecg"], rate)):
        suffix = Path(str(path)).suffix.lower()
        if suffix in RATE_FROM_TABLE and pd.isna(fs) and i + 2 not in flagged:
            problems.add(f"{Path(str(path)).name} is a {suffix} ECG: its sampling rate (Hz) goes in this column",
                         i + 2, "fs")


def signal_files(table: pd.DataFrame, problems: Problems, root: Path, allow_outside: bool) -> None:
    """A WFDB record is its header and the signal files the header names: each must be a file, inside the cohort
    folder (symlinks resolved) unless cohort.allow_outside_paths."""
    flagged = problems.refused("ecg")
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


def read_one(path: Path, fs: float, lead: str | int | None, leads: Sequence[str] | None, source_fs: float | None,
             max_gap_s: float) -> tuple[np.ndarray, list[str]]:
    """One ECG file at `fs` as load reads it, with the file's names of the leads read: the named `leads` (leads,
    samples), else `lead` (samples,); `lead` null is lead II (or MLII), else the file's first lead, in every format."""
    if leads:
        got = read_leads(path, leads, fs, source_fs, max_gap_s)
        return got.signals, got.found
    if path.suffix.lower() in MULTI_LEAD_SUFFIXES:  # a cart file: an index counts the standard leads
        got = read_leads(path, [lead_name(lead)], fs, source_fs, max_gap_s)
        return got.signals[0], got.found
    rec = read_ecg(path, fs, lead, source_fs, max_gap_s)
    return rec.signal, [rec.lead]


def check_rate(path: Path, given: float | None) -> None:
    """A rate in the table's `fs` for a file that states its own (WFDB, EDF, DICOM, XML) must be that rate: the file's
    is the one read, so another in the table is a row and a file mixed up, or a wrong export setting."""
    stated = stated_rate(path) if given is not None else None
    if stated is not None and given is not None and abs(stated - given) > 0.01 * stated:
        raise CardioError(f"{path}: the table's fs says {given:g} Hz, the file's header {stated:g} Hz (a file that "
                          "states its rate is read at it): correct the fs cell, or leave it empty")


def check_beats(signal: np.ndarray, path: Path, fs: float, names: Sequence[str], config: dict,
                stated_fs: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The beats featurize cuts, found as it finds them (high-pass, R peaks on lead II or the first): at least one
    complete beat, and a lead an ECG at the rate and in the unit stated (plausibility: QRS complexes, a heart rate,
    millivolts). Returns (the high-passed lead, its R peaks), for the comparison of recordings by signal."""
    s = EcgSettings.of(config)
    ref = signal[list(names).index("II") if "II" in names else 0] if signal.ndim == 2 else signal
    filtered = highpass(ref, fs, float(s.preprocess.highpass_hz))
    rpeaks = detect_rpeaks(filtered, fs)
    beats, _ = beat_windows(filtered, rpeaks, fs, config)
    if len(beats) == 0:
        raise CardioError(f"{path}: no complete beat found (detected {len(rpeaks)} R peak(s) in {len(ref) / fs:.1f} "
                          "s); a record needs a beat with one on each side: export the whole recording, or leave it "
                          "out")
    checks = s.signal_checks
    plausibility.check(filtered, rpeaks, fs, path, stated_fs, checks.heart_rate_bpm, checks.qrs_amplitude_mv)
    return filtered, rpeaks


def check_limb_leads(path: Path, fs: float, source_fs: float | None, max_gap_s: float, config: dict) -> None:
    """A file holding three limb leads or more: they obey Einthoven's law (plausibility.limb_lead_problem)."""
    limb = plausibility.limb_leads(file_leads(path))
    if len(limb) < 3:
        return
    got = read_leads(path, limb, fs, source_fs, max_gap_s)
    cut = float(EcgSettings.of(config).preprocess.highpass_hz)
    problem = plausibility.limb_lead_problem({n: highpass(x, fs, cut) for n, x in zip(got.names, got.signals)})
    if problem:
        raise CardioError(f"{path}: {problem}")


@dataclass
class ECGReader:
    """read_table check: every ECG the table names read whole as load reads it (read_one: format and separators,
    leads, NaN gaps, length, flat stretches, clipped peaks; check_rate; with `config`, check_beats), each failure a
    problem of its row, or with `skip_bad` a record left out (logged, listed in `skipped`). The signals are kept,
    by row, for load: each file is read once."""

    fs: float
    lead: str | int | None = None
    leads: Sequence[str] | None = None
    max_gap_s: float = MAX_GAP_S
    skip_bad: bool = False
    config: dict | None = None
    progress: Callable | None = None
    log: logging.Logger = log
    signals: dict[int, np.ndarray] = field(default_factory=dict)
    skipped: dict[int, str] = field(default_factory=dict)
    found: dict[Path, list[str]] = field(default_factory=dict)  # the file's names of the leads read
    beats: dict[Path, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # high-passed lead, R peaks

    def read(self, path: Path, source_fs: float | None) -> np.ndarray:
        signal, self.found[path] = read_one(path, self.fs, self.lead, self.leads, source_fs, self.max_gap_s)
        check_rate(path, source_fs)
        if self.config is not None:
            stated = source_fs if source_fs is not None else stated_rate(path)
            self.beats[path] = check_beats(signal, path, self.fs, list(self.leads or ()), self.config, stated)
            check_limb_leads(path, self.fs, source_fs, self.max_gap_s, self.config)
        return signal

    def __call__(self, table: pd.DataFrame, problems: Problems) -> None:
        rate = table["fs"] if "fs" in table.columns else pd.Series(np.nan, index=table.index)

        def one(path: Path, i: int) -> np.ndarray | None:
            source_fs = None if pd.isna(rate.iloc[i]) else float(rate.iloc[i])
            if not self.skip_bad:
                return self.read(path, source_fs)
            try:
                return self.read(path, source_fs)
            except CardioError as exc:
                self.log.warning("skipping a bad cohort ECG: %s", exc)
                self.skipped[i] = str(exc)
                return None

        read = read_records(table, problems, "ecg", one, progress=self.progress, desc="cohort ECGs")
        self.signals = {i: s for i, s in read.items() if s is not None}
        say_leads_read(self.found, self.leads or [lead_name(self.lead)], Path(problems.file).parent, self.log)
        if self.config is not None and EcgSettings.of(self.config).signal_checks.same_recording:
            same_recording_problems(table, problems, self.beats, self.fs)


def same_recording_problems(table: pd.DataFrame, problems: Problems, beats: dict[Path, tuple[np.ndarray, np.ndarray]],
                            fs: float) -> None:
    """One recording under two patients, by signal (cardio_signal.same_signal: R-R intervals, then the waveform): a
    re-export or a later cut has other bytes. Files of the same bytes are the core's to name (cohort._shared_files)."""
    rows = {Path(str(path)): i for i, path in enumerate(table["ecg"]) if path is not None}
    records = {rows[path]: Recording(rpeaks / fs, filtered, fs) for path, (filtered, rpeaks) in beats.items()
               if path in rows}
    copy_problems(table, problems, "ecg", same_recordings(records), "recording",
                  "the same R-R intervals, and waveforms that", lag=True)


def say_leads_read(found: dict[Path, list[str]], asked: Sequence[str | None], root: Path,
                   log: logging.Logger) -> None:
    """Once for the cohort, not once a file: how many files were read from a stand-in for the lead asked (MLII for
    II) and how many, lacking lead II, from their first lead (ecg_transfer.lead null), with the leads and files."""
    stand_ins: dict[str, list[str]] = {}
    firsts: dict[str, list[str]] = {}
    for path, names in found.items():
        for want, name in zip(asked, names):
            got = canonical_lead(name)
            if got == canonical_lead(want or "II"):
                continue
            shown = os.path.relpath(path, root) if Path(path).is_relative_to(root) else str(path)
            if (stand_in(name) or got) == (stand_in(want) or canonical_lead(want or "II")):
                stand_ins.setdefault(f"no lead {canonical_lead(want or 'II')}: its stand-in {got} is read",
                                     []).append(shown)
            elif want is None:
                firsts.setdefault(repr(name), []).append(shown)
    for what, files in stand_ins.items():
        log.info("%d of %d ECG file(s) have %s (a modified lead, MLII, and its standard lead, II, stand in for each "
                 "other), e.g. %s", len(files), len(found), what, ", ".join(files[:3]))
    if firsts:
        n = sum(map(len, firsts.values()))
        leads = "; ".join(f"{lead} in {len(files)}: {', '.join(files[:3])}{' ...' if len(files) > 3 else ''}"
                          for lead, files in firsts.items())
        log.warning("%d of %d ECG file(s) have no lead II; their first lead is read (%s); set ecg_transfer.lead to "
                    "choose another", n, len(found), leads)


def named_covariates(config: dict) -> dict[str, list[str]]:
    """Cohort columns the config's baseline models read: column -> the config keys naming it."""
    b = EcgSettings.of(config).baselines
    named: dict[str, list[str]] = {}
    if b.svm.enabled or b.rf.enabled or b.logistic.enabled:
        for c in b.covariates:
            named.setdefault(c, []).append("ecg_transfer.baselines.covariates")
    if b.guideline.enabled:
        g = b.guideline
        for k, column in (("qrs_column", g.qrs_column), ("lvef_column", g.lvef_column),
                          ("lbbb_column", g.lbbb_column)):
            named.setdefault(column, []).append(f"ecg_transfer.baselines.guideline.{k}")
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
                      reader: ECGReader | None = None) -> pd.DataFrame:
    """cohort.csv of folder `root`, typed and checked (cardio.data.cohort.read_table); raises CohortProblems. With
    `reader`, every ECG is read (its signals kept in the reader); with `config`, the columns its models read must
    hold values."""
    checks: list[Callable[[pd.DataFrame, Problems], None]] = [
        rate_given, functools.partial(signal_files, root=Path(root).expanduser(), allow_outside=allow_outside)]
    if reader is not None:
        checks.append(reader)
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
    `lead`; NaN gaps up to `max_gap_s` bridged, longer refused). Every ECG is read with the table (ECGReader; with
    `config`, its beats found as featurize finds them), so an ECG that cannot be read is a problem listed with the
    table's (CohortProblems), or with `skip_bad` is left out, listed in `skipped` and logged to `log` (the run's log
    in a run). Messages name files and CSV lines, never patients."""
    root = Path(root).expanduser()
    reader = ECGReader(float(fs), lead, leads, max_gap_s, skip_bad, config, progress, log)
    table = read_cohort_table(root, schema, allow_outside=allow_outside, log=log, config=config, reader=reader)
    keep = np.array([i in reader.signals for i in range(len(table))], bool)
    signals = {str(table["record_id"].iloc[i]): reader.signals[i] for i in np.flatnonzero(keep).tolist()}
    skipped = [(str(table["record_id"].iloc[i]), why) for i, why in sorted(reader.skipped.items())]
    table = table[keep].reset_index(drop=True)
    if table.empty:
        raise CardioError(f"{root / schema.table}: no readable ECG record left in the cohort")
    return CohortECGs(table, signals, float(fs), root, skipped)
