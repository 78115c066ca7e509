"""Multi-lead ECG files: WFDB, DICOM waveform (pydicom), GE MUSE and HL7 aECG XML, EDF (pyEDFlib) and CSV, read as
(leads, samples) at one rate.

A 12-lead ECG arrives in any of these formats; each reader returns the leads asked for, by name, resampled to
the rate the models work at. A lead the file lacks, a rate out of range or a file the library cannot read is one
CardioError naming the file. The EDF and CSV writers here, and those of dicom_waveform, muse_xml and hl7_aecg, serve
the synthetic cohort and the tests.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from cardio import CardioError, atomic_path
from cardio.data.files import npy_header
from cardio_ecg_transfer import dicom_waveform, hl7_aecg, muse_xml
from cardio_ecg_transfer.ecg_xml import root_name
from cardio_ecg_transfer.lead_codes import STANDARD_LEADS, Waveform, canonical_lead
from cardio_ecg_transfer.records import (
    MAX_FS,
    MAX_GAP_S,
    MIN_FS,
    _pick_lead,
    check_lead,
    csv_leads,
    default_lead,
    find_lead,
    probe_wfdb,
    read_ecg,
    resample_signal,
)

#: File suffixes read here besides WFDB and the single-lead readers of records.py.
DICOM_SUFFIXES = (".dcm", ".dicom")
XML_SUFFIXES = (".xml",)
EDF_SUFFIXES = (".edf",)
#: Files holding several leads by name: read through read_leads even when one lead is asked for.
MULTI_LEAD_SUFFIXES = DICOM_SUFFIXES + XML_SUFFIXES + EDF_SUFFIXES


@dataclass
class MultiLead:
    """Leads (n_leads, n_samples) at `fs` Hz, in the order asked for."""

    signals: np.ndarray
    names: list[str]
    fs: float
    source: Path
    found: list[str] = field(default_factory=list)  # each lead's name in the file (MLII read for II, a first lead)


def _pick(names: Sequence[str], wanted: Sequence[str | None], path: Path) -> list[int]:
    """The index of each lead asked for among the file's `names`, matched as clinicians write them (records.find_lead:
    "Lead II", "ECG II", "LEAD_II", "ii" are II, MLII stands in for II); None: lead II, else the first lead
    (records.default_lead, as for every format); a lead the file lacks is an error listing the leads it has."""
    out = []
    for lead in wanted:
        if lead is None:
            out.append(default_lead(names, path))
            continue
        found = find_lead(names, lead, path)
        if found is None:
            raise CardioError(f"{path}: no lead named {lead!r}; the file has {list(names)}")
        out.append(found)
    return out


def _check_rate(source_fs: float, path: Path) -> float:
    try:
        source_fs = float(source_fs)
    except (TypeError, ValueError):
        raise CardioError(f"{path}: sampling rate {source_fs!r} is not a number") from None
    if not np.isfinite(source_fs) or not MIN_FS <= source_fs <= MAX_FS:
        raise CardioError(f"{path}: sampling rate {source_fs:g} Hz is outside {MIN_FS:g}-{MAX_FS:g} Hz")
    return source_fs


def _finish(raw: list[np.ndarray], rates: list[float], names: list[str], fs: float, path: Path,
            max_gap_s: float = MAX_GAP_S, found: Sequence[str] = ()) -> MultiLead:
    if len(set(rates)) > 1:
        raise CardioError(f"{path}: leads {names} are sampled at different rates {sorted(set(rates))} Hz")
    rate = _check_rate(rates[0], path)
    sigs = [resample_signal(check_lead(x, path, n, rate, max_gap_s), rate, fs) for x, n in zip(raw, names)]
    n = min(len(s) for s in sigs)
    if n < 2 * fs:
        raise CardioError(f"{path}: {n / fs:.2f} s of signal; at least 2 s are needed to find beats")
    return MultiLead(np.stack([s[:n] for s in sigs]), list(names), float(fs), path, list(found or names))


def _asked(leads: Sequence[str | None], found: Sequence[str]) -> list[str]:
    """The names of the leads read: as asked, or (None: the default lead) the file's own, normalised."""
    return [canonical_lead(f) if lead is None else lead for lead, f in zip(leads, found)]


def read_edf(path: Path, leads: Sequence[str | None], fs: float, max_gap_s: float = MAX_GAP_S) -> MultiLead:
    import pyedflib

    try:
        with pyedflib.EdfReader(str(path)) as f:
            labels = [s.strip() for s in f.getSignalLabels()]
            idx = _pick(labels, leads, path)
            raw = [f.readSignal(i) for i in idx]
            rates = [float(f.getSampleFrequency(i)) for i in idx]
    except OSError as exc:
        raise CardioError(f"{path}: unreadable EDF file ({str(exc).strip() or type(exc).__name__})") from None
    found = [labels[i] for i in idx]
    return _finish(raw, rates, _asked(leads, found), fs, path, max_gap_s, found)


