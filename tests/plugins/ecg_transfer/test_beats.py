"""Beat windows of 1.2 RR: bounds, shapes, kept R peaks, vectorized resampling."""
import numpy as np
import pytest

pytest.importorskip("cardio_ecg_transfer")

from cardio import CardioError
from cardio_ecg_transfer.beats import beat_bounds, segment_beats


def test_window_runs_from_0_4_rr_before_to_0_8_rr_after():
    ramp = np.arange(5000, dtype=float)  # linear interpolation of a ramp is exact: values = positions
    r = np.array([100, 400, 800, 1100, 1500])
    beats, kept = segment_beats(ramp, r, fs=360, length=64)
    assert beats.shape == (3, 64) and beats.dtype == np.float32
    np.testing.assert_array_equal(kept, [400, 800, 1100])  # first and last beat lack an RR on one side
    np.testing.assert_allclose(beats[:, 0], [400 - 0.4 * 300, 800 - 0.4 * 400, 1100 - 0.4 * 300], rtol=1e-6)
    np.testing.assert_allclose(beats[:, -1], [400 + 0.8 * 400, 800 + 0.8 * 300, 1100 + 0.8 * 400], rtol=1e-6)
    np.testing.assert_allclose(np.diff(beats, axis=1).std(axis=1), 0, atol=1e-3)  # evenly spaced
    total = beats[:, -1] - beats[:, 0]
    np.testing.assert_allclose(total, [0.4 * 300 + 0.8 * 400, 0.4 * 400 + 0.8 * 300, 440], rtol=1e-6)
    # in a regular rhythm the window is 1.2 RR long
    regular, _ = segment_beats(ramp, np.arange(100, 4000, 300), fs=360, length=16)
    np.testing.assert_allclose(regular[:, -1] - regular[:, 0], 1.2 * 300, rtol=1e-6)


def test_rr_factor_scales_the_window():
    _, start, end = beat_bounds(np.array([0, 300, 600]), rr_factor=1.5)
    np.testing.assert_allclose([start[0], end[0]], [300 - 150, 300 + 300])


def test_resampled_shape_and_subset_of_input_peaks():
    rng = np.random.default_rng(0)
    x = rng.normal(size=20000)
    r = np.sort(rng.choice(np.arange(50, 19950), size=60, replace=False))
    beats, kept = segment_beats(x, r[::-1], fs=360, length=256)  # unsorted input is fine
    assert beats.shape == (len(kept), 256) and set(kept) <= set(r) and len(kept) >= 50
    # windows that would leave the signal are dropped
    beats, kept = segment_beats(x[:1000], np.array([10, 500, 990]), fs=360)
    assert len(kept) == 1 and kept[0] == 500
    beats, kept = segment_beats(x[:1000], np.array([500, 990]), fs=360)
    assert beats.shape == (0, 256) and len(kept) == 0


def test_beat_of_a_real_waveform_is_centred_on_its_peak():
    fs, rr = 360, 288
    t = np.arange(20 * rr)
    x = np.exp(-0.5 * (((t - rr // 2) % rr - rr // 2) / 5.0) ** 2)  # a spike at every multiple of rr
    peaks = np.arange(rr, len(t) - rr, rr)
    beats, _ = segment_beats(x, peaks, fs, length=120)
    assert (np.argmax(beats, axis=1) == round(119 * 0.4 / 1.2)).all()


def test_invalid_arguments():
    with pytest.raises(CardioError, match="1-D"):
        segment_beats(np.zeros((10, 2)), np.array([1, 2, 3]), 360)
    with pytest.raises(CardioError, match="outside the signal"):
        segment_beats(np.zeros(100), np.array([10, 50, 200]), 360)
    with pytest.raises(CardioError, match="positive"):
        segment_beats(np.zeros(100), np.array([10, 50, 90]), 360, length=1)
