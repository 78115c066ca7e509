"""Batched STFT spectrograms equal a per-beat scipy.signal.stft loop; torch path; disk cache."""
import numpy as np
import pytest

pytest.importorskip("cardio_ecg_transfer")
import torch
from scipy import signal as sps

from cardio import Cache, CardioError
from cardio_ecg_transfer.spectrogram import cached_spectrograms, spectrograms, stft_shape


@pytest.fixture(scope="module")
def beats():
    rng = np.random.default_rng(0)
    b = 0.05 * rng.normal(size=(300, 256))
    t = np.arange(256)
    b += np.exp(-0.5 * ((t - 85) / (3 + rng.uniform(0, 6, (300, 1)))) ** 2)  # QRS-like bumps of varied width
    return b.astype(np.float32)


def _loop(beats, fs, nperseg, noverlap, nfft, log):
    out = []
    for b in beats:  # the reference: one scipy.signal.stft call per beat
        _, _, z = sps.stft(b.astype(np.float64), fs=fs, window="hamming", nperseg=nperseg, noverlap=noverlap, nfft=nfft)
        m = np.abs(z)
        out.append(np.log(m + 1e-6) if log else m)
    return np.stack(out)


@pytest.mark.parametrize("nperseg,noverlap,nfft,log", [(64, 56, None, True), (64, 56, 128, False),
                                                        (32, 16, None, True), (33, 20, 64, True)])
def test_batched_equals_per_beat_stft_loop(beats, nperseg, noverlap, nfft, log):
    ref = _loop(beats, 360, nperseg, noverlap, nfft, log)
    got = spectrograms(beats, 360, nperseg=nperseg, noverlap=noverlap, nfft=nfft, log=log, batch_size=64)
    assert got.dtype == np.float32
    assert got.shape == ref.shape == (len(beats),) + stft_shape(256, nperseg, noverlap, nfft)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    tor = spectrograms(beats, 360, nperseg=nperseg, noverlap=noverlap, nfft=nfft, log=log, device="torch-cpu",
                       batch_size=100)
    np.testing.assert_allclose(tor, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_path_equals_loop(beats):
    ref = _loop(beats, 360, 64, 56, None, True)
    np.testing.assert_allclose(spectrograms(beats, 360, device="cuda"), ref, rtol=1e-5, atol=1e-5)


def test_spectrogram_shows_the_beat_energy(beats):
    s = spectrograms(beats[:1], 360, log=False)[0]
    assert np.unravel_index(np.argmax(s), s.shape)[1] in range(9, 13)  # frame around sample 85 (hop 8)


def test_cache_hit_returns_the_stored_array(beats, tmp_path):
    cache = Cache(tmp_path)
    folder = tmp_path / "ecg_transfer" / "spectrograms"
    first = cached_spectrograms(beats, cache, fs=360, nperseg=64, noverlap=56)
    files = list(folder.glob("*.npy"))
    assert len(files) == 1
    np.testing.assert_array_equal(first, spectrograms(beats, 360))
    # overwrite the stored file: a hit must read it rather than recompute
    np.save(files[0], np.full_like(first, 7.0))
    again = cached_spectrograms(beats, cache, fs=360, nperseg=64, noverlap=56, device="torch-cpu")
    assert (again == 7.0).all()
    # other parameters or other beats: another entry
    cached_spectrograms(beats, cache, fs=360, nperseg=32, noverlap=16)
    cached_spectrograms(beats[:10], cache, fs=360, nperseg=64, noverlap=56)
    assert len(list(folder.glob("*.npy"))) == 3
    assert not [p for p in folder.iterdir() if ".tmp" in p.name]
    # a damaged entry (cut short) is computed again
    files[0].write_bytes(files[0].read_bytes()[:200])
    np.testing.assert_array_equal(cached_spectrograms(beats, cache, fs=360, nperseg=64, noverlap=56), first)


def test_empty_and_bad_inputs(beats):
    assert spectrograms(beats[:0], 360).shape == (0,) + stft_shape(256)
    with pytest.raises(CardioError, match=r"\(n, length\)"):
        spectrograms(beats[0], 360)
    with pytest.raises(CardioError, match="nperseg"):
        spectrograms(beats[:, :32], 360, nperseg=64)
    with pytest.raises(CardioError, match="noverlap"):
        spectrograms(beats, 360, nperseg=64, noverlap=64)
    bad = beats[:3].copy()
    bad[1, 5] = np.nan
    with pytest.raises(CardioError, match="NaN"):
        spectrograms(bad, 360)
