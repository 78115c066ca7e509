"""STFT spectrograms of many beats at once (Hamming window), on CPU with SciPy or on a GPU with torch.

Both paths give what a loop of ``scipy.signal.stft(beat, fs, window="hamming", nperseg=...,
noverlap=..., nfft=...)`` over the beats gives (zero boundary padding, zero padding to whole
segments, "spectrum" scaling), as |Z| or log(|Z| + eps), shape (n_beats, freq, time), float32.
Results can be kept in the run's cache (cardio.Cache) under a hash of the beats and the parameters.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from scipy import signal as sps

from cardio import Cache, CardioError

#: Added to |Z| before the log so that silent bins stay finite.
LOG_EPS = 1e-6
_CACHE_VERSION = 1
CACHE_NAMESPACE = "ecg_transfer/spectrograms"


def _check(beats: np.ndarray, nperseg: int, noverlap: int, nfft: int | None) -> np.ndarray:
    beats = np.asarray(beats)
    if beats.ndim != 2:
        raise CardioError(f"spectrograms expects beats of shape (n, length), got {beats.shape}")
    if not np.issubdtype(beats.dtype, np.floating):
        beats = beats.astype(np.float32)
    if not 0 < nperseg <= beats.shape[1]:
        raise CardioError(f"spectrogram nperseg={nperseg} must lie in 1..beat length {beats.shape[1]}")
    if not 0 <= noverlap < nperseg:
        raise CardioError(f"spectrogram noverlap={noverlap} must lie in 0..nperseg-1 ({nperseg - 1})")
    if nfft is not None and nfft < nperseg:
        raise CardioError(f"spectrogram nfft={nfft} must be at least nperseg={nperseg}")
    if beats.size and not np.isfinite(beats).all():
        raise CardioError("spectrograms: beats contain NaN or infinite values")
    return beats


def _finish(mag: np.ndarray, log: bool) -> np.ndarray:
    mag = mag.astype(np.float32)  # the log in float32 is twice as fast and within 1 ulp
    return np.log(mag + np.float32(LOG_EPS)) if log else mag


def stft_shape(length: int, nperseg: int = 64, noverlap: int = 56, nfft: int | None = None) -> tuple[int, int]:
    """(freq bins, time frames) of the spectrogram of one beat of `length` samples."""
    hop = nperseg - noverlap
    n = length + 2 * (nperseg // 2)
    n += (-(n - nperseg) % hop) % nperseg
    return (nfft or nperseg) // 2 + 1, (n - nperseg) // hop + 1


def _scipy_batch(b: np.ndarray, fs: float, nperseg: int, noverlap: int, nfft: int | None) -> np.ndarray:
    b = np.asarray(b, dtype=np.float64)  # float64 whatever the beats' dtype, as the torch path
    _, _, z = sps.stft(b, fs=fs, window="hamming", nperseg=nperseg, noverlap=noverlap, nfft=nfft, axis=-1)
    return np.abs(z)


def _torch_batches(beats, fs, nperseg, noverlap, nfft, log, device, batch_size) -> np.ndarray:
    import torch  # only this path needs torch

    dev = torch.device(device)
    nfft = nfft or nperseg
    hop = nperseg - noverlap
    # periodic Hamming = scipy.signal.get_window("hamming", nperseg), scipy's default for stft
    win = torch.hamming_window(nperseg, periodic=True, dtype=torch.float64, device=dev)
    pad = nperseg // 2
    n = beats.shape[1] + 2 * pad
    extra = (-(n - nperseg) % hop) % nperseg
    # torch frames are n_fft long with the window centred in them; scipy's segments are nperseg
    # long and zero-padded at the end to nfft. Shifting the input by the centring offset makes
    # each torch frame hold scipy's segment, circularly shifted: the same magnitudes.
    centre = (nfft - nperseg) // 2
    left, right = pad + centre, pad + extra + (nfft - nperseg - centre)
    out = []
    for i in range(0, len(beats), batch_size):
        # float64 as scipy here: float32 rounding (~1e-7) would move log(|Z| + 1e-6) of quiet bins
        x = torch.as_tensor(np.ascontiguousarray(beats[i:i + batch_size]), dtype=torch.float64, device=dev)
        # scipy's boundary="zeros" and padded=True, then frames without torch's own centring
        x = torch.nn.functional.pad(x, (left, right))
        z = torch.stft(x, n_fft=nfft, hop_length=hop, win_length=nperseg, window=win, center=False,
                       onesided=True, return_complex=True)
        mag = z.abs() / win.sum()  # scipy's "spectrum" scaling
        if log:
            mag = torch.log(mag + LOG_EPS)
        out.append(mag.float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0,) + stft_shape(beats.shape[1], nperseg, noverlap, nfft),
                                                    np.float32)


def spectrograms(beats: np.ndarray, fs: float, nperseg: int = 64, noverlap: int = 56, nfft: int | None = None,
                 log: bool = True, device: str = "cpu", batch_size: int = 4096) -> np.ndarray:
    """Spectrograms (n, freq, time) float32 of beat windows (n, length).

    device "cpu" computes with SciPy on whole batches; any torch device ("cuda", "cuda:1", "mps",
    or "torch-cpu" for torch on the CPU) uses torch.stft. `batch_size` bounds memory only.
    """
    beats = _check(beats, int(nperseg), int(noverlap), nfft)
    nperseg, noverlap = int(nperseg), int(noverlap)
    nfft = int(nfft) if nfft is not None else None
    batch_size = max(1, int(batch_size))
    dev = str(device)
    if dev != "cpu":
        return _torch_batches(beats, fs, nperseg, noverlap, nfft, log,
                              "cpu" if dev == "torch-cpu" else dev, batch_size)
    shape = stft_shape(beats.shape[1], nperseg, noverlap, nfft)
    out = np.empty((len(beats),) + shape, dtype=np.float32)
    for i in range(0, len(beats), batch_size):
        out[i:i + batch_size] = _finish(_scipy_batch(beats[i:i + batch_size], fs, nperseg, noverlap, nfft), log)
    return out


def spectrogram_loop(beats: np.ndarray, fs: float, nperseg: int = 64, noverlap: int = 56, nfft: int | None = None,
                     log: bool = True) -> np.ndarray:
    """The same, one ``scipy.signal.stft`` call per beat: the reference the batched paths are checked
    against (tests, benchmarks/ecg_preprocess.py)."""
    beats = _check(beats, int(nperseg), int(noverlap), nfft)
    return np.stack([_finish(_scipy_batch(b, fs, nperseg, noverlap, nfft), log) for b in beats]) if len(beats) \
        else np.zeros((0,) + stft_shape(beats.shape[1], nperseg, noverlap, nfft), np.float32)


def cache_key(beats: np.ndarray, fs: float, **params) -> dict:
    """The cache key of spectrograms: a hash of the beats (values, dtype, shape) and every parameter that
    changes the output."""
    beats = np.ascontiguousarray(beats)
    return {"beats": hashlib.sha256(beats.tobytes()).hexdigest()[:32], "shape": list(beats.shape),
            "dtype": str(beats.dtype), "fs": float(fs), **params}


def _readable(path: Path) -> bool:
    """A cached array whose header and length are whole (a damaged entry is recomputed)."""
    try:
        np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return False
    return True


def cached_spectrograms(beats: np.ndarray, cache: Cache, fs: float = 360.0, nperseg: int = 64,
                        noverlap: int = 56, nfft: int | None = None, log: bool = True, device: str = "cpu",
                        batch_size: int = 4096) -> np.ndarray:
    """`spectrograms`, kept in `cache` (namespace ecg_transfer/spectrograms, one .npy per key) and read back.

    The key covers the beats and fs/nperseg/noverlap/nfft/log, not the device or batch size
    (they change the float rounding only). The cache writes atomically and builds an entry once
    when several processes ask for it.
    """
    nperseg, noverlap, log = int(nperseg), int(noverlap), bool(log)
    nfft = None if nfft is None else int(nfft)

    def build(tmp: Path) -> None:
        np.save(tmp, spectrograms(beats, fs, nperseg, noverlap, nfft, log, device=device, batch_size=batch_size),
                allow_pickle=False)

    key = cache_key(beats, fs, nperseg=nperseg, noverlap=noverlap, nfft=nfft, log=log)
    path = cache.get(CACHE_NAMESPACE, key, build, suffix=".npy",
                     version=_CACHE_VERSION, check=_readable)
    return np.load(path, allow_pickle=False)
