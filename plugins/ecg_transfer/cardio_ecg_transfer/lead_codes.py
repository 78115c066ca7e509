"""The twelve standard leads by code and by name, and the limb leads an 8-lead file leaves out.

Cart files name a lead three ways: a code (DICOM CID 3001 gives SCP-ECG `5.6.3-9-1` and MDC `2:1` for lead I;
HL7 aECG writes `MDC_ECG_LEAD_I`), a code meaning ("Lead I (Einthoven)", "Lead aVR, augmented voltage, right")
and a free label ("I", "ECG II", "LEAD_AVR", "avr"). `lead_from_code` and `lead_from_label` turn each into the
one name used here (I, II, III, aVR, aVL, aVF, V1-V6); `canonical_lead`, the one function every reader (CSV,
NumPy, WFDB, EDF, DICOM, MUSE, aECG) and the config's lead names go through, tries the code first, then the meaning,
then the label, and cleans a name that is no standard lead. `stand_in` says which standard lead a modified lead
(MIT-BIH's MLII, a Holter's MV5) stands for: a file without lead II is read from its MLII, in every format.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: The twelve standard leads in their usual order.
STANDARD_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
#: Lead number shared by the SCP-ECG and MDC code tables of DICOM CID 3001 (5.6.3-9-N, 2:N).
LEAD_NUMBER = {"I": 1, "II": 2, "V1": 3, "V2": 4, "V3": 5, "V4": 6, "V5": 7, "V6": 8,
               "III": 61, "aVR": 62, "aVL": 63, "aVF": 64}
_BY_NUMBER = {n: lead for lead, n in LEAD_NUMBER.items()}
_CODE = re.compile(r"(?:5\.6\.3-9-|2:|MDC_ECG_LEAD_)(\w+)", re.IGNORECASE)
_BY_KEY = {lead.lower(): lead for lead in STANDARD_LEADS}
#: Limb leads computed from I and II (Einthoven's law, Goldberger's augmented leads).
DERIVED = ("III", "aVR", "aVL", "aVF")


def lead_from_code(code: str | None) -> str | None:
    """The standard lead a CID 3001 code value (SCP-ECG or MDC) or an MDC_ECG_LEAD_* name stands for, else None."""
    m = _CODE.fullmatch(str(code or "").strip())
    if not m:
        return None
    key = m.group(1)
    return _BY_NUMBER.get(int(key)) if key.isdigit() else _BY_KEY.get(key.lower())


#: What a lead name may begin with and still name the lead: "ECG II", "EKG_V1", "Lead: aVR", "LEAD_II".
_PREFIX = re.compile(r"^(?:mdc_ecg_lead_|lead|ecg|ekg)(?:[\s_:-]+|(?=[a-z0-9]))", re.IGNORECASE)
#: Other names of the standard leads: the Einthoven leads as French and Italian carts write them (D1-D3, DI-DIII),
#: the chest leads as IEC electrode names (C1-C6).
ALIASES = {**{f"d{n}": lead for n, lead in zip(("1", "2", "3"), ("I", "II", "III"))},
           **{f"d{lead.lower()}": lead for lead in ("I", "II", "III")},
           **{f"c{k}": f"V{k}" for k in range(1, 7)}}
#: A modified lead (a Holter's or MIT-BIH's: MLII is the modified limb lead II, MV1 a modified V1), the standard
#: lead it stands in for where a file lacks that lead.
_MODIFIED = re.compile(r"m(?:l(iii|ii|i)|(v[1-6]))")


def _bare(text: str) -> str:
    """A label without what does not name the lead: a parenthesis, a code meaning's tail, a prefix, separators."""
    text = re.sub(r"\(.*?\)", "", str(text or "").strip()).split(",")[0]  # "(Einthoven)", ", augmented voltage"
    return re.sub(r"[\s_:]+", "", _PREFIX.sub("", text.strip()))


def lead_from_label(label: str | None) -> str | None:
    """The standard lead a code meaning or a free label names ("Lead I (Einthoven)", "ECG aVR", "LEAD_V1", "D2",
    "C5"), else None."""
    key = _bare(str(label or "")).lower()
    return _BY_KEY.get(key) or ALIASES.get(key)  # "-aVR" (inverted, Cabrera) stays unknown


def canonical_lead(label: str | None, *, code: str | None = None, meaning: str | None = None) -> str:
    """The one name every reader gives a lead, however the file or the config writes it: the standard lead of
    `code`, else of `meaning`, else of `label` ("ii", " Lead II ", "LEAD_II", "MDC_ECG_LEAD_II", "D2" are all II);
    a lead that is none of the twelve keeps its label (else its meaning), spaces collapsed and an "ECG ", "EKG " or
    "Lead " prefix dropped ("ECG MLII" and "Lead  MLII" are MLII)."""
    standard = lead_from_code(code) or lead_from_label(meaning) or lead_from_code(label) or lead_from_label(label)
    if standard:
        return standard
    for text in (label, meaning):
        spaced = " ".join(str(text or "").split())
        cleaned = _PREFIX.sub("", spaced)
        if cleaned:
            return spaced if cleaned.isdigit() else cleaned  # "ECG1" is a channel's name, not an index
    return ""


def stand_in(name: str | None) -> str | None:
    """The standard lead a modified lead stands in for ("MLII", "ECG MLII" -> II; "MV5" -> V5), else None."""
    m = _MODIFIED.fullmatch(canonical_lead(name).lower())
    return None if m is None else (_BY_KEY[m.group(1)] if m.group(1) else _BY_KEY[m.group(2)])


def lead_key(name: str | None) -> str:
    """What two lead names must share to name one lead: the canonical name, case folded."""
    return canonical_lead(name).casefold()


def derive_limb_leads(leads: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`leads` with III, aVR, aVL and aVF computed from I and II where the file leaves them out (a MUSE export
    stores I, II and V1-V6 only); a lead the file holds is kept as it is; the standard leads first, in order."""
    if "I" not in leads or "II" not in leads:
        return dict(leads)
    i, ii = np.asarray(leads["I"], float), np.asarray(leads["II"], float)
    n = min(len(i), len(ii))
    i, ii = i[:n], ii[:n]
    made = {"III": ii - i, "aVR": -(i + ii) / 2, "aVL": i - ii / 2, "aVF": ii - i / 2}
    full = {**{k: v for k, v in made.items() if k not in leads}, **leads}
    return {k: full[k] for k in sorted(full, key=lambda k: STANDARD_LEADS.index(k) if k in STANDARD_LEADS else 99)}


@dataclass(frozen=True)
class Waveform:
    """Every lead of one multiplex group of a file, in mV at `fs` Hz: name -> samples (names as above where the
    file's code or label is a standard lead, else the file's label); `group` is the group's label."""

    leads: dict[str, np.ndarray]
    fs: float
    group: str
    source: Path
    derived: tuple[str, ...] = ()
