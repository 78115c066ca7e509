"""ECG files as carts and archives write them: DICOM waveforms with vendor-style channel naming and scaling, GE MUSE
XML (8 leads stored, 4 derived) and HL7 aECG, generated here. Each loads with the 12 leads in order, each lead equal
to the written signal within its quantisation; the median beat is read by its group's label; a damaged file is
one line naming it; a cohort table names files of every format."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("cardio_ecg_transfer")

import pydicom

from cardio import CardioError
from cardio_ecg_transfer import cohort_ecg, dicom_waveform, hl7_aecg, leads, muse_xml, synthetic
from cardio_ecg_transfer.lead_codes import STANDARD_LEADS, derive_limb_leads
from cardio_testing.harness import cpu_context, plugin_config

FS = 500.0
# Einthoven-consistent 12 leads (III, aVR, aVL, aVF computed from I and II, as in a heart), 3 s
_ROW = synthetic.cohort_table(2, seed=5).iloc[0]
_RAW = synthetic.synthesize_ecg(_ROW, 5, FS, 3, STANDARD_LEADS)
_FULL = derive_limb_leads({"I": _RAW[:, 0], "II": _RAW[:, 1], **{n: _RAW[:, j] for j, n in enumerate(STANDARD_LEADS)
                                                                   if j >= 6}})
SIG = np.stack([_FULL[n] for n in STANDARD_LEADS], axis=1)  # (samples, 12) in mV
MEDIAN = SIG[100:500]  # a stand-in beat of 0.8 s, another group's values

# (unit, sensitivity, correction factor, baseline) as carts write them: 1 uV per count; 2.44 uV in mV with a
# correction factor and an offset; 2.5 uV with a negative offset
SCALES = {"uV-1": ("uV", 1.0, 1.0, 0.0), "mV-2.44": ("mV", 0.00244, 0.98, 0.01), "uV-2.5": ("uV", 2.5, 1.02, -3.0)}


def _close(read: np.ndarray, written: np.ndarray, tolerance_mv: float) -> float:
    worst = float(np.abs(read - written).max())
    assert worst <= tolerance_mv + 1e-9, f"{worst} mV off, quantisation allows {tolerance_mv}"
    return worst


@pytest.mark.parametrize("style", list(dicom_waveform.STYLES))
@pytest.mark.parametrize("scale", list(SCALES))
def test_dicom_vendor_styles_give_twelve_leads_within_quantisation(tmp_path, style, scale):
    unit, sens, corr, base = SCALES[scale]
    path = dicom_waveform.write_waveform(tmp_path / "ecg.dcm", SIG, FS, STANDARD_LEADS, style=style, median=MEDIAN,
                                         median_first=True, unit=unit, sensitivity=sens, correction=corr,
                                         baseline=base)
    wave = leads.read_waveform(path)
    assert list(wave.leads) == list(STANDARD_LEADS) and wave.group == "RHYTHM" and wave.fs == FS
    step = sens * corr * dicom_waveform.MV_PER_UNIT[unit]  # mV per count
    for j, name in enumerate(STANDARD_LEADS):
        _close(wave.leads[name], SIG[:, j], step / 2)
    # the median beat by its label, though it is the first group
    median = leads.read_waveform(path, "median")
    assert median.group == "MEDIAN BEAT" and len(median.leads["V6"]) == len(MEDIAN)
    _close(median.leads["V6"], MEDIAN[:, 11], step / 2)
    # read_leads at the file's rate: the leads asked for, in that order
    two = leads.read_leads(path, ["V6", "aVR"], fs=FS)
    np.testing.assert_allclose(two.signals, np.stack([wave.leads["V6"], wave.leads["aVR"]]))


def test_dicom_lead_by_code_before_meaning_and_label(tmp_path):
    path = dicom_waveform.write_waveform(tmp_path / "ecg.dcm", SIG[:, :2], FS, ("I", "II"), style="mdc")
    ds = pydicom.dcmread(path)
    first = ds.WaveformSequence[0].ChannelDefinitionSequence[0]
    first.ChannelLabel = "II"  # the label disagrees: the code (2:1, lead I) decides
    first.ChannelSourceSequence[0].CodeMeaning = "Lead II"
    ds.save_as(path)
    assert list(leads.read_waveform(path).leads) == ["I", "II"]
    first.ChannelSourceSequence[0].CodeValue = "99"  # a code that is no lead: the meaning decides
    first.ChannelSourceSequence[0].CodeMeaning = "Lead aVR, augmented voltage, right"
    ds.save_as(path)
    assert list(leads.read_waveform(path).leads) == ["aVR", "II"]
    first.ChannelSourceSequence[0].CodeMeaning = "Channel 1"  # neither: the label
    ds.save_as(path)
    assert "lead(s) ['II'] appear on more than one channel" in _error(path)


def test_a_mortara_cart_file_reads_as_twelve_leads_in_mv():
    """pydicom's test file waveform_ecg.dcm, written by a Mortara cart: SCP-ECG codes, 1.25 uV per count, a RHYTHM
    and a MEDIAN BEAT group. The limb leads obey Einthoven's and Goldberger's laws to half a count: the leads are
    the ones named and the unit is right."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file("waveform_ecg.dcm")
    assert isinstance(path, str)  # pydicom's own test file, always shipped
    wave = leads.read_waveform(path)
    assert list(wave.leads) == list(STANDARD_LEADS) and wave.fs == 1000 and len(wave.leads["II"]) == 10000
    lead = wave.leads
    half = 1.25e-3 / 2
    assert np.abs(lead["III"] - (lead["II"] - lead["I"])).max() <= half
    assert np.abs(lead["aVR"] + (lead["I"] + lead["II"]) / 2).max() <= half + 1e-12
    assert np.abs(lead["aVF"] - (lead["II"] - lead["I"] / 2)).max() <= half + 1e-12
    assert 0.3 < np.ptp(lead["II"]) < 5  # mV: a QRS, not counts or volts
    assert len(leads.read_waveform(path, "median").leads["V1"]) == 1200