def read_waveform(path: Path | str, group: str = "rhythm") -> Waveform:
    """Every lead of a cart file, in mV at the file's rate: a DICOM waveform (.dcm), a GE MUSE or an HL7 aECG XML
    file (.xml, told apart by the root element); `group` "rhythm" or "median" (the median or representative beat)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise CardioError(f"{path}: ECG file not found")
    if suffix in DICOM_SUFFIXES:
        return dicom_waveform.read_waveform(path, group)
    if suffix in XML_SUFFIXES:
        root = root_name(path)
        if root == muse_xml.ROOT:
            return muse_xml.read_muse(path, group)
        if root == hl7_aecg.ROOT:
            return hl7_aecg.read_aecg(path, group)
        raise CardioError(f"{path}: neither a GE MUSE (<RestingECG>) nor an HL7 aECG (<AnnotatedECG>) XML file"
                          + (f" (root <{root}>)" if root else " (no readable XML)"))
    raise CardioError(f"{path}: not a cart file (.dcm or .xml)")


def _from_waveform(path: Path, leads: Sequence[str | None], fs: float, max_gap_s: float = MAX_GAP_S) -> MultiLead:
    wave = read_waveform(path)
    names = list(wave.leads)
    idx = _pick(names, leads, path)
    found = [names[i] for i in idx]
    return _finish([wave.leads[n] for n in found], [wave.fs] * len(idx), _asked(leads, found), fs, path, max_gap_s,
                   found)


def lead_name(lead: str | int | None) -> str | None:
    """ecg_transfer.lead as a lead of a file read as the standard leads: a name, a 0-based index into the twelve
    standard leads, or None (lead II, else the file's first lead: records.default_lead)."""
    if lead is None:
        return None
    if isinstance(lead, int) and not isinstance(lead, bool):
        if not 0 <= lead < len(STANDARD_LEADS):
            raise CardioError(f"config key ecg_transfer.lead = {lead}: a 12-lead file's index runs 0 to 11 "
                              f"{list(STANDARD_LEADS)}")
        return STANDARD_LEADS[lead]
    return str(lead)


def read_leads(path: Path | str, leads: Sequence[str | None], fs: float = 360.0, source_fs: float | None = None,
               max_gap_s: float = MAX_GAP_S) -> MultiLead:
    """The named `leads` of one ECG file at `fs` Hz, by suffix: .dcm (DICOM waveform), .xml (GE MUSE, HL7 aECG),
    .edf (EDF), else WFDB, .csv or .npy through records.read_ecg (a .csv/.npy needs `source_fs`); a None in `leads`
    is lead II, else the file's first lead, in every format (records.default_lead); NaN gaps up to `max_gap_s`
    bridged, longer refused (records.check_lead)."""
    path = Path(path)
    leads = [None if n is None else str(n) for n in leads]
    if not leads:
        raise CardioError(f"{path}: no lead asked for")
    suffix = path.suffix.lower()
    if suffix in MULTI_LEAD_SUFFIXES and not path.is_file():
        raise CardioError(f"{path}: ECG file not found")
    if suffix in DICOM_SUFFIXES + XML_SUFFIXES:
        return _from_waveform(path, leads, fs, max_gap_s)
    if suffix in EDF_SUFFIXES:
        return read_edf(path, leads, fs, max_gap_s)
    recs = [read_ecg(path, fs, lead, source_fs, max_gap_s) for lead in leads]
    n = min(len(r.signal) for r in recs)
    found = [r.lead for r in recs]
    return MultiLead(np.stack([r.signal[:n] for r in recs]), _asked(leads, found), float(fs), path, found)


def _probe_edf(path: Path, leads: Sequence[str | None]) -> None:
    import pyedflib

    try:
        with pyedflib.EdfReader(str(path)) as f:
            labels = [s.strip() for s in f.getSignalLabels()]
            rates = [float(f.getSampleFrequency(i)) for i in _pick(labels, leads, path)]
    except OSError as exc:
        raise CardioError(f"{path}: unreadable EDF file ({str(exc).strip() or type(exc).__name__})") from None
    _check_rate(rates[0], path)


def _probe_npy(path: Path) -> None:
    shape, dtype, _ = npy_header(path)  # its claimed size checked against the file's
    if len(shape) not in (1, 2) or not np.issubdtype(dtype, np.number):
        raise CardioError(f"{path}: expected a numeric array (samples,) or (samples, leads), found {dtype} {shape}")


def probe(path: Path | str, leads: Sequence[str | int | None], source_fs: float | None = None) -> None:
    """Check that an ECG file reads and holds `leads`, from its header where the format has one (cardio validate):
    WFDB header and file sizes, EDF and .npy headers, a CSV's header row; cart files (DICOM, XML) are parsed."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in DICOM_SUFFIXES + XML_SUFFIXES:
        wave = read_waveform(path)
        _pick(list(wave.leads), [lead_name(lead) for lead in leads], path)
        _check_rate(wave.fs, path)
    elif suffix in EDF_SUFFIXES:
        _probe_edf(path, [lead_name(lead) for lead in leads])
    elif suffix == ".npy":
        _probe_npy(path)
    elif suffix == ".csv":
        columns = csv_leads(path)  # with the file's own delimiter and decimal mark
        for lead in leads:
            _pick_lead(columns, lead, path)
    elif suffix in ("", ".hea", ".dat"):
        for lead in leads:
            probe_wfdb(path, lead)
    else:
        raise CardioError(f"{path}: unsupported ECG file type {suffix!r} (WFDB, .csv, .npy, .dcm, .xml or .edf)")


def file_leads(path: Path | str) -> list[str]:
    """The standard names (lead_codes.canonical_lead) of every lead a file holds, from its header where it has one;
    empty for a .npy file (its columns have no names)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in DICOM_SUFFIXES + XML_SUFFIXES:
        names = list(read_waveform(path).leads)
    elif suffix in EDF_SUFFIXES:
        import pyedflib

        with pyedflib.EdfReader(str(path)) as f:
            names = [s.strip() for s in f.getSignalLabels()]
    elif suffix == ".csv":
        names = csv_leads(path)
    elif suffix in ("", ".hea", ".dat"):
        import wfdb

        names = list(wfdb.rdheader(str(path.with_suffix("") if suffix else path)).sig_name or [])
    else:
        names = []
    return [canonical_lead(n) for n in names]


def stated_rate(path: Path | str) -> float | None:
    """The sampling rate (Hz) an ECG file states in its own header (WFDB, EDF, DICOM, XML); None for a .csv or .npy
    file, whose rate is the cohort table's `fs`."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".npy"):
        return None
    if suffix in DICOM_SUFFIXES + XML_SUFFIXES:
        return float(read_waveform(path).fs)
    if suffix in EDF_SUFFIXES:
        import pyedflib

        with pyedflib.EdfReader(str(path)) as f:
            return float(f.getSampleFrequency(0))
    import wfdb

    base = path.with_suffix("") if suffix in (".hea", ".dat") else path
    return float(wfdb.rdheader(str(base)).fs)


# --------------------------------------------------------------------------- writers (synthetic cohort, tests)

def write_edf(path: Path | str, signals: np.ndarray, fs: float, names: Sequence[str]) -> Path:
    """signals (samples, leads) in mV as an EDF+ file (pyEDFlib, 16-bit, physical range from the data)."""
    import pyedflib

    path, x = Path(path), np.asarray(signals, dtype=np.float64)
    headers: list[dict[str, str | int | float | None]] = []  # pyedflib's signal header type
    for j, name in enumerate(names):
        lo, hi = float(x[:, j].min()), float(x[:, j].max())
        pad = max(1e-3, 0.01 * (hi - lo))
        # EDF headers hold 8 characters per number: round the range outwards to 1 uV
        headers.append({"label": str(name), "dimension": "mV", "sample_frequency": float(fs),
                        "physical_min": float(np.floor((lo - pad) * 1e3) / 1e3),
                        "physical_max": float(np.ceil((hi + pad) * 1e3) / 1e3),
                        "digital_min": -32768, "digital_max": 32767})
    with atomic_path(path) as tmp:
        w = pyedflib.EdfWriter(str(tmp), len(names), file_type=pyedflib.FILETYPE_EDFPLUS)
        try:
            w.setSignalHeaders(headers)
            w.writeSamples([np.ascontiguousarray(x[:, j]) for j in range(len(names))])
        finally:
            w.close()
    return path


def write_csv(path: Path | str, signals: np.ndarray, names: Sequence[str]) -> Path:
    """signals (samples, leads) in mV as a CSV with one column per lead (its rate goes in the cohort's fs column)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        pd.DataFrame(np.asarray(signals), columns=[str(n) for n in names]).to_csv(tmp, index=False, float_format="%.4f")
    return path
