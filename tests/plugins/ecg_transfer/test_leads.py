"""Multi-lead ECG input: 12-lead files written for the test in WFDB, DICOM waveform, EDF and CSV, read back and
run through featurize; bad input (missing lead, wrong rate, unreadable file) is one line naming the file."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("cardio_ecg_transfer")

import numpy as np
import pandas as pd
import wfdb

from cardio import CardioError
from cardio.config import resolve
from cardio_ecg_transfer import cohort_ecg, dicom_waveform, leads, plugin, synthetic
from cardio_ecg_transfer.cohort_ecg import STANDARD_LEADS
from cardio_ecg_transfer.records import resample_signal
from cardio_testing.harness import cpu_context

FS_FILE = 500.0  # the files' rate; the models work at 360 Hz, so every reader resamples


def _write(fmt: str, folder: Path, name: str, sig: np.ndarray, names=STANDARD_LEADS) -> str:
    if fmt == "wfdb":
        wfdb.wrsamp(name, fs=FS_FILE, units=["mV"] * len(names), sig_name=list(names), p_signal=sig,
                    fmt=["16"] * len(names), adc_gain=[1000.0] * len(names), baseline=[0] * len(names),
                    write_dir=str(folder))
        return name
    if fmt == "dicom":
        return dicom_waveform.write_waveform(folder / f"{name}.dcm", sig, FS_FILE, names).name
    if fmt == "edf":
        return leads.write_edf(folder / f"{name}.edf", sig, FS_FILE, names).name
    return leads.write_csv(folder / f"{name}.csv", sig, names).name


def _cohort(tmp_path: Path, fmt: str, n: int = 8) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    table = synthetic.cohort_table(n, seed=3)
    files = [_write(fmt, tmp_path, str(r["record_id"]), synthetic.synthesize_ecg(r, 3, FS_FILE, 8, STANDARD_LEADS))
             for _, r in table.iterrows()]
    table = table[[c for c in table.columns if not c.startswith("_")]].assign(ecg=files)
    if fmt == "csv":
        table["fs"] = FS_FILE
    table.to_csv(tmp_path / "cohort.csv", index=False)
    return tmp_path


@pytest.mark.parametrize("fmt", ["wfdb", "dicom", "edf", "csv"])
def test_twelve_leads_read_back_and_featurize(tmp_path, fmt):
    row = synthetic.cohort_table(2, seed=1).iloc[0]
    sig = synthetic.synthesize_ecg(row, 1, FS_FILE, 6, STANDARD_LEADS)
    name = _write(fmt, tmp_path, "one", sig)
    rec = leads.read_leads(tmp_path / name, STANDARD_LEADS, fs=360.0, source_fs=FS_FILE if fmt == "csv" else None)
    expect = resample_signal(sig, FS_FILE, 360.0).T
    assert rec.signals.shape == (12, expect.shape[1]) and rec.names == list(STANDARD_LEADS)
    # 16-bit storage at 1 uV (WFDB, DICOM), EDF's 16-bit range, CSV's 4 decimals: within 5 uV after resampling
    assert np.abs(rec.signals - expect).max() < 5e-3
    # the leads are the leads asked for, in that order (V6 first, then II)
    two = leads.read_leads(tmp_path / name, ["V6", "II"], fs=360.0, source_fs=FS_FILE if fmt == "csv" else None)
    np.testing.assert_allclose(two.signals, rec.signals[[11, 1]])

    folder = _cohort(tmp_path / "cohort", fmt)
    config = resolve(plugin.cardio_plugin_info().default_config,
                     sets=[f"cohort.dir={folder}", "ecg_transfer.leads=[I, II, V1, V6]",
                           "ecg_transfer.preprocess.max_beats_per_record=3"])
    ctx = cpu_context(tmp_path / "run")
    feats = cohort_ecg.featurize(cohort_ecg.preprocess(cohort_ecg.load(config, ctx), config, ctx), config, ctx)
    table = feats.table
    assert set(table["lead"]) == {"I", "II", "V1", "V6"} and feats.stage.leads == ("I", "II", "V1", "V6")
    per = table.groupby(["record_id", "beat"])["lead"].nunique()
    assert (per == 4).all() and table["record_id"].nunique() == 8  # every beat in every lead, every record
    assert feats.x.shape[0] == len(table) and np.isfinite(feats.x).all()
    # a beat's leads differ (the spectrograms are of different leads, not one lead copied)
    first = table.index[(table["record_id"] == table["record_id"].iloc[0]) & (table["beat"] == table["beat"].iloc[0])]
    assert not np.allclose(feats.x[first[0]], feats.x[first[1]])


@pytest.mark.parametrize("fmt", ["wfdb", "dicom", "edf", "csv"])
def test_missing_lead_is_one_line_naming_the_file(tmp_path, fmt):
    row = synthetic.cohort_table(2, seed=1).iloc[0]
    name = _write(fmt, tmp_path, "six", synthetic.synthesize_ecg(row, 1, FS_FILE, 4, STANDARD_LEADS[:6]),
                  STANDARD_LEADS[:6])
    with pytest.raises(CardioError) as err:
        leads.read_leads(tmp_path / name, ["II", "V1"], 360.0, source_fs=FS_FILE if fmt == "csv" else None)
    msg = str(err.value)
    assert "\n" not in msg and name in msg and "V1" in msg


@pytest.mark.parametrize("fmt", ["dicom", "edf"])
def test_unreadable_file_is_one_line_naming_it(tmp_path, fmt):
    bad = tmp_path / ("bad.dcm" if fmt == "dicom" else "bad.edf")
    bad.write_bytes(b"not an ECG at all " * 20)
    with pytest.raises(CardioError, match=r"bad\.(dcm|edf): unreadable") as err:
        leads.read_leads(bad, ["II"], 360.0)
    assert "\n" not in str(err.value)
    with pytest.raises(CardioError, match="absent.edf: ECG file not found"):
        leads.read_leads(tmp_path / "absent.edf", ["II"], 360.0)


def test_wrong_rate_is_refused(tmp_path):
    row = synthetic.cohort_table(2, seed=1).iloc[0]
    sig = synthetic.synthesize_ecg(row, 1, 50.0, 10, ("I", "II"))
    for path in (leads.write_edf(tmp_path / "slow.edf", sig, 50.0, ("I", "II")),
                 dicom_waveform.write_waveform(tmp_path / "slow.dcm", sig, 50.0, ("I", "II"))):
        with pytest.raises(CardioError, match=rf"{path.name}: sampling rate 50 Hz is outside"):
            leads.read_leads(path, ["II"], 360.0)
    csv = leads.write_csv(tmp_path / "x.csv", sig, ("I", "II"))
    with pytest.raises(CardioError, match="x.csv"):
        leads.read_leads(csv, ["II"], 360.0, source_fs=50.0)


def test_cohort_with_a_missing_lead_stops_in_one_line(tmp_path):
    folder = _cohort(tmp_path / "c", "edf", n=4)
    config = resolve(plugin.cardio_plugin_info().default_config,
                     sets=[f"cohort.dir={folder}", "ecg_transfer.leads=[II, V7]"])
    with pytest.raises(CardioError, match=r"\.edf: no lead named 'V7'"):
        cohort_ecg.load(config, cpu_context(tmp_path / "run"))
    with pytest.raises(CardioError, match="ecg_transfer.leads"):
        cohort_ecg.check_leads("II")


def test_synthetic_cohort_writes_twelve_leads(tmp_path):
    config = resolve(plugin.cardio_plugin_info().default_config,
                     sets=["ecg_transfer.synthetic.n_patients=4", f"ecg_transfer.leads=[{', '.join(STANDARD_LEADS)}]"])
    ctx = cpu_context(tmp_path / "run")
    cohort = cohort_ecg.load(config, ctx)
    arr = cohort.array(str(cohort.table["record_id"].iloc[0]))
    assert arr.shape[0] == 12 and cohort.stage.leads == tuple(STANDARD_LEADS)
    assert cohort.root is not None  # a cohort read from its folder
    header = wfdb.rdheader(str(cohort.root / str(pd.read_csv(cohort.root / "cohort.csv")["ecg"][0])))
    assert header.sig_name == list(STANDARD_LEADS)


def test_both_mitdb_leads(mitdb_dir):
    import wfdb as _wfdb

    names = _wfdb.rdheader(str(mitdb_dir / "100")).sig_name  # MLII and V5
    rec = leads.read_leads(mitdb_dir / "100", names, fs=360.0)
    assert rec.signals.shape == (2, 650000) and rec.names == list(names)
    assert np.corrcoef(rec.signals[0, :36000], rec.signals[1, :36000])[0, 1] < 0.99  # two leads, not one copied


@pytest.mark.parametrize("written,name", [
    ("ii", "II"), ("Lead II", "II"), (" II ", "II"), ("lead ii", "II"), ("LEAD_II", "II"), ("ECG II", "II"),
    ("MDC_ECG_LEAD_II", "II"), ("2:2", "II"), ("5.6.3-9-2", "II"), ("avr", "aVR"), ("Lead aVR, augmented voltage, "
    "right", "aVR"), ("v5", "V5"), ("MLII", "MLII"), ("Lead  MLII", "MLII"), ("-aVR", "-aVR"), ("time", "time")])
def test_one_normalising_function_for_every_lead_name(written, name):
    from cardio_ecg_transfer.lead_codes import canonical_lead, lead_key

    assert canonical_lead(written) == name
    assert lead_key(written) == lead_key(name)
    assert (lead_key(written) == lead_key("II")) == (name == "II")  # MLII (modified lead II) is not II