def _error(path, asked=("II",)) -> str:
    with pytest.raises(CardioError) as err:
        leads.read_leads(path, list(asked), fs=FS)
    text = str(err.value)
    assert "\n" not in text and path.name in text, text
    return text


def test_muse_stores_eight_leads_and_four_are_derived(tmp_path):
    per_bit = 4.88
    path = muse_xml.write_muse(tmp_path / "muse.xml", SIG, FS, STANDARD_LEADS, per_bit=per_bit, median=MEDIAN)
    xml = path.read_text()
    assert xml.count("<LeadID>") == 16 and "<LeadID>III</LeadID>" not in xml  # 8 leads, rhythm and median
    wave = leads.read_waveform(path)
    assert list(wave.leads) == list(STANDARD_LEADS) and wave.derived == ("III", "aVR", "aVL", "aVF")
    half = per_bit / 2 / 1000  # mV: half a count of each stored lead
    # a derived lead adds its two stored leads' rounding: III = II - I, aVR = -(I + II)/2, aVL = I - II/2...
    bound = {"III": 2 * half, "aVR": half, "aVL": 1.5 * half, "aVF": 1.5 * half}
    for j, name in enumerate(STANDARD_LEADS):
        _close(wave.leads[name], SIG[:, j], bound.get(name, half))
    median = leads.read_waveform(path, "median")
    assert len(median.leads["II"]) == len(MEDIAN)
    _close(median.leads["aVF"], MEDIAN[:, 5], 1.5 * half)


@pytest.mark.parametrize("n_leads", [12, 8])
def test_aecg_gives_twelve_leads_within_quantisation(tmp_path, n_leads):
    keep = [j for j, n in enumerate(STANDARD_LEADS) if n_leads == 12 or n not in ("III", "aVR", "aVL", "aVF")]
    scale, origin = 2.5, 7.0
    path = hl7_aecg.write_aecg(tmp_path / "aecg.xml", SIG[:, keep], FS, [STANDARD_LEADS[j] for j in keep],
                               scale_uv=scale, origin_uv=origin, median=MEDIAN[:, keep])
    wave = leads.read_waveform(path)
    assert list(wave.leads) == list(STANDARD_LEADS) and wave.fs == pytest.approx(FS)
    half = scale / 2 / 1000
    bound = {"III": 2 * half, "aVR": half, "aVL": 1.5 * half, "aVF": 1.5 * half} if n_leads == 8 else {}
    for j, name in enumerate(STANDARD_LEADS):
        _close(wave.leads[name], SIG[:, j], bound.get(name, half))
    assert len(leads.read_waveform(path, "median").leads["V1"]) == len(MEDIAN)


