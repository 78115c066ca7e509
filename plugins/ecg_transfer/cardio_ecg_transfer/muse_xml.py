"""GE MUSE XML (`<RestingECG>`) resting ECGs: the rhythm or median waveform, every lead in mV.

Per `<Waveform>` (`<WaveformType>` Rhythm or Median; rate `<SampleBase>` x 10^`<SampleExponent>` Hz), each
`<LeadData>` holds `<LeadID>`, base64 little-endian int16 samples in `<WaveFormData>`, their count in
`<LeadSampleCountTotal>` and `<LeadAmplitudeUnitsPerBit>` in `<LeadAmplitudeUnits>` (MICROVOLTS, usually 4.88).
MUSE stores I, II and V1-V6: III, aVR, aVL and aVF are derived from I and II (lead_codes.derive_limb_leads).
Parsed with the standard library (ecg_xml says why).
"""
from __future__ import annotations

import base64
import binascii
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Sequence

import numpy as np

from cardio import CardioError, atomic_path
from cardio_ecg_transfer.ecg_xml import parse_xml
from cardio_ecg_transfer.lead_codes import Waveform, canonical_lead, derive_limb_leads

ROOT = "RestingECG"
#: `<LeadAmplitudeUnits>` to mV.
MV_PER_UNIT = {"MICROVOLTS": 1e-3, "MILLIVOLTS": 1.0, "VOLTS": 1e3}


def _text(elem: ET.Element, tag: str, path: Path, what: str) -> str:
    found = elem.find(tag)
    text = (found.text or "").strip() if found is not None else ""
    if not text:
        raise CardioError(f"{path}: {what} has no <{tag}>")
    return text


def _number(elem: ET.Element, tag: str, path: Path, what: str) -> float:
    value = _text(elem, tag, path, what)
    try:
        return float(value)
    except ValueError:
        raise CardioError(f"{path}: {what}: <{tag}> {value!r} is not a number") from None


def _waveform(root: ET.Element, group: str, path: Path) -> ET.Element:
    types = [(w.findtext("WaveformType") or "").strip() for w in root.findall("Waveform")]
    for w, kind in zip(root.findall("Waveform"), types):
        if kind.lower() == group:
            return w
    raise CardioError(f"{path}: no {group} waveform; the file has {types}")


def _lead(data: ET.Element, path: Path) -> tuple[str, np.ndarray]:
    """(lead name, samples in mV) of one <LeadData>; bad base64, a count that disagrees, an unknown unit: errors."""
    raw = _text(data, "LeadID", path, "a <LeadData>")
    name = canonical_lead(raw)
    what = f"lead {raw}"
    try:
        blob = base64.b64decode("".join(_text(data, "WaveFormData", path, what).split()), validate=True)
    except (binascii.Error, ValueError):
        raise CardioError(f"{path}: lead {raw}: <WaveFormData> is not valid base64") from None
    if len(blob) % 2:
        raise CardioError(f"{path}: lead {raw}: <WaveFormData> holds {len(blob)} bytes, not whole 16-bit samples")
    counts = np.frombuffer(blob, dtype="<i2")
    n = data.findtext("LeadSampleCountTotal")
    if n is not None and n.strip() and n.strip() != str(len(counts)):
        raise CardioError(f"{path}: lead {raw}: <LeadSampleCountTotal> {n.strip()} but <WaveFormData> holds "
                          f"{len(counts)} samples (truncated?)")
    per_bit = _number(data, "LeadAmplitudeUnitsPerBit", path, what)
    unit = (data.findtext("LeadAmplitudeUnits") or "MICROVOLTS").strip().upper()
    if unit not in MV_PER_UNIT:
        raise CardioError(f"{path}: lead {raw}: <LeadAmplitudeUnits> {unit!r} is none of {list(MV_PER_UNIT)}")
    return name, counts * per_bit * MV_PER_UNIT[unit]


def read_muse(path: Path | str, group: str = "rhythm") -> Waveform:
    """The rhythm (or "median") waveform of a MUSE XML file, with the derived limb leads."""
    path = Path(path)
    root = parse_xml(path, "MUSE")
    if root.tag != ROOT:
        raise CardioError(f"{path}: not a GE MUSE file (root <{root.tag}>, expected <{ROOT}>)")
    wave = _waveform(root, group, path)
    fs = _number(wave, "SampleBase", path, f"the {group} waveform") * 10 ** float(
        (wave.findtext("SampleExponent") or "0").strip() or 0)
    leads: dict[str, np.ndarray] = {}
    for data in wave.findall("LeadData"):
        name, x = _lead(data, path)
        if name in leads:
            raise CardioError(f"{path}: lead {name} appears twice in the {group} waveform")
        leads[name] = x
    if not leads:
        raise CardioError(f"{path}: the {group} waveform holds no <LeadData>")
    full = derive_limb_leads(leads)
    return Waveform(full, fs, group, path, derived=tuple(k for k in full if k not in leads))


# --------------------------------------------------------------------------- writer (tests)

def _lead_xml(parent: ET.Element, name: str, counts: np.ndarray, per_bit: float) -> None:
    data = ET.SubElement(parent, "LeadData")
    for tag, value in (("LeadByteCountTotal", 2 * len(counts)), ("LeadSampleCountTotal", len(counts)),
                       ("LeadAmplitudeUnitsPerBit", f"{per_bit:g}"), ("LeadAmplitudeUnits", "MICROVOLTS"),
                       ("LeadID", name)):
        ET.SubElement(data, tag).text = str(value)
    ET.SubElement(data, "WaveFormData").text = base64.b64encode(counts.astype("<i2").tobytes()).decode()


def quantise(signals: np.ndarray, per_bit: float = 4.88) -> np.ndarray:
    """signals in mV as MUSE's int16 counts of `per_bit` uV."""
    return np.clip(np.rint(np.asarray(signals, float) * 1000 / per_bit), -32768, 32767).astype("<i2")


def write_muse(path: Path | str, signals: np.ndarray, fs: float, names: Sequence[str], *, per_bit: float = 4.88,
               median: np.ndarray | None = None) -> Path:
    """signals (samples, leads) in mV as a MUSE XML file as MUSE writes it: the leads of `names` other than III,
    aVR, aVL and aVF (MUSE stores 8), a Rhythm waveform and, with `median`, a Median one first."""
    root = ET.Element(ROOT)
    ET.SubElement(root, "PatientDemographics")
    for kind, x in (("Median", median), ("Rhythm", signals)):
        if x is None:
            continue
        x = np.asarray(x, float)
        wave = ET.SubElement(root, "Waveform")
        ET.SubElement(wave, "WaveformType").text = kind
        ET.SubElement(wave, "SampleBase").text = f"{float(fs):g}"
        ET.SubElement(wave, "SampleExponent").text = "0"
        kept = [j for j, n in enumerate(names) if n not in ("III", "aVR", "aVL", "aVF")]
        ET.SubElement(wave, "NumberofLeads").text = str(len(kept))
        for j in kept:
            _lead_xml(wave, str(names[j]), quantise(x[:, j], per_bit), per_bit)
    path = Path(path)
    with atomic_path(path) as tmp:
        ET.ElementTree(root).write(tmp, encoding="utf-8", xml_declaration=True)
    return path
