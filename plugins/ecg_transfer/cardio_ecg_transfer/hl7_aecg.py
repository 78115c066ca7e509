"""HL7 v3 annotated ECG (aECG, the FDA's submission format): the rhythm or representative-beat waveform in mV.

`<AnnotatedECG>` holds `component/series` (the rhythm) and optionally `series/derivation/derivedSeries` (the
representative beat). Each has a `component/sequenceSet` of `sequence`s: one whose code is TIME_ABSOLUTE or
TIME_RELATIVE carries the sampling interval (`value/increment`, s or ms), and one per lead (code MDC_ECG_LEAD_*)
carries `value` with `origin`, `scale` (each with a UCUM unit) and `digits`: value = origin + scale x digit.
Leads left out (an 8-lead file) are derived from I and II. Parsed with the standard library (ecg_xml says why).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Sequence

import numpy as np

from cardio import CardioError, atomic_path
from cardio_ecg_transfer.ecg_xml import local_name, parse_xml
from cardio_ecg_transfer.lead_codes import Waveform, canonical_lead, derive_limb_leads

ROOT = "AnnotatedECG"
NS = "urn:hl7-org:v3"
MV_PER_UNIT = {"uV": 1e-3, "mV": 1.0, "V": 1e3}
S_PER_UNIT = {"s": 1.0, "ms": 1e-3}
_SERIES = {"rhythm": "{*}component/{*}series", "median": "{*}component/{*}series/{*}derivation/{*}derivedSeries"}


def _quantity(elem: ET.Element | None, units: dict, path: Path, what: str) -> float:
    """A physical quantity `<x value=".." unit=".."/>` in the unit units' 1.0 stands for."""
    if elem is None:
        raise CardioError(f"{path}: {what} is missing")
    value, unit = elem.get("value"), elem.get("unit", "")
    if unit not in units:
        raise CardioError(f"{path}: {what} is in unit {unit!r}, none of {list(units)}")
    try:
        return float(value or "") * units[unit]  # no value attribute: the ValueError of an empty one
    except (TypeError, ValueError):
        raise CardioError(f"{path}: {what} value {value!r} is not a number") from None


def _digits(value: ET.Element, path: Path, lead: str) -> np.ndarray:
    text = value.findtext("{*}digits")
    if text is None or not text.strip():
        raise CardioError(f"{path}: lead {lead} has no <digits>")
    try:
        return np.array(text.split(), dtype=np.float64)
    except ValueError:
        raise CardioError(f"{path}: lead {lead}: <digits> holds something other than whole numbers") from None


def _sequence_set(root: ET.Element, group: str, path: Path) -> ET.Element:
    series = root.find(_SERIES[group])
    found = series.find("{*}component/{*}sequenceSet") if series is not None else None
    if found is None:
        raise CardioError(f"{path}: no {group} sequenceSet (series/component/sequenceSet)")
    return found


def read_aecg(path: Path | str, group: str = "rhythm") -> Waveform:
    """The rhythm (or "median": the derived series) of an HL7 aECG file, every lead in mV."""
    path = Path(path)
    root = parse_xml(path, "HL7 aECG")
    if local_name(root.tag) != ROOT:
        raise CardioError(f"{path}: not an HL7 aECG file (root <{local_name(root.tag)}>, expected <{ROOT}>)")
    step, leads = None, {}
    for seq in _sequence_set(root, group, path).findall("{*}component/{*}sequence"):
        code_elem = seq.find("{*}code")
        code = code_elem.get("code", "") if code_elem is not None else ""
        value = seq.find("{*}value")
        if value is None:
            raise CardioError(f"{path}: sequence {code or '(no code)'} has no <value>")
        if code.startswith("TIME_"):
            step = _quantity(value.find("{*}increment"), S_PER_UNIT, path, f"{code} increment")
            continue
        name = canonical_lead(code, code=code)
        if name in leads:
            raise CardioError(f"{path}: lead {name} appears twice in the {group} sequenceSet")
        origin = _quantity(value.find("{*}origin"), MV_PER_UNIT, path, f"lead {name} origin")
        scale = _quantity(value.find("{*}scale"), MV_PER_UNIT, path, f"lead {name} scale")
        leads[name] = origin + scale * _digits(value, path, name)
    if step is None or not step > 0:
        raise CardioError(f"{path}: the {group} sequenceSet has no time sequence with a positive increment")
    if not leads:
        raise CardioError(f"{path}: the {group} sequenceSet holds no lead")
    full = derive_limb_leads(leads)
    return Waveform(full, 1.0 / step, group, path, derived=tuple(k for k in full if k not in leads))


