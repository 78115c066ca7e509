"""The synthetic CRT cohort: determinism, reuse, WFDB files read back by records.py, morphology."""
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("cardio_ecg_transfer")

from scipy import signal as sps
from sklearn.metrics import roc_auc_score

from cardio import CardioError
from cardio_ecg_transfer.beat_images import beat_windows, highpass, image_axes, to_images
from cardio_ecg_transfer.cohort_table import load_cohort
from cardio_ecg_transfer.records import read_wfdb
from cardio_ecg_transfer.rpeaks import detect_rpeaks
from cardio_ecg_transfer.settings import EcgSettings
from cardio_ecg_transfer.synthetic import cohort_table, synthesize_ecg, write_synthetic_cohort
from cardio_testing.harness import plugin_config


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    a = write_synthetic_cohort(tmp_path / "a", n_patients=5, seed=11, seconds=3)
    b = write_synthetic_cohort(tmp_path / "b", n_patients=5, seed=11, seconds=3)
    c = write_synthetic_cohort(tmp_path / "c", n_patients=5, seed=12, seconds=3)
    assert a.read_text() == b.read_text() != c.read_text()
    for e in pd.read_csv(a)["ecg"]:
        assert (tmp_path / "a" / f"{e}.dat").read_bytes() == (tmp_path / "b" / f"{e}.dat").read_bytes()
    assert (tmp_path / "a" / "ecg" / "crt001.dat").read_bytes() != (tmp_path / "c" / "ecg" / "crt001.dat").read_bytes()


def test_existing_cohort_is_reused_and_rewritten_when_parameters_change(tmp_path):
    csv = write_synthetic_cohort(tmp_path, n_patients=4, seed=0, seconds=3)
    dat = tmp_path / "ecg" / "crt001.dat"
    stamp = dat.stat().st_mtime_ns
    assert write_synthetic_cohort(tmp_path, n_patients=4, seed=0, seconds=3) == csv
    assert dat.stat().st_mtime_ns == stamp
    write_synthetic_cohort(tmp_path, n_patients=4, seed=0, seconds=4)
    assert read_wfdb(tmp_path / "ecg" / "crt001").signal.shape == (4 * 360,)
    dat.unlink()  # an incomplete folder is rewritten too
    write_synthetic_cohort(tmp_path, n_patients=4, seed=0, seconds=4)
    assert dat.is_file()


def test_cohort_reads_back_through_records(tmp_path):
    write_synthetic_cohort(tmp_path, n_patients=7, seed=2, fs=500, seconds=5, leads=("I", "II", "V6"))
    c = load_cohort(tmp_path, fs=360, lead="V6")
    assert len(c.table) == 7 and all(len(s) == 5 * 360 for s in c.signals.values())
    rec = read_wfdb(tmp_path / "ecg" / "crt003", fs=500, lead="II")
    assert rec.source_fs == 500 and rec.lead == "II" and 0.5 < np.ptp(rec.signal) < 6  # mV


def test_table_looks_like_table_1_of_the_paper():
    t = cohort_table(71, seed=0)
    assert len(t) == 71 and t["patient_id"].is_unique and t["record_id"].is_unique
    for col in ["responder", "qrs_ms", "lbbb", "lvef", "age", "sex", "dm", "lvedv", "lvesv", "acei_arb",
                "beta_blocker", "scar"]:
        assert col in t.columns
    assert 0.45 < t["responder"].mean() < 0.85 and 0.65 < t["lbbb"].mean() < 0.92
    assert (t["qrs_ms"] >= 100).all() and (t["lvef"] <= 35).all()
    big = cohort_table(4000, seed=1)
    resp = big.groupby("responder")[["qrs_ms", "lbbb", "lvef", "_notch"]].mean()
    assert (resp.loc[1] > resp.loc[0]).all()  # responders: wider QRS, more LBBB, higher LVEF, deeper notch
    assert 0.55 < big["responder"].mean() < 0.72


def test_waveform_carries_what_the_table_does_not():
    """Among LBBB patients with the same QRS duration, the notch depth changes the waveform only."""
    t = cohort_table(2, seed=0)
    base = t.iloc[0].copy()
    base["_lbbb_true"], base["_qrs_true_ms"] = 1, 170.0
    peaks = []
    for notch in (0.0, 1.0):
        row = base.copy()
        row["_notch"] = notch
        sig, beats = synthesize_ecg(row, seed=0, fs=1000, seconds=4, leads=("II",), return_beats=True)
        r = beats[1]
        qrs = sps.savgol_filter(sig[r - 100:r + 100, 0], 21, 2)  # noise off, humps kept
        p, _ = sps.find_peaks(qrs, prominence=0.1)
        peaks.append(len(p))
    assert peaks == [1, 2]  # slurred single hump vs notched double hump


def test_notch_carries_more_of_the_response_than_the_guideline_variables():
    big = cohort_table(4000, seed=1)
    y = big["responder"]
    rule = ((big["lbbb"] == 1) & (big["qrs_ms"] >= 150) & (big["lvef"] <= 35)).astype(int)
    auc_notch, auc_qrs, auc_rule = (roc_auc_score(y, s) for s in (big["_notch"], big["qrs_ms"], rule))
    assert auc_notch > auc_rule + 0.15 and auc_notch > auc_qrs + 0.15
    assert 0.56 < auc_rule < 0.7 and 0.55 < auc_qrs < 0.7  # the guideline variables keep a real, smaller effect


def test_notch_shows_in_the_qrs_of_every_beat_spectrogram():
    """Through the plugin's own beat images: high-frequency power during the QRS rises with the notch."""
    config = plugin_config("ecg_transfer", [])
    axes = image_axes(config)
    freqs, starts = np.asarray(axes["freqs"]), np.asarray(axes["times"])
    s = EcgSettings.of(config)
    span = s.spectrogram.nperseg / s.preprocess.beat_length
    r_at = 0.4 / s.preprocess.rr_factor  # the R peak's place in the beat window
    in_qrs = (starts <= r_at) & (starts + span >= r_at)
    band = (freqs >= 16) & (freqs <= 48)  # cycles per window: about 13-40 Hz at 72 beats/min
    t = cohort_table(2, seed=3)
    for i, lbbb in [(0, 1), (1, 1), (0, 0), (1, 0)]:
        hf = []
        for notch in (0.0, 1.0):
            row = t.iloc[i].copy()
            row["_lbbb_true"], row["_notch"] = lbbb, notch
            sig = highpass(synthesize_ecg(row, seed=3)[:, 0], 360, 0.5)
            beats, _ = beat_windows(sig, detect_rpeaks(sig, 360), 360, config)
            hf.append(to_images(beats, 360, config)[:, band][:, :, in_qrs].mean(axis=(1, 2)))
        assert len(hf[1]) >= 8 and (hf[1] > hf[0].mean()).all()  # in every notched beat
        assert hf[1].mean() > hf[0].mean() + 0.15


def test_invalid_parameters():
    with pytest.raises(CardioError, match="at least 2 patients"):
        write_synthetic_cohort("/nonexistent-never-written", n_patients=1)
    with pytest.raises(CardioError, match="unknown lead"):
        synthesize_ecg(cohort_table(2).iloc[0], seed=0, leads=("X",))
