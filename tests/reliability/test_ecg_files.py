"""Reliability, family "ECG files": files read as their authors wrote them, or refused in one line (issue 43).

A European CSV export (";" between values, decimal commas), lead names as clinicians write them (`ii`, `Lead II`,
` II `, and the codes of the cart formats) and NaN gaps (bridged up to ecg_transfer.max_gap_s and logged, refused
beyond it) each gave a wrong result with exit 0 before; each case here is read right or refused with one line naming
the file. Every file is written by the test.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

pytest.importorskip("cardio_ecg_transfer")

import numpy as np
import pandas as pd
import wfdb

from cardio import CardioError
from cardio.data.cohort import CohortProblems
from cardio_ecg_transfer import cohort_table, dicom_waveform, hl7_aecg, leads, muse_xml, records
from cardio_ecg_transfer.synthetic import write_synthetic_cohort
from cardio_testing.harness import check_refused, invoke

FS = 500.0


def _ecg(seconds: float = 6.0, fs: float = FS, rate_hz: float = 1.2, amp: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * fs)) / fs
    return amp * np.exp(-0.5 * ((t % (1 / rate_hz) - 0.4) / 0.012) ** 2) + 0.05 * np.sin(2 * np.pi * 0.3 * t)


@pytest.fixture
def reader_log():
    """The lines the ECG readers log (they log under the run's logger, so that run.log gets them)."""
    lines: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("cardio.run.ecg_transfer")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(old)


def _european(path: Path, columns: dict[str, np.ndarray], sep: str = ";") -> Path:
    """A CSV as a European spreadsheet exports it: `sep` between values, decimal commas."""
    rows = [sep.join(columns)] + [sep.join(f"{v:.4f}".replace(".", ",") for v in row)
                                  for row in zip(*columns.values())]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------ a European CSV

@pytest.mark.parametrize("sep", [";", "\t"])
def test_european_csv_is_read_as_written_and_logged(tmp_path, reader_log, sep):
    ii, v5 = _ecg(), 6.5 + _ecg(rate_hz=1.5)  # V5 offset: its digits (650, ...) must never pass for lead II
    _european(tmp_path / "eu.csv", {"II": ii, "V5": v5}, sep)
    pd.DataFrame({"II": ii, "V5": v5}).to_csv(tmp_path / "us.csv", index=False, float_format="%.4f")
    eu = records.read_ecg(tmp_path / "eu.csv", fs=360, lead=None, source_fs=FS)
    us = records.read_ecg(tmp_path / "us.csv", fs=360, lead=None, source_fs=FS)
    assert eu.lead == "II" and us.lead == "II"
    np.testing.assert_allclose(eu.signal, us.signal, atol=1e-12)
    assert np.abs(eu.signal).max() < 1.5  # lead II's millivolts, not V5's digits
    v5_read = records.read_ecg(tmp_path / "eu.csv", fs=FS, lead="V5", source_fs=FS).signal
    np.testing.assert_allclose(v5_read, np.round(v5, 4), atol=1e-9)
    said = [line for line in reader_log if "eu.csv" in line and "decimal mark ','" in line]
    assert len(said) == 2 and not any("us.csv" in line for line in reader_log)
    leads.probe(tmp_path / "eu.csv", ["V5", "II"])  # cardio validate reads the header with the same separators


def test_european_csv_in_a_cohort_reads_lead_ii(tmp_path):
    write_synthetic_cohort(tmp_path, n_patients=4, seed=1, fs=360, seconds=4, leads=("II",))
    ii = _ecg(4.0, fs=360)
    _european(tmp_path / "ecg" / "eu.csv", {"II": ii, "V5": 6.5 + ii[::-1]})
    table = pd.read_csv(tmp_path / "cohort.csv", dtype=str, keep_default_na=False)
    table.loc[1, "ecg"], table["fs"] = "ecg/eu.csv", ["", "360", "", ""]
    table.to_csv(tmp_path / "cohort.csv", index=False)
    got = cohort_table.load_cohort(tmp_path, fs=360, lead=None)
    np.testing.assert_allclose(got.signals[str(table.loc[1, "record_id"])], np.round(ii, 4), atol=1e-9)


@pytest.mark.parametrize("text,names", [
    ("II;V5\n0,12;1.5\n0,13;1.6\n", "eu.csv: numbers written with decimal commas (2 cells, e.g. '0,12') and decimal "
                                     "points"),
    ("II;V5\n" + "0,1;abc\n" * 3, "eu.csv: lead V5: line 2 holds 'abc', not a number (3 such cell(s))"),
    ("II,V5\n0.1,1.2 mV\n" * 2, "eu.csv: lead V5: line 2 holds '1.2 mV', not a number"),
    # decimal commas with "," between values: pandas alone read "0,12,1,5" as II = 1, V5 = 5
    ("II,V5\n0,12,1,5\n0,13,1,6\n", "eu.csv: line 2 holds 4 values, the header names 2 column(s); decimal "
                                     "commas need ';' between values"),
])
def test_a_csv_that_cannot_be_read_as_written_is_one_line(tmp_path, text, names):
    (tmp_path / "eu.csv").write_text(text)
    with pytest.raises(CardioError) as err:
        records.read_ecg(tmp_path / "eu.csv", fs=360, lead="V5", source_fs=FS)
    assert names in str(err.value) and "\n" not in str(err.value)


# ------------------------------------------------------------------ lead names as clinicians write them

@pytest.mark.parametrize("written", ["ii", "lead ii", "Lead II", " II ", "LEAD_II", "ECG II"])
def test_a_csv_lead_ii_written_otherwise_is_lead_ii(tmp_path, reader_log, written):
    ii, v5 = _ecg(), 3 + _ecg(rate_hz=1.5)
    pd.DataFrame({"V5": v5, written: ii}).to_csv(tmp_path / "e.csv", index=False)
    for lead in (None, "II", "ii", "lead II"):  # the default, and the config's spellings
        rec = records.read_ecg(tmp_path / "e.csv", fs=FS, lead=lead, source_fs=FS)
        np.testing.assert_allclose(rec.signal, ii, atol=1e-9)
    assert not any("no lead II" in line for line in reader_log)  # nothing fell back to another lead


def test_a_lead_asked_for_and_not_found_lists_the_leads_found(tmp_path, reader_log):
    pd.DataFrame({"V5": _ecg(), "I": _ecg()}).to_csv(tmp_path / "e.csv", index=False)
    with pytest.raises(CardioError, match=r"e\.csv: no lead named 'II'; the file has \['V5', 'I'\]"):
        records.read_ecg(tmp_path / "e.csv", fs=FS, lead="II", source_fs=FS)
    with pytest.raises(CardioError, match=r"e\.csv: leads \['II', 'ii'\] all name lead II"):
        pd.DataFrame({"II": _ecg(), "ii": _ecg()}).to_csv(tmp_path / "e.csv", index=False)
        records.read_ecg(tmp_path / "e.csv", fs=FS, lead="lead ii", source_fs=FS)
    # the default (lead: null) on a file without lead II reads its first lead; a cohort says so once (below)
    pd.DataFrame({"V5": _ecg(), "I": _ecg()}).to_csv(tmp_path / "v.csv", index=False)
    assert records.read_ecg(tmp_path / "v.csv", fs=FS, lead=None, source_fs=FS).lead == "V5"
    leads.probe(tmp_path / "v.csv", [None], FS)
    assert not [line for line in reader_log if "no lead II" in line]


def _cart_file(fmt: str, folder: Path, sig: np.ndarray, names: list[str]) -> Path:
    if fmt == "wfdb":
        wfdb.wrsamp("w", fs=FS, units=["mV"] * len(names), sig_name=names, p_signal=sig, fmt=["16"] * len(names),
                    adc_gain=[1000.0] * len(names), baseline=[0] * len(names), write_dir=str(folder))
        return folder / "w.hea"
    if fmt == "edf":
        return leads.write_edf(folder / "e.edf", sig, FS, names)
    if fmt == "muse":
        return muse_xml.write_muse(folder / "m.xml", sig, FS, names)
    if fmt == "aecg":
        return hl7_aecg.write_aecg(folder / "a.xml", sig, FS, names)
    if fmt == "npy":
        np.save(folder / "n.npy", sig)
        return folder / "n.npy"
    return dicom_waveform.write_waveform(folder / "d.dcm", sig, FS, names, style=fmt.split("-")[1])


# each format with lead II (and I) written as that format's writers or carts write it
READERS = [("wfdb", ["lead i", "Lead II"]), ("edf", ["ECG I", " ii "]), ("muse", ["i", "ii"]),
           ("aecg", ["i", "ii"]), ("dicom-mdc", ["I", "II"]), ("dicom-scpecg", ["I", "II"]),
           ("dicom-meaning", ["I", "II"]), ("dicom-label", ["I", "II"])]


@pytest.mark.parametrize("fmt,names", READERS, ids=[r[0] for r in READERS])
def test_every_reader_maps_lead_names_the_same_way(tmp_path, fmt, names):
    i, ii = _ecg(amp=0.4), _ecg(rate_hz=1.5)
    path = _cart_file(fmt, tmp_path, np.c_[i, ii], names)
    for asked in ("II", "ii", "Lead II", " lead ii "):
        got = leads.read_leads(path, [asked], fs=FS)
        np.testing.assert_allclose(got.signals[0], ii, atol=0.01)  # the formats' quantisation
    assert np.abs(leads.read_leads(path, ["lead I"], fs=FS).signals[0] - i).max() < 0.01
    with pytest.raises(CardioError, match=rf"{path.name}: no lead named 'V9'; the file has \["):
        leads.read_leads(path, ["V9"], fs=FS)


def test_a_dicom_channel_named_by_its_label_alone(tmp_path):
    """A cart that writes no code and a free label ("lead ii") for each channel."""
    import pydicom

    path = dicom_waveform.write_waveform(tmp_path / "d.dcm", np.c_[_ecg(amp=0.4), _ecg(rate_hz=1.5)], FS,
                                         ["I", "II"], style="label")
    ds = pydicom.dcmread(path)
    for channel, label in zip(ds.WaveformSequence[0].ChannelDefinitionSequence, ("Lead I", "lead ii")):
        channel.ChannelLabel = label
    ds.save_as(path)
    assert set(leads.read_waveform(path).leads) == {"I", "II"}
    np.testing.assert_allclose(leads.read_leads(path, ["II"], fs=FS).signals[0], _ecg(rate_hz=1.5), atol=0.01)


# ------------------------------------------------------------------ NaN gaps under a stated rule

def test_a_short_nan_gap_is_bridged_and_logged(tmp_path, reader_log):
    x = _ecg()
    x[1000:1100] = np.nan  # 0.2 s
    pd.DataFrame({"II": x}).to_csv(tmp_path / "g.csv", index=False)
    rec = records.read_ecg(tmp_path / "g.csv", fs=FS, lead="II", source_fs=FS)
    assert np.isfinite(rec.signal).all()
    np.testing.assert_allclose(rec.signal[1000:1100], np.linspace(x[999], x[1100], 102)[1:-1], atol=1e-9)
    assert any("g.csv: lead II: 1 NaN gap(s), 100 samples in all, interpolated linearly; the longest 100 samples "
               "(0.200 s) from 2.00 s (sample 1000)" in line for line in reader_log)


def test_a_long_nan_gap_is_refused_naming_where_it_is(tmp_path):
    x = _ecg(fs=360)
    x[900:1900] = np.nan  # the case of the corpus: 1,000 samples, 2.8 s
    pd.DataFrame({"II": x}).to_csv(tmp_path / "g.csv", index=False)
    with pytest.raises(CardioError) as err:
        records.read_ecg(tmp_path / "g.csv", fs=360, lead="II", source_fs=360)
    assert str(err.value).startswith(f"{tmp_path / 'g.csv'}: lead II has a gap of 1000 samples (2.778 s) from "
                                     "2.50 s (sample 900) with no value (NaN), longer than the 0.5 s "
                                     "ecg_transfer.max_gap_s bridges")
    # the key moves the limit either way; 0 refuses any gap; a gap at the start is held, not extrapolated
    assert np.isfinite(records.read_ecg(tmp_path / "g.csv", 360, "II", 360, max_gap_s=3).signal).all()
    y = _ecg()
    y[:50] = np.nan
    np.save(tmp_path / "s.npy", y)
    assert records.read_ecg(tmp_path / "s.npy", FS, 0, FS).signal[:50].tolist() == [y[50]] * 50
    with pytest.raises(CardioError, match=r"s\.npy: lead 0 has a gap of 50 samples \(0\.100 s\) from 0\.00 s"):
        records.read_ecg(tmp_path / "s.npy", FS, 0, FS, max_gap_s=0)


def test_nan_gaps_in_the_multi_lead_readers(tmp_path):
    sig = np.c_[_ecg(amp=0.4), _ecg(rate_hz=1.5)]
    sig[2000:2700, 1] = np.nan  # 1.4 s in lead II
    path = leads.write_edf(tmp_path / "e.edf", np.nan_to_num(sig), FS, ["I", "II"])
    wfdb.wrsamp("w", fs=FS, units=["mV"] * 2, sig_name=["I", "II"], p_signal=sig, fmt=["16"] * 2,
                adc_gain=[1000.0] * 2, baseline=[0] * 2, write_dir=str(tmp_path))
    with pytest.raises(CardioError, match=r"w\.hea: lead II has a gap of 700 samples \(1\.400 s\) from 4\.00 s"):
        leads.read_leads(tmp_path / "w", ["I", "II"], fs=FS)
    assert leads.read_leads(tmp_path / "w", ["II"], fs=FS, max_gap_s=2).signals.shape == (1, len(sig))
    assert leads.read_leads(path, ["II"], fs=FS).signals.shape == (1, len(sig))  # EDF stores no NaN


@pytest.fixture(scope="module")
def small_cohort(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("ecg_files")
    write_synthetic_cohort(d, n_patients=4, seed=2, fs=360, seconds=6, leads=("II",))
    return d


def _gap_cohort(small_cohort: Path, tmp_path: Path) -> Path:
    d = shutil.copytree(small_cohort, tmp_path / "cohort")
    x = _ecg(6.0, fs=360)
    x[900:1900] = np.nan
    pd.DataFrame({"II": x}).to_csv(d / "ecg" / "gap.csv", index=False)
    table = pd.read_csv(d / "cohort.csv", dtype=str, keep_default_na=False)
    table.loc[2, "ecg"], table["fs"] = "ecg/gap.csv", ["", "", "360", ""]
    table.to_csv(d / "cohort.csv", index=False)
    return d


def test_a_run_on_a_cohort_with_a_long_gap_is_one_line(small_cohort, tmp_path):
    d = _gap_cohort(small_cohort, tmp_path)
    result = invoke("run", "--plugin", "ecg_transfer", "--out", str(tmp_path / "run"), "--set", f"cohort.dir={d}",
                    "--set", f"cache_dir={tmp_path / 'cache'}", "--set", "ecg_transfer.pretrain.enabled=false")
    check_refused(result, "gap.csv: lead II has a gap of 1000 samples (2.778 s) from 2.50 s (sample 900)")
    bad = invoke("run", "--plugin", "ecg_transfer", "--out", str(tmp_path / "run2"), "--set", f"cohort.dir={d}",
                 "--set", "ecg_transfer.max_gap_s=-1")
    check_refused(bad, "config key ecg_transfer.max_gap_s = -1 is out of range")


def test_the_data_guide_states_the_rules():
    guide = (Path(__file__).resolve().parents[2] / "docs" / "data" / "ecg_transfer.md").read_text(encoding="utf-8")
    for words in ("**Missing samples (NaN gaps).**", "`ecg_transfer.max_gap_s`", "default 0.5 s",
                  "**Lead names as clinicians write them.**", "**CSV separators.**", "decimal commas"):
        assert words in guide, words


# ------------------------------------------------------------------ one lead rule for every format (issue 55)

@pytest.mark.parametrize("written,name,stands_for", [
    ("ECG MLII", "MLII", "II"), ("EKG V2", "V2", None), ("Lead: aVR", "aVR", None), ("D2", "II", None),
    ("DIII", "III", None), ("C5", "V5", None), ("MV1", "MV1", "V1"), ("ECG1", "ECG1", None), ("mlii", "mlii", "II")])
def test_prefixes_aliases_and_modified_leads(written, name, stands_for):
    from cardio_ecg_transfer.lead_codes import canonical_lead, stand_in

    assert canonical_lead(written) == name and stand_in(written) == stands_for


COVARIATES = {"qrs_ms": 150, "lbbb": 1, "lvef": 30, "age": 65, "sex": 1}


def _mixed_mitdb(folder: Path, mitdb: Path, seconds: float = 20.0) -> dict[str, np.ndarray]:
    """MIT-BIH records as a clinic exports them: WFDB, EDF (channels "ECG MLII", "ECG V1"), CSV, NumPy and record 114
    (its leads stored V5 first) as a CSV; pydicom's real 12-lead DICOM. Returns each file's MLII (or II)."""
    from pydicom.data import get_testdata_file

    (folder / "ecg").mkdir(parents=True)
    mlii, rows = {}, []
    for k, (rec, fmt) in enumerate([("100", "wfdb"), ("101", "edf"), ("103", "csv"), ("105", "npy"), ("114", "csv")]):
        r = wfdb.rdrecord(str(mitdb / rec), sampto=int(seconds * 360))
        if fmt == "wfdb":
            shutil.copy(mitdb / f"{rec}.hea", folder / "ecg")
            shutil.copy(mitdb / f"{rec}.dat", folder / "ecg")
            name = f"ecg/{rec}"
        elif fmt == "edf":
            edf = leads.write_edf(folder / "ecg" / f"{rec}.edf", r.p_signal, 360, [f"ECG {n}" for n in r.sig_name])
            name = f"ecg/{edf.name}"
        elif fmt == "csv":
            name = f"ecg/{leads.write_csv(folder / 'ecg' / f'{rec}.csv', r.p_signal, r.sig_name).name}"
        else:
            np.save(folder / "ecg" / f"{rec}.npy", r.p_signal)
            name = f"ecg/{rec}.npy"
        mlii[name] = r.p_signal[:, r.sig_name.index("MLII")] if fmt != "npy" else r.p_signal[:, 0]
        rows.append({"patient_id": f"p{rec}", "responder": k % 2, "ecg": name, "fs": 360 if fmt in ("csv", "npy")
                     else None, **COVARIATES})
    cart = get_testdata_file("waveform_ecg.dcm")
    assert isinstance(cart, str)  # pydicom's own test file, always shipped
    shutil.copy(cart, folder / "ecg" / "cart.dcm")
    rows.append({"patient_id": "pcart", "responder": 1, "ecg": "ecg/cart.dcm", "fs": None, **COVARIATES})
    pd.DataFrame(rows).to_csv(folder / "cohort.csv", index=False)
    return mlii


def _load(folder: Path, *sets: str):
    from cardio.config import resolve
    from cardio_ecg_transfer import plugin
    from cardio_ecg_transfer.settings import EcgSettings

    config = resolve(plugin.cardio_plugin_info().default_config, sets=[f"cohort.dir={folder}", *sets])
    lines: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("cardio.test.ecg_files")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        ecgs = cohort_table.load_cohort(folder, cohort_table.schema("responder", EcgSettings.of(config)), fs=360.0,
                                        lead=config["ecg_transfer"]["lead"], log=logger, config=config)
    finally:
        logger.removeHandler(handler)
    return ecgs, lines


def test_real_exports_of_every_format_read_their_lead_ii_and_say_so_once(tmp_path, mitdb_dir):
    """MIT-BIH as EDF ("ECG MLII") was refused, record 114 was read from V5 and every file logged its own warning."""
    mlii = _mixed_mitdb(tmp_path / "c", mitdb_dir)
    ecgs, said = _load(tmp_path / "c")
    by_file = dict(zip(ecgs.table["ecg"], ecgs.table["record_id"]))
    for name, x in mlii.items():
        got = ecgs.signals[by_file[str(tmp_path / "c" / (name if Path(name).suffix else f"{name}.hea"))]]
        assert np.abs(got[:len(x)] - x).max() < 0.02, name  # MLII itself (114: not its first lead, V5); EDF: 16-bit
    cart = ecgs.signals[by_file[str(tmp_path / "c" / "ecg" / "cart.dcm")]]
    assert len(cart) == 10 * 360  # the DICOM's lead II, 10 s at 1000 Hz resampled
    assert [line for line in said if "first lead" in line] == [
        "1 of 6 ECG file(s) have no lead II; their first lead is read ('0' in 1: ecg/105.npy); set ecg_transfer.lead "
        "to choose another"]
    assert "4 of 6 ECG file(s) have no lead II: its stand-in MLII is read" in " ".join(said)


def test_mlii_setting_serves_every_named_format(tmp_path, mitdb_dir):
    """One `lead` for a mixed cohort: MLII, "ECG MLII" and II each read the WFDB's and CSV's MLII, the EDF's "ECG
    MLII" and the DICOM's II; only the NumPy file, whose columns have no names, is refused (by name, once)."""
    _mixed_mitdb(tmp_path / "c", mitdb_dir)
    for lead in ("MLII", "ECG MLII", "II"):
        with pytest.raises(CohortProblems) as err:
            _load(tmp_path / "c", f"ecg_transfer.lead={lead}")
        problems = [str(p) for p in err.value.problems]
        assert len(problems) == 1 and f"ecg/105.npy: no lead named '{lead}'; the file has ['0', '1']" in problems[0]