# --------------------------------------------------------------------------- writer (tests)

def quantise(signals: np.ndarray, scale_uv: float = 2.5, origin_uv: float = 0.0) -> np.ndarray:
    """signals in mV as the aECG digits of `scale_uv` uV from `origin_uv`."""
    return np.rint((np.asarray(signals, float) * 1000 - origin_uv) / scale_uv).astype(np.int64)


def _sequence(parent: ET.Element, code: str, system: str) -> ET.Element:
    seq = ET.SubElement(ET.SubElement(parent, "component"), "sequence")
    ET.SubElement(seq, "code", code=code, codeSystem=system)
    return seq


def _sequence_set_xml(parent: ET.Element, x: np.ndarray, fs: float, names: Sequence[str], scale_uv: float,
                      origin_uv: float) -> None:
    seqset = ET.SubElement(ET.SubElement(parent, "component"), "sequenceSet")
    time = ET.SubElement(_sequence(seqset, "TIME_RELATIVE", "2.16.840.1.113883.5.4"), "value")
    time.set("{http://www.w3.org/2001/XMLSchema-instance}type", "GLIST_PQ")
    ET.SubElement(time, "head", value="0", unit="s")
    ET.SubElement(time, "increment", value=f"{1.0 / fs:.9g}", unit="s")
    for j, name in enumerate(names):
        value = ET.SubElement(_sequence(seqset, f"MDC_ECG_LEAD_{name}", "2.16.840.1.113883.6.24"), "value")
        value.set("{http://www.w3.org/2001/XMLSchema-instance}type", "SLIST_PQ")
        ET.SubElement(value, "origin", value=f"{origin_uv:g}", unit="uV")
        ET.SubElement(value, "scale", value=f"{scale_uv:g}", unit="uV")
        ET.SubElement(value, "digits").text = " ".join(map(str, quantise(x[:, j], scale_uv, origin_uv)))


def write_aecg(path: Path | str, signals: np.ndarray, fs: float, names: Sequence[str], *, scale_uv: float = 2.5,
               origin_uv: float = 0.0, median: np.ndarray | None = None) -> Path:
    """signals (samples, leads) in mV as an HL7 aECG file (the leads of `names`, digits of `scale_uv` uV from
    `origin_uv`); `median` adds a representative beat as the series' derived series."""
    ET.register_namespace("", NS)
    ET.register_namespace("xsi", "http://www.w3.org/2001/XMLSchema-instance")
    root = ET.Element(f"{{{NS}}}{ROOT}")
    series = ET.SubElement(ET.SubElement(root, "component"), "series")
    _sequence_set_xml(series, np.asarray(signals, float), fs, names, scale_uv, origin_uv)
    if median is not None:
        derived = ET.SubElement(ET.SubElement(series, "derivation"), "derivedSeries")
        _sequence_set_xml(derived, np.asarray(median, float), fs, names, scale_uv, origin_uv)
    for elem in root.iter():  # every element in the HL7 v3 namespace, as the schema has it
        if not elem.tag.startswith("{"):
            elem.tag = f"{{{NS}}}{elem.tag}"
    path = Path(path)
    with atomic_path(path) as tmp:
        ET.ElementTree(root).write(tmp, encoding="utf-8", xml_declaration=True)
    return path
