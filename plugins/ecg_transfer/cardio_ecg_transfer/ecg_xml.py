"""Opening the XML files ECG archives export (GE MUSE, HL7 aECG): the parse and its one-line errors.

The standard library's ElementTree parses them. No package on the index serves: `ecg2dcm` (MIT, 1.3.1) converts
MUSE and aECG to DICOM, needs pydicom < 3 (the lock pins 3.0.2) and skips what it cannot read; `aecg` (0.1.3)
needs Python >= 3.12, pydantic-xml, python-benedict and plotly. defusedxml is not in the lock and is not needed:
ElementTree never fetches external entities, and expat >= 2.4.1 (pyexpat here) refuses entity-expansion bombs.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from cardio import CardioError


def parse_xml(path: Path, what: str) -> ET.Element:
    """The root element of an XML ECG file; a missing, truncated or malformed file is one line naming it."""
    if not path.is_file():
        raise CardioError(f"{path}: ECG file not found")
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise CardioError(f"{path}: unreadable {what} XML ({exc}; a truncated or damaged file)") from None
    except OSError as exc:
        raise CardioError(f"{path}: unreadable {what} file ({exc.strerror})") from None


def local_name(tag: str) -> str:
    """An element's name without its namespace."""
    return tag.rsplit("}", 1)[-1]


def root_name(path: Path) -> str:
    """The name of a file's root element, read from its first bytes ("" when it is no XML): tells MUSE from aECG."""
    try:
        for _, elem in ET.iterparse(path, events=("start",)):
            return local_name(elem.tag)
    except (ET.ParseError, OSError):
        return ""
    return ""
