"""Multi-lead ECG files: WFDB, DICOM waveform (pydicom), EDF (pyEDFlib) and CSV, read as (leads, samples) at one rate.

A 12-lead ECG arrives in any of these formats; each reader returns the leads asked for, by name, resampled to
the rate the models work at. A lead the file lacks, a rate out of range or a file the library cannot read is one
CardioError naming the file. Writers for the same formats serve the synthetic cohort and the tests.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from cardio import CardioError, atomic_path
from cardio_ecg_transfer.records import MAX_FS, MIN_FS, check_lead, read_ecg, resample_signal

#: File suffixes read here besides WFDB and the single-lead readers of records.py.
DICOM_SUFFIXES = (".dcm", ".dicom")
EDF_SUFFIXES = (".edf",)
#: DICOM 12-lead ECG waveform storage (PS3.4 A.34.3).
TWELVE_LEAD_SOP = "1.2.840.10008.5.1.4.1.1.9.1.1"
#: MDC codes of the 12 standard leads (ISO/IEEE 11073-10101, DICOM CID 3001), for the DICOM writer.
MDC_LEADS = {"I": "2:1", "II": "2:2", "III": "2:61", "aVR": "2:62", "aVL": "2:63", "aVF": "2:64",
             "V1": "2:3", "V2": "2:4", "V3": "2:5", "V4": "2:6", "V5": "2:7", "V6": "2:8"}


@dataclass
class MultiLead:
    """Leads (n_leads, n_samples) at `fs` Hz, in the order asked for."""

    signals: np.ndarray
    names: list[str]
    fs: float
    source: Path


def _norm(name: str) -> str:
    # "Lead II" (DICOM code meanings), "ECG II" and "II" (EDF labels) name the same lead
    n = str(name).strip()
    for prefix in ("lead ", "ecg "):
        if n.lower().startswith(prefix):
            n = n[len(prefix):]
    return n.strip().lower()


def _pick(names: Sequence[str], wanted: Sequence[str], path: Path) -> list[int]:
    out = []
    for lead in wanted:
        hits = [i for i, n in enumerate(names) if n == lead] or [i for i, n in enumerate(names)
                                                                 if _norm(n) == _norm(lead)]
        if not hits:
            raise CardioError(f"{path}: no lead named {lead!r}; the file has {list(names)}")
        out.append(hits[0])
    return out


def _check_rate(source_fs: float, path: Path) -> float:
    try:
        source_fs = float(source_fs)
    except (TypeError, ValueError):
        raise CardioError(f"{path}: sampling rate {source_fs!r} is not a number") from None
    if not np.isfinite(source_fs) or not MIN_FS <= source_fs <= MAX_FS:
        raise CardioError(f"{path}: sampling rate {source_fs:g} Hz is outside {MIN_FS:g}-{MAX_FS:g} Hz")
    return source_fs


def _finish(raw: list[np.ndarray], rates: list[float], names: list[str], fs: float, path: Path) -> MultiLead:
    if len(set(rates)) > 1:
        raise CardioError(f"{path}: leads {names} are sampled at different rates {sorted(set(rates))} Hz")
    rate = _check_rate(rates[0], path)
    sigs = [resample_signal(check_lead(x, path, n), rate, fs) for x, n in zip(raw, names)]
    n = min(len(s) for s in sigs)
    if n < 2 * fs:
        raise CardioError(f"{path}: {n / fs:.2f} s of signal; at least 2 s are needed to find beats")
    return MultiLead(np.stack([s[:n] for s in sigs]), list(names), float(fs), path)


def read_edf(path: Path, leads: Sequence[str], fs: float) -> MultiLead:
    import pyedflib

    try:
        with pyedflib.EdfReader(str(path)) as f:
            labels = [s.strip() for s in f.getSignalLabels()]
            idx = _pick(labels, leads, path)
            raw = [f.readSignal(i) for i in idx]
            rates = [float(f.getSampleFrequency(i)) for i in idx]
    except OSError as exc:
        raise CardioError(f"{path}: unreadable EDF file ({str(exc).strip() or type(exc).__name__})") from None
    return _finish(raw, rates, list(leads), fs, path)


def _dicom_label(channel) -> str:
    src = channel.get("ChannelSourceSequence")
    if src and src[0].get("CodeMeaning"):
        return str(src[0].CodeMeaning)
    return str(channel.get("ChannelLabel", ""))


#: Channel sensitivity units (UCUM codes) to mV.
_MV_PER_UNIT = {"uV": 1e-3, "mV": 1.0, "V": 1e3}


def _unit(channel) -> str:
    units = channel.get("ChannelSensitivityUnitsSequence")
    return str(units[0].get("CodeValue", "mV")) if units else "mV"


def read_dicom_waveform(path: Path, leads: Sequence[str], fs: float) -> MultiLead:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, EOFError, ValueError) as exc:
        raise CardioError(f"{path}: unreadable DICOM file ({str(exc).strip() or type(exc).__name__})") from None
    if "WaveformSequence" not in ds or not len(ds.WaveformSequence):
        raise CardioError(f"{path}: DICOM file holds no waveform (WaveformSequence)")
    group = ds.WaveformSequence[0]  # the first multiplex group holds the rhythm leads
    labels = [_dicom_label(c) for c in group.ChannelDefinitionSequence]
    idx = _pick(labels, leads, path)
    try:
        data = ds.waveform_array(0)  # (samples, channels), sensitivity and baseline applied
    except (ValueError, AttributeError, KeyError) as exc:
        raise CardioError(f"{path}: unreadable DICOM waveform data ({exc})") from None
    rate = float(group.SamplingFrequency)
    # waveform_array gives values in each channel's sensitivity unit; the models work in mV
    scale = [_MV_PER_UNIT.get(_unit(group.ChannelDefinitionSequence[i]), 1.0) for i in idx]
    return _finish([data[:, i] * s for i, s in zip(idx, scale)], [rate] * len(idx), list(leads), fs, path)


def read_leads(path: Path | str, leads: Sequence[str], fs: float = 360.0, source_fs: float | None = None) -> MultiLead:
    """The named `leads` of one ECG file at `fs` Hz, by suffix: .dcm (DICOM waveform), .edf (EDF), else WFDB,
    .csv or .npy through records.read_ecg (a .csv/.npy needs `source_fs`)."""
    path = Path(path)
    leads = [str(n) for n in leads]
    if not leads:
        raise CardioError(f"{path}: no lead asked for")
    suffix = path.suffix.lower()
    if suffix in DICOM_SUFFIXES + EDF_SUFFIXES and not path.is_file():
        raise CardioError(f"{path}: ECG file not found")
    if suffix in DICOM_SUFFIXES:
        return read_dicom_waveform(path, leads, fs)
    if suffix in EDF_SUFFIXES:
        return read_edf(path, leads, fs)
    recs = [read_ecg(path, fs, lead, source_fs) for lead in leads]
    n = min(len(r.signal) for r in recs)
    return MultiLead(np.stack([r.signal[:n] for r in recs]), leads, float(fs), path)


# --------------------------------------------------------------------------- writers (synthetic cohort, tests)

def write_edf(path: Path | str, signals: np.ndarray, fs: float, names: Sequence[str]) -> Path:
    """signals (samples, leads) in mV as an EDF+ file (pyEDFlib, 16-bit, physical range from the data)."""
    import pyedflib

    path, x = Path(path), np.asarray(signals, dtype=np.float64)
    headers = []
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


def write_dicom_waveform(path: Path | str, signals: np.ndarray, fs: float, names: Sequence[str]) -> Path:
    """signals (samples, leads) in mV as a DICOM 12-lead ECG waveform object (16-bit, 1 uV per unit).

    pydicom reads waveforms but has no writer for them, so the module is built here (PS3.3 C.10.9)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    x = np.asarray(signals, dtype=np.float64)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = TWELVE_LEAD_SOP
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = TWELVE_LEAD_SOP, meta.MediaStorageSOPInstanceUID
    ds.Modality = "ECG"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    group = Dataset()
    group.WaveformOriginality = "ORIGINAL"
    group.NumberOfWaveformChannels = len(names)
    group.NumberOfWaveformSamples = len(x)
    group.SamplingFrequency = f"{float(fs):g}"
    group.MultiplexGroupLabel = "RHYTHM"
    channels = []
    for name in names:
        src = Dataset()
        src.CodeValue, src.CodingSchemeDesignator = MDC_LEADS.get(str(name), "2:0"), "MDC"
        src.CodeMeaning = f"Lead {name}"
        unit = Dataset()
        unit.CodeValue, unit.CodingSchemeDesignator, unit.CodeMeaning = "uV", "UCUM", "microvolt"
        ch = Dataset()
        ch.ChannelSourceSequence = [src]
        ch.ChannelSensitivity = "1"
        ch.ChannelSensitivityUnitsSequence = [unit]
        ch.ChannelSensitivityCorrectionFactor = "1"
        ch.ChannelBaseline = "0"
        ch.ChannelSampleSkew = "0"
        ch.WaveformBitsStored = 16
        channels.append(ch)
    group.ChannelDefinitionSequence = channels
    group.WaveformBitsAllocated = 16
    group.WaveformSampleInterpretation = "SS"
    group.WaveformData = np.clip(np.rint(x * 1000), -32768, 32767).astype("<i2").tobytes()
    ds.WaveformSequence = [group]
    path = Path(path)
    with atomic_path(path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return path


def write_csv(path: Path | str, signals: np.ndarray, names: Sequence[str]) -> Path:
    """signals (samples, leads) in mV as a CSV with one column per lead (its rate goes in the cohort's fs column)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        pd.DataFrame(np.asarray(signals), columns=[str(n) for n in names]).to_csv(tmp, index=False, float_format="%.4f")
    return path
