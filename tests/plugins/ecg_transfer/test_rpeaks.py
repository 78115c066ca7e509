"""R-peak detector: sensitivity and positive predictivity on MIT-BIH and on synthetic ECGs, input checks."""

import numpy as np
import pytest

pytest.importorskip("cardio_ecg_transfer")
from wfdb.processing import compare_annotations

from cardio import CardioError
from cardio_ecg_transfer import records
from cardio_ecg_transfer.rpeaks import detect_rpeaks
from cardio_ecg_transfer.synthetic import cohort_table, synthesize_ecg


def _se_ppv(ref, det, fs):
    c = compare_annotations(np.asarray(ref), np.asarray(det), int(0.15 * fs))
    return c.tp / c.n_ref, c.tp / max(c.n_test, 1)


@pytest.mark.parametrize("record", ["101", "112"])  # DS1 records: the thresholds were tuned on DS1
def test_mitdb_sensitivity_and_positive_predictivity_above_99(record, mitdb_dir):
    rec = records.read_wfdb(mitdb_dir / record, fs=360, lead=0, annotator="atr")
    samples, symbols = rec.annotations()
    ref = samples[np.isin(symbols, list(records.BEAT_SYMBOLS))]
    det = detect_rpeaks(rec.signal, rec.fs)
    se, ppv = _se_ppv(ref, det, rec.fs)
    assert se > 0.99 and ppv > 0.99, (se, ppv)
    assert det.dtype == np.int64 and np.all(np.diff(det) > 0)
    # detections sit on the R maximum: within 30 ms of the reference for nearly every beat
    j = np.searchsorted(det, ref)
    d = np.minimum(np.abs(det[np.clip(j, 0, len(det) - 1)] - ref), np.abs(ref - det[np.clip(j - 1, 0, len(det) - 1)]))
    assert np.mean(d <= 0.03 * rec.fs) > 0.95


def test_mitdb_at_another_sampling_rate(mitdb_dir):
    rec = records.read_wfdb(mitdb_dir / "101", fs=250, lead=0, annotator="atr")
    samples, symbols = rec.annotations()
    ref = samples[np.isin(symbols, list(records.BEAT_SYMBOLS))]
    se, ppv = _se_ppv(ref, detect_rpeaks(rec.signal, 250), 250)
    assert se > 0.99 and ppv > 0.99


def test_synthetic_ecgs_with_wide_notched_qrs():
    table = cohort_table(8, seed=5)
    for i in range(len(table)):
        sig, beats = synthesize_ecg(table.iloc[i], seed=5, fs=360, seconds=10, return_beats=True)
        det = detect_rpeaks(sig[:, 0], 360)
        inner = beats[(beats > 0.2 * 360) & (beats < len(sig) - 0.2 * 360)]  # beats cut by the edges may be missed
        assert _se_ppv(inner, det, 360)[0] == 1.0, i
        assert _se_ppv(beats, det, 360)[1] == 1.0, i


def test_nan_gap_is_bridged_and_flat_or_short_signals_give_no_peaks():
    table = cohort_table(2, seed=1)
    sig, beats = synthesize_ecg(table.iloc[0], seed=1, fs=360, seconds=10, return_beats=True)
    x = sig[:, 0].copy()
    x[1000:1020] = np.nan
    assert len(detect_rpeaks(x, 360)) >= ((beats >= 0) & (beats < 3600)).sum() - 2
    assert len(detect_rpeaks(np.zeros(3600), 360)) == 0
    assert len(detect_rpeaks(x[:100], 360)) == 0


def test_bad_inputs_are_errors():
    with pytest.raises(CardioError, match="at least 100 Hz"):
        detect_rpeaks(np.random.default_rng(0).normal(size=1000), 50)
    with pytest.raises(CardioError, match="1-D"):
        detect_rpeaks(np.zeros((100, 2)), 360)
    with pytest.raises(CardioError, match="no finite sample"):
        detect_rpeaks(np.full(1000, np.nan), 360)
