"""ECG readers (WFDB, CSV, npy), resampling, CRT cohort tables and every bad input they must reject."""
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("cardio_ecg_transfer")
import wfdb

from cardio import CardioError
from cardio.data.cohort import CohortProblems
from cardio_ecg_transfer import cohort_table, mitdb, records
from cardio_ecg_transfer.synthetic import write_synthetic_cohort


@pytest.fixture(scope="module")
def cohort_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cohort")
    write_synthetic_cohort(d, n_patients=6, seed=3, fs=360, seconds=4, leads=("II", "V1"))
    return d


def _copy_cohort(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _write_wfdb(folder: Path, name: str, sig: np.ndarray, fs: float, names=("II",)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(name, fs=fs, units=["mV"] * sig.shape[1], sig_name=list(names), p_signal=sig, fmt=["16"] * sig.shape[1],
                adc_gain=[1000.0] * sig.shape[1], baseline=[0] * sig.shape[1], write_dir=str(folder))
    return folder / name


def _ecg_like(n: int, fs: float) -> np.ndarray:
    t = np.arange(n) / fs
    return (np.exp(-0.5 * ((t % 0.8 - 0.4) / 0.012) ** 2) + 0.05 * np.sin(2 * np.pi * 0.3 * t))[:, None]


# ---------------------------------------------------------------- WFDB

def test_mitdb_record_100_reads_with_annotations(mitdb_dir):
    rec = records.read_wfdb(mitdb_dir / "100", fs=360, lead="MLII", annotator="atr")
    assert rec.signal.shape == (650000,) and rec.fs == 360 and rec.lead == "MLII" and rec.source_fs == 360
    samples, symbols = rec.annotations()
    beats = np.isin(symbols, list(records.BEAT_SYMBOLS))
    assert beats.sum() == 2273
    # annotations sit on R peaks: the signal there is well above its median
    assert np.median(rec.signal[samples[beats]]) > np.median(rec.signal) + 0.5
    by_index = records.read_wfdb(mitdb_dir / "100.hea", lead=0)
    np.testing.assert_array_equal(by_index.signal, rec.signal)
    assert records.read_wfdb(mitdb_dir / "100", lead="v5").lead == "V5"  # names match case-insensitively


def test_mitdb_resampling_moves_signal_and_annotations_together(mitdb_dir):
    r360 = records.read_wfdb(mitdb_dir / "100", fs=360, annotator="atr")
    r250 = records.read_wfdb(mitdb_dir / "100", fs=250, annotator="atr")
    assert len(r250.signal) == int(np.ceil(650000 * 250 / 360))
    (at250, symbols), (at360, _) = r250.annotations(), r360.annotations()
    np.testing.assert_array_equal(at250, np.rint(at360 * 250 / 360).astype(int))
    beats = np.isin(symbols, ["N"])
    # R-peak amplitude survives the polyphase resampling
    assert abs(np.median(r250.signal[at250[beats]]) - np.median(r360.signal[at360[beats]])) < 0.1


def test_load_mitdb_returns_name_signal_fs_annotations(mitdb_dir):
    out = mitdb.load_mitdb(mitdb_dir, records=["101"], fs=360, lead=0)
    assert len(out) == 1
    name, sig, fs, samples, symbols = out[0]
    assert name == "101" and sig.shape == (650000,) and fs == 360.0 and len(samples) == len(symbols)
    assert len(mitdb.mitdb_records(mitdb_dir)) == 48


def test_truncated_copy_of_mitdb_dat_is_rejected(tmp_path, mitdb_dir):
    shutil.copy(mitdb_dir / "100.hea", tmp_path / "100.hea")
    (tmp_path / "100.dat").write_bytes((mitdb_dir / "100.dat").read_bytes()[:100000])
    with pytest.raises(CardioError, match=r"100\.dat.*truncated"):
        records.read_wfdb(tmp_path / "100")


def test_synthetic_wfdb_record_reads_by_lead_name_and_index(cohort_dir):
    a = records.read_wfdb(cohort_dir / "ecg" / "crt001", lead="V1")
    b = records.read_wfdb(cohort_dir / "ecg" / "crt001", lead=1)
    assert a.lead == b.lead == "V1" and a.signal.shape == (4 * 360,)
    np.testing.assert_array_equal(a.signal, b.signal)
    up = records.read_wfdb(cohort_dir / "ecg" / "crt001", fs=500, lead="II")
    assert len(up.signal) == 2000 and up.source_fs == 360


def test_unknown_lead_and_bad_index_are_errors(cohort_dir):
    with pytest.raises(CardioError, match="no lead named 'V6'.*'II', 'V1'"):
        records.read_wfdb(cohort_dir / "ecg" / "crt001", lead="V6")
    with pytest.raises(CardioError, match="lead index 5 out of range"):
        records.read_wfdb(cohort_dir / "ecg" / "crt001", lead=5)


def test_truncated_dat_is_rejected(cohort_dir, tmp_path):
    d = _copy_cohort(cohort_dir, tmp_path / "c")
    dat = d / "ecg" / "crt002.dat"
    dat.write_bytes(dat.read_bytes()[:1000])
    with pytest.raises(CardioError, match=r"crt002\.dat.*truncated"):
        records.read_wfdb(d / "ecg" / "crt002")


def test_header_without_signal_file_is_rejected(cohort_dir, tmp_path):
    d = _copy_cohort(cohort_dir, tmp_path / "c")
    (d / "ecg" / "crt002.dat").unlink()
    with pytest.raises(CardioError, match=r"crt002\.hea.*signal file.*crt002\.dat.*missing"):
        records.read_wfdb(d / "ecg" / "crt002")


def test_missing_header_is_rejected(tmp_path):
    with pytest.raises(CardioError, match=r"nothing\.hea.*not found"):
        records.read_wfdb(tmp_path / "nothing")


def test_flat_line_lead_is_rejected(tmp_path):
    sig = np.c_[_ecg_like(3600, 360), np.full(3600, 0.25)]
    base = _write_wfdb(tmp_path, "flat", sig, 360, names=("II", "V1"))
    assert records.read_wfdb(base, lead="II").signal.std() > 0.05
    with pytest.raises(CardioError, match=r"flat\.hea.*lead V1.*flat line"):
        records.read_wfdb(base, lead="V1")


def test_all_nan_lead_is_rejected(tmp_path):
    sig = np.c_[_ecg_like(3600, 360), np.full(3600, np.nan)]
    base = _write_wfdb(tmp_path, "nan", sig, 360, names=("II", "V1"))
    with pytest.raises(CardioError, match=r"nan\.hea.*lead V1.*NaN"):
        records.read_wfdb(base, lead="V1")
    np.save(tmp_path / "nan.npy", np.full(1000, np.nan))
    with pytest.raises(CardioError, match=r"nan\.npy.*NaN"):
        records.read_npy_signal(tmp_path / "nan.npy", source_fs=250)


def test_short_nan_gap_is_bridged(tmp_path):
    x = _ecg_like(3600, 360)[:, 0]
    x[1000:1010] = np.nan
    np.save(tmp_path / "gap.npy", x)
    rec = records.read_npy_signal(tmp_path / "gap.npy", source_fs=360)
    assert np.isfinite(rec.signal).all()
    np.testing.assert_allclose(rec.signal[1000:1010], np.linspace(x[999], x[1010], 12)[1:-1], atol=1e-12)


def test_sampling_rate_below_100_hz_is_rejected(tmp_path):
    base = _write_wfdb(tmp_path, "slow", _ecg_like(800, 80), 80)
    with pytest.raises(CardioError, match=r"slow\.hea.*80 Hz.*below"):
        records.read_wfdb(base)
    pd.DataFrame({"II": _ecg_like(800, 80)[:, 0]}).to_csv(tmp_path / "slow.csv", index=False)
    with pytest.raises(CardioError, match=r"slow\.csv.*80 Hz"):
        records.read_csv_signal(tmp_path / "slow.csv", source_fs=80)


# ---------------------------------------------------------------- CSV and npy

def test_csv_signal_by_lead_name_resampled(tmp_path):
    fs_src = 500
    t = np.arange(5 * fs_src) / fs_src
    pd.DataFrame({"time": t, "I": np.sin(2 * np.pi * 2 * t), "II": np.cos(2 * np.pi * 3 * t)}).to_csv(
        tmp_path / "ecg.csv", index=False)
    rec = records.read_ecg(tmp_path / "ecg.csv", fs=360, lead="II", source_fs=fs_src)
    assert rec.lead == "II" and len(rec.signal) == 5 * 360
    t360 = np.arange(5 * 360) / 360
    inner = slice(50, -50)  # away from the resampler's edge transients
    np.testing.assert_allclose(rec.signal[inner], np.cos(2 * np.pi * 3 * t360)[inner], atol=2e-3)
    with pytest.raises(CardioError, match=r"ecg\.csv.*needs its sampling rate"):
        records.read_ecg(tmp_path / "ecg.csv")


def test_npy_signal_single_and_multi_lead(tmp_path):
    x = _ecg_like(2500, 250)[:, 0]
    np.save(tmp_path / "one.npy", x)
    rec = records.read_ecg(tmp_path / "one.npy", fs=360, lead="II", source_fs=250)  # the only lead
    assert len(rec.signal) == 3600
    np.save(tmp_path / "two.npy", np.c_[x, -x])
    rec = records.read_npy_signal(tmp_path / "two.npy", 250, fs=250, lead="V1", lead_names=["II", "V1"])
    np.testing.assert_allclose(rec.signal, -x)
    with pytest.raises(CardioError, match=r"two\.npy.*no lead named"):
        records.read_npy_signal(tmp_path / "two.npy", 250, lead="V6")


def test_resample_samples_maps_indices():
    np.testing.assert_array_equal(records.resample_samples(np.array([0, 360, 719]), 360, 250), [0, 250, 499])
    np.testing.assert_array_equal(records.resample_samples(np.array([0, 100]), 250, 250), [0, 100])


# ---------------------------------------------------------------- cohorts

def test_cohort_loads_every_record(cohort_dir):
    c = cohort_table.load_cohort(cohort_dir, fs=360, lead="II")
    assert len(c.table) == 6 and set(c.signals) == set(c.table["record_id"])
    assert all(s.shape == (1440,) for s in c.signals.values()) and not c.skipped
    assert {"patient_id", "record_id", "responder", "qrs_ms", "lbbb", "lvef", "age", "sex"} <= set(c.table.columns)


def test_cohort_csv_without_label_column_loads_unlabelled(cohort_dir, tmp_path):
    d = _copy_cohort(cohort_dir, tmp_path / "c")
    # without the label and what the papers' rule derives it from (cardio_response.volumetric)
    pd.read_csv(d / "cohort.csv").drop(columns=["responder", "lvesv_reduction_pct", "lvesv_followup"],
                                       errors="ignore").to_csv(d / "cohort.csv", index=False)
    c = cohort_table.load_cohort(d)  # for cardio predict; cardio run refuses it (the core's study checks)
    assert len(c.table) == 6 and c.table["responder"].isna().all()


def test_patient_rows_without_record_are_a_problem_of_the_table(cohort_dir, tmp_path):
    d = _copy_cohort(cohort_dir, tmp_path / "c")
    table = pd.read_csv(d / "cohort.csv", dtype=str)
    table.loc[2, "ecg"] = "ecg/absent"
    table.to_csv(d / "cohort.csv", index=False)
    for skip_bad in (False, True):  # skip_bad leaves out unreadable files, not rows naming no file
        with pytest.raises(CohortProblems) as e:
            cohort_table.load_cohort(d, skip_bad=skip_bad)
        (problem,) = e.value.problems
        assert (problem.line, problem.column) == (4, "ecg")
        assert "ecg/absent{.hea,.csv,.npy,.dcm,.xml,.edf}" in str(problem)
        assert "pt003" not in str(e.value)  # no patient identifier in messages


def test_bad_record_in_cohort_raises_unless_skip_bad(cohort_dir, tmp_path):
    d = _copy_cohort(cohort_dir, tmp_path / "c")
    dat = d / "ecg" / "crt004.dat"
    dat.write_bytes(dat.read_bytes()[:500])
    with pytest.raises(CardioError, match=r"crt004\.dat.*truncated"):
        cohort_table.load_cohort(d)
    c = cohort_table.load_cohort(d, skip_bad=True)
    assert len(c.table) == 5 and "crt004" not in c.signals
    assert c.skipped[0][0] == "crt004" and "truncated" in c.skipped[0][1]
    got, skipped = records.read_many([d / "ecg" / "crt001", d / "ecg" / "crt004"], skip_bad=True)
    assert len(got) == 1 and len(skipped) == 1
    with pytest.raises(CardioError):
        records.read_many([d / "ecg" / "crt001", d / "ecg" / "crt004"])


def test_cohort_of_csv_ecgs_with_fs_column(tmp_path):
    rows = []
    for i in range(3):
        x = _ecg_like(2000, 200)[:, 0] * (1 + i)
        pd.DataFrame({"II": x}).to_csv(tmp_path / f"e{i}.csv", index=False)
        rows.append({"patient_id": f"p{i}", "record_id": f"r{i}", "ecg": f"e{i}.csv", "fs": 200, "responder": i % 2})
    pd.DataFrame(rows).to_csv(tmp_path / "cohort.csv", index=False)
    c = cohort_table.load_cohort(tmp_path, fs=360, lead="II")
    assert [len(c.signals[f"r{i}"]) for i in range(3)] == [3600] * 3


def test_missing_cohort_table_is_an_error(tmp_path):
    with pytest.raises(CardioError, match="cohort table not found"):
        cohort_table.load_cohort(tmp_path)


def test_nan_gaps_are_found_with_their_start_and_length():
    finite = np.ones(20, bool)
    finite[[0, 1, 7, 8, 9, 19]] = False
    starts, lengths = records.nan_gaps(finite)
    assert starts.tolist() == [0, 7, 19] and lengths.tolist() == [2, 3, 1]
    assert [a.tolist() for a in records.nan_gaps(np.ones(5, bool))] == [[], []]


@pytest.mark.parametrize("text,found", [
    ("II,V5\n0.1,0.2\n", (",", ".")), ("II;V5\n0,1;0,2\n", (";", ",")), ("II;V5\n0.1;0.2\n", (";", ".")),
    ("II\tV5\n0,1\t-1,5e-3\n", ("\t", ",")), ("\ufeffII;V5\n1;2\n", (";", ".")), ("II\n0.1\n", (",", ".")),
    ('"II;x",V5\n0.1,0.2\n', (",", "."))])  # a ";" inside a quoted name is no delimiter
def test_csv_format_finds_the_delimiter_and_the_decimal_mark(tmp_path, text, found):
    (tmp_path / "e.csv").write_text(text, encoding="utf-8")
    assert records.csv_format(tmp_path / "e.csv") == found
