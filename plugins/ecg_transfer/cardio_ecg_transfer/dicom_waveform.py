"""DICOM ECG waveform files (12-lead and general ECG storage) as a cart writes them, read with pydicom.

A file holds multiplex groups (PS3.3 C.10.9): a cart writes the rhythm strip ("RHYTHM") and often a median beat
("MEDIAN BEAT") as two groups, in either order. The rhythm group is chosen by its label (else the first group that
is not a median beat); `group="median"` gives the median beat. Each channel's lead is read from its
ChannelSourceSequence code (CID 3001, SCP-ECG 5.6.3-9-N or MDC 2:N), else its code meaning, else its label.

Values: pydicom's `Dataset.waveform_array(i)` returns raw x ChannelSensitivity x ChannelSensitivityCorrectionFactor
+ ChannelBaseline (the baseline in the sensitivity's unit), per channel, but does not convert units: the
sensitivity's unit (ChannelSensitivityUnitsSequence, UCUM uV, mV or V) is turned into mV here. A channel without
a sensitivity is refused (raw ADC counts would pass for millivolts).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from cardio import CardioError, atomic_path
from cardio.data.file_kind import misnamed, read_dicom
from cardio_ecg_transfer.lead_codes import LEAD_NUMBER, Waveform, canonical_lead

#: DICOM 12-lead ECG waveform storage (PS3.4 A.34.3).
TWELVE_LEAD_SOP = "1.2.840.10008.5.1.4.1.1.9.1.1"
RHYTHM = "RHYTHM"
MEDIAN = "MEDIAN BEAT"
#: Channel sensitivity units (UCUM codes) to mV.
MV_PER_UNIT = {"uV": 1e-3, "mV": 1.0, "V": 1e3}


def _open(path: Path):
    if not path.is_file():
        raise CardioError(f"{path}: ECG file not found")
    wrong = misnamed(path, "DICOM")
    if wrong:
        raise CardioError(wrong)
    ds = read_dicom(path)
    if "WaveformSequence" not in ds or not len(ds.WaveformSequence):
        raise CardioError(f"{path}: DICOM file holds no waveform (WaveformSequence)")
    return ds


def _is_median(label: str) -> bool:
    return "MEDIAN" in label or "REPRESENTATIVE" in label


def group_index(ds, group: str, path: Path) -> int:
    """The multiplex group asked for: "rhythm" (labelled RHYTHM, else the first not a median beat) or "median"."""
    labels = [str(g.get("MultiplexGroupLabel", "")).strip().upper() for g in ds.WaveformSequence]
    if group == "median":
        found = [i for i, lab in enumerate(labels) if _is_median(lab)]
    else:
        found = [i for i, lab in enumerate(labels) if lab == RHYTHM] or \
                [i for i, lab in enumerate(labels) if not _is_median(lab)]
    if not found:
        raise CardioError(f"{path}: no {group} multiplex group; the file has {labels}")
    return found[0]


def channel_lead(channel) -> str:
    """A channel's lead (lead_codes.canonical_lead): its CID 3001 code value, else its code meaning, else its label
    (cleaned, when none is a standard lead)."""
    src = channel.get("ChannelSourceSequence")
    code = src[0] if src else None
    label = str(channel.get("ChannelLabel", "")).strip()
    return canonical_lead(label, code=code.get("CodeValue") if code else None,
                          meaning=code.get("CodeMeaning") if code else None)


def _mv_per_unit(channel, path: Path, lead: str) -> float:
    if channel.get("ChannelSensitivity") in (None, ""):
        raise CardioError(f"{path}: channel {lead} states no ChannelSensitivity (its values would be raw counts)")
    units = channel.get("ChannelSensitivityUnitsSequence")
    unit = str(units[0].get("CodeValue", "")) if units else ""
    if unit not in MV_PER_UNIT:
        raise CardioError(f"{path}: channel {lead} is in unit {unit or 'none stated'!r}; expected one of "
                          f"{list(MV_PER_UNIT)} (ChannelSensitivityUnitsSequence)")
    return MV_PER_UNIT[unit]


def _check_group(item, path: Path) -> None:
    channels = item.get("ChannelDefinitionSequence") or []
    n_ch, n = int(item.get("NumberOfWaveformChannels", 0) or 0), int(item.get("NumberOfWaveformSamples", 0) or 0)
    if not channels or n_ch != len(channels):
        raise CardioError(f"{path}: the waveform declares {n_ch} channel(s) and defines {len(channels)}")
    if "WaveformData" not in item or int(item.get("WaveformBitsAllocated", 0) or 0) not in (8, 16, 32):
        raise CardioError(f"{path}: the waveform has no WaveformData of 8, 16 or 32 bits")
    need = n * n_ch * int(item.WaveformBitsAllocated) // 8
    have = len(item.WaveformData)
    if not n or have < need:
        raise CardioError(f"{path}: truncated waveform data: {n} samples x {n_ch} channels need {need} bytes, the "
                          f"file holds {have}")


def read_waveform(path: Path | str, group: str = "rhythm") -> Waveform:
    """Every channel of the rhythm (or median-beat) group of a DICOM ECG, named by lead, in mV."""
    path = Path(path)
    ds = _open(path)
    index = group_index(ds, group, path)
    item = ds.WaveformSequence[index]
    _check_group(item, path)
    names = [channel_lead(c) for c in item.ChannelDefinitionSequence]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise CardioError(f"{path}: lead(s) {twice} appear on more than one channel")
    try:
        data = ds.waveform_array(index)  # sensitivity, correction factor and baseline applied (module docstring)
    except (ValueError, AttributeError, KeyError, TypeError) as exc:
        raise CardioError(f"{path}: unreadable DICOM waveform data ({exc})") from None
    leads = {name: data[:, j] * _mv_per_unit(ch, path, name)
             for j, (name, ch) in enumerate(zip(names, item.ChannelDefinitionSequence))}
    try:
        fs = float(item.SamplingFrequency)
    except (AttributeError, TypeError, ValueError):
        raise CardioError(f"{path}: the waveform states no sampling frequency") from None
    label = str(item.get("MultiplexGroupLabel", "")).strip() or group
    return Waveform(leads, fs, label, path)


# --------------------------------------------------------------------------- writer (synthetic cohort, tests)

#: How carts name a channel: (code value, coding scheme, code meaning, channel label) for a lead.
STYLES = {
    "mdc": lambda lead: (f"2:{LEAD_NUMBER[lead]}", "MDC", f"Lead {lead}", lead),
    "scpecg": lambda lead: (f"5.6.3-9-{LEAD_NUMBER[lead]}", "SCPECG", _cid_meaning(lead), ""),
    "meaning": lambda lead: (f"L{LEAD_NUMBER[lead]}", "99CART", _cid_meaning(lead), "Channel"),
    "label": lambda lead: ("0", "99CART", "", f"ECG {lead.upper()}"),
}


def _cid_meaning(lead: str) -> str:
    # CID 3001's code meanings
    return {"I": "Lead I (Einthoven)", "II": "Lead II", "III": "Lead III",
            "aVR": "Lead aVR, augmented voltage, right", "aVL": "Lead aVL, augmented voltage, left",
            "aVF": "Lead aVF, augmented voltage, foot"}.get(lead, f"Lead {lead}")


def _channel(lead: str, style: str, unit: str, sensitivity: float, correction: float, baseline: float):
    from pydicom.dataset import Dataset

    value, scheme, meaning, label = STYLES[style](lead)
    src = Dataset()
    src.CodeValue, src.CodingSchemeDesignator, src.CodeMeaning = value, scheme, meaning
    units = Dataset()
    units.CodeValue, units.CodingSchemeDesignator, units.CodeMeaning = unit, "UCUM", unit
    ch = Dataset()
    ch.ChannelSourceSequence = [src]
    if label:
        ch.ChannelLabel = label
    ch.ChannelSensitivity = f"{sensitivity:g}"
    ch.ChannelSensitivityUnitsSequence = [units]
    ch.ChannelSensitivityCorrectionFactor = f"{correction:g}"
    ch.ChannelBaseline = f"{baseline:g}"
    ch.ChannelSampleSkew = "0"
    ch.WaveformBitsStored = 16
    return ch


def quantise(signals: np.ndarray, unit: str = "uV", sensitivity: float = 1.0, correction: float = 1.0,
             baseline: float = 0.0) -> np.ndarray:
    """signals in mV as the int16 samples a channel of this sensitivity stores (what the writer writes)."""
    x = np.asarray(signals, dtype=np.float64) / MV_PER_UNIT[unit]
    return np.clip(np.rint((x - baseline) / (sensitivity * correction)), -32768, 32767).astype("<i2")


def _group(signals: np.ndarray, fs: float, names: Sequence[str], label: str, style: str, scale: dict):
    from pydicom.dataset import Dataset

    x = np.asarray(signals, dtype=np.float64)
    group = Dataset()
    group.WaveformOriginality = "ORIGINAL" if label == RHYTHM else "DERIVED"
    group.NumberOfWaveformChannels, group.NumberOfWaveformSamples = len(names), len(x)
    group.SamplingFrequency = f"{float(fs):g}"
    group.MultiplexGroupLabel = label
    group.ChannelDefinitionSequence = [_channel(str(n), style, **scale) for n in names]
    group.WaveformBitsAllocated, group.WaveformSampleInterpretation = 16, "SS"
    group.WaveformData = quantise(x, **scale).tobytes()  # (samples, channels), channels interleaved
    return group


def write_waveform(path: Path | str, signals: np.ndarray, fs: float, names: Sequence[str], *, style: str = "mdc",
                   median: np.ndarray | None = None, median_first: bool = False, unit: str = "uV",
                   sensitivity: float = 1.0, correction: float = 1.0, baseline: float = 0.0) -> Path:
    """signals (samples, leads) in mV as a DICOM 12-lead ECG file, channels named in a cart's `style` (STYLES),
    16-bit at `sensitivity` x `correction` `unit` per count plus `baseline`; `median` (samples, leads) adds a
    MEDIAN BEAT group (before the rhythm group with `median_first`). pydicom has no waveform writer: the module is
    built here (PS3.3 C.10.9)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

    scale = dict(unit=unit, sensitivity=sensitivity, correction=correction, baseline=baseline)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = UID(TWELVE_LEAD_SOP), generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = TWELVE_LEAD_SOP, meta.MediaStorageSOPInstanceUID
    ds.Modality = "ECG"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    groups = [_group(signals, fs, names, RHYTHM, style, scale)]
    if median is not None:
        groups.insert(0 if median_first else 1, _group(median, fs, names, MEDIAN, style, scale))
    ds.WaveformSequence = groups
    path = Path(path)
    with atomic_path(path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return path
