"""One ECG lead -> the images every model here sees: standardized log spectrograms of its beats.

The same function serves MIT-BIH pretraining and the CRT cohort, so the pretrained network
is fine-tuned on inputs made exactly as during pretraining.
"""
from __future__ import annotations

import numpy as np
from scipy import signal as sps

from cardio import Cache, CardioError
from cardio_ecg_transfer.beats import segment_beats
from cardio_ecg_transfer.settings import EcgSettings
from cardio_ecg_transfer.spectrogram import cached_spectrograms, spectrograms, stft_shape


def highpass(x: np.ndarray, fs: float, cutoff_hz: float, order: int = 2) -> np.ndarray:
    """Zero-phase Butterworth high-pass: removes baseline wander without shifting the R peaks."""
    if not cutoff_hz:
        return np.asarray(x, dtype=np.float64)
    if not 0 < cutoff_hz < fs / 2:
        raise CardioError(f"ecg_transfer.preprocess.highpass_hz={cutoff_hz} must lie between 0 and fs/2 = {fs / 2}")
    sos = sps.butter(order, cutoff_hz, btype="highpass", fs=fs, output="sos")
    return sps.sosfiltfilt(sos, np.asarray(x, dtype=np.float64))


def input_spec(config: dict, fs: float) -> dict:
    """What defines an input image; stored with pretrained weights so fine-tuning can check it."""
    s = EcgSettings.of(config)
    pp, sp = s.preprocess, s.spectrogram
    return {"fs": float(fs), "highpass_hz": float(pp.highpass_hz), "beat_length": pp.beat_length,
            "rr_factor": float(pp.rr_factor), "nperseg": sp.nperseg, "noverlap": sp.noverlap, "log": sp.log,
            "standardize": sp.standardize}


def standardize(spec: np.ndarray) -> np.ndarray:
    """Z-score each spectrogram on its own.

    MIT-BIH and a CRT cohort differ in gain, lead and noise; per-image standardization keeps
    the time-frequency shape a ResNet learns from and removes the recording's scale.
    """
    spec = np.asarray(spec, dtype=np.float32)
    mean = spec.mean(axis=(1, 2), keepdims=True)
    std = spec.std(axis=(1, 2), keepdims=True)
    return (spec - mean) / np.maximum(std, 1e-6)


def beat_windows(filtered: np.ndarray, rpeaks: np.ndarray, fs: float, config: dict) -> tuple[np.ndarray, np.ndarray]:
    """(beats (n, beat_length), kept R-peak positions) of an already high-passed lead."""
    pp = EcgSettings.of(config).preprocess
    return segment_beats(filtered, np.asarray(rpeaks), fs, length=pp.beat_length, rr_factor=float(pp.rr_factor))


def to_images(beats: np.ndarray, fs: float, config: dict, cache: Cache | None = None) -> np.ndarray:
    """Log spectrograms (n, freq, time) of beat windows, standardized when the config says so.

    With `cache` (the run's ctx.cache), the spectrograms are kept on disk under a hash of the beats and settings.
    """
    sp = EcgSettings.of(config).spectrogram
    nperseg, noverlap, log = sp.nperseg, sp.noverlap, sp.log
    beats = np.asarray(beats, dtype=np.float32)
    if len(beats) == 0:
        return np.zeros((0, *stft_shape(beats.shape[1], nperseg, noverlap)), dtype=np.float32)
    if cache is not None:
        spec = cached_spectrograms(beats, cache, fs=fs, nperseg=nperseg, noverlap=noverlap, log=log)
    else:
        spec = spectrograms(beats, fs, nperseg=nperseg, noverlap=noverlap, log=log)
    spec = np.asarray(spec, dtype=np.float32)
    return standardize(spec) if sp.standardize else spec


def image_axes(config: dict) -> dict:
    """Bin centres of a beat image: frequency in cycles per beat window and time as a fraction of it.

    A beat window spans rr_factor x RR and is resampled to beat_length samples, so bins are in
    units of the window, not Hz (a window's duration depends on the heart rate).
    """
    s = EcgSettings.of(config)
    length, nperseg, noverlap = s.preprocess.beat_length, s.spectrogram.nperseg, s.spectrogram.noverlap
    n_freq, n_time = stft_shape(length, nperseg, noverlap)
    return {"freqs": (np.arange(n_freq) * length / nperseg).tolist(),
            "times": (np.arange(n_time) * (nperseg - noverlap) / length).tolist()}