def _damaged(tmp_path, kind: str, damage: str):
    """A file of `kind` with one `damage` (lead V3 left out, for "missing-lead")."""
    names = [n for n in STANDARD_LEADS if damage != "missing-lead" or n != "V3"]
    x = SIG[:, [STANDARD_LEADS.index(n) for n in names]]
    path = {"dicom": lambda p: dicom_waveform.write_waveform(p / "x.dcm", x, FS, names),
            "muse": lambda p: muse_xml.write_muse(p / "x.xml", x, FS, names),
            "aecg": lambda p: hl7_aecg.write_aecg(p / "x.xml", x, FS, names)}[kind](tmp_path)
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) * 2 // 3])
    elif damage == "bad-data" and kind == "muse":
        text = data.decode()
        start = text.index("<WaveFormData>") + len("<WaveFormData>")
        path.write_text(text[:start] + "@@not base64@@" + text[text.index("</WaveFormData>"):])
    elif damage == "bad-data" and kind == "aecg":
        path.write_text(data.decode().replace("<digits>", "<digits>12 x7 ", 1))
    elif damage == "bad-data":
        ds = pydicom.dcmread(path)
        del ds.WaveformSequence[0].ChannelDefinitionSequence[3].ChannelSensitivityUnitsSequence
        ds.save_as(path)
    return path


EXPECT = {"truncated": "truncated", "missing-lead": "no lead named 'V3'"}
EXPECT_BAD_DATA = {"muse": "not valid base64", "aecg": "other than whole numbers", "dicom": "is in unit"}


@pytest.mark.parametrize("kind", ["dicom", "muse", "aecg"])
@pytest.mark.parametrize("damage", ["truncated", "missing-lead", "bad-data"])
def test_a_damaged_file_is_one_line_naming_it(tmp_path, kind, damage):
    path = _damaged(tmp_path, kind, damage)
    expect = EXPECT_BAD_DATA[kind] if damage == "bad-data" else EXPECT[damage]
    assert expect in _error(path, STANDARD_LEADS)
    with pytest.raises(CardioError, match=re.escape(expect)):  # cardio validate's probe finds the same
        leads.probe(path, STANDARD_LEADS)


def test_xml_of_another_kind_is_named(tmp_path):
    other = tmp_path / "report.xml"
    other.write_text("<?xml version='1.0'?><Report><Text>sinus rhythm</Text></Report>")
    assert "neither a GE MUSE" in _error(other)


def test_a_cohort_names_files_of_every_format(tmp_path):
    """One cohort.csv naming a DICOM waveform, a MUSE and an aECG export and a WFDB record: loaded with one lead
    (the default, II) and with three."""
    folder = tmp_path / "cohort"
    table = synthetic.cohort_table(8, seed=2)
    table = table[[c for c in table.columns if not c.startswith("_")]]
    writers = [lambda p, x: dicom_waveform.write_waveform(p.with_suffix(".dcm"), x, FS, STANDARD_LEADS, style="scpecg"),
               lambda p, x: muse_xml.write_muse(p.with_suffix(".xml"), x, FS, STANDARD_LEADS),
               lambda p, x: hl7_aecg.write_aecg(p.with_suffix(".xml"), x, FS, STANDARD_LEADS),
               lambda p, x: dicom_waveform.write_waveform(p.with_suffix(".dcm"), x, FS, STANDARD_LEADS, style="label")]
    files = []
    for i, (_, row) in enumerate(synthetic.cohort_table(8, seed=2).iterrows()):
        x = synthetic.synthesize_ecg(row, 2, FS, 4, STANDARD_LEADS)
        files.append(writers[i % 4](folder / "ecg" / str(row["record_id"]), x).relative_to(folder).as_posix())
    table.assign(ecg=files).to_csv(folder / "cohort.csv", index=False)
    for extra, shape in (((), (1440,)), (("ecg_transfer.leads=[I, aVF, V2]",), (3, 1440))):
        config = plugin_config("ecg_transfer", (f"cohort.dir={folder}", *extra))
        cohort = cohort_ecg.load(config, cpu_context(tmp_path / "run"))
        assert len(cohort) == 8
        assert {np.shape(cohort.array(r)) for r in cohort.table["record_id"]} == {shape}
    assert sorted(pd.Series(files).str.rsplit(".", n=1).str[1].unique()) == ["dcm", "xml"]
