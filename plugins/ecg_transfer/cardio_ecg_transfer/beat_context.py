"""A beat relative to its own record: RR-interval ratios and likeness to the record's median QRS.

Inter-patient beat classification fails mostly on morphology that is normal for one patient and
ectopic for another. De Chazal et al. (2004) and most inter-patient methods since add the RR
intervals, normalized by the record's own rhythm; the same idea applied to shape compares each
QRS with the record's median QRS. These side features join the pooled image features of the
pretraining network only (resnet.SpectrogramResNet n_side); the transferred backbone is image-only.
No library computes these per-record normalizations, so they are written here, vectorized.
"""
from __future__ import annotations

import numpy as np

from cardio import CardioError

RR_NAMES = ("log_pre_rr", "log_post_rr", "log_local_rr", "log_pre_over_local", "log_pre_over_post")
SHAPE_NAMES = ("qrs_corr", "log_qrs_amplitude", "log_qrs_residual")
DECHAZAL_NAMES = ("pre_rr_norm", "post_rr_norm", "average_rr_norm", "local_rr_norm")
#: Beats averaged for the local RR (the beat itself and the ones before it), as de Chazal et al.
LOCAL_BEATS = 10
#: de Chazal et al. 2004: the average RR is the mean over +-5 minutes around the beat, the local RR the mean
#: over the +-10 beats around it; here each is divided by the record's mean RR (as Mondejar-Guerra et al. 2019).
AVERAGE_SECONDS = 300.0
LOCAL_HALF_BEATS = 10
#: QRS window around the R peak for the shape features (s): before, after.
QRS_WINDOW = (0.10, 0.15)


def names(kinds: list[str] | tuple[str, ...]) -> list[str]:
    """Feature names, in column order, of the side feature kinds ('rr', 'shape')."""
    table = {"rr": RR_NAMES, "shape": SHAPE_NAMES, "dechazal_rr": DECHAZAL_NAMES}
    unknown = [k for k in kinds if k not in table]
    if unknown:
        raise CardioError(f"pretrain.side_features: unknown kind(s) {unknown}; use any of {sorted(table)}")
    return [n for k in kinds for n in table[k]]


def rr_features(rpeaks: np.ndarray) -> np.ndarray:
    """(n, 5) log RR ratios of every beat: pre, post and local RR over the record's median RR, pre/local, pre/post.

    The first and last beat borrow their missing interval from their neighbour.
    """
    r = np.asarray(rpeaks, dtype=np.float64)
    if len(r) < 3 or np.any(np.diff(r) <= 0):
        raise CardioError(f"RR features need at least 3 increasing R peaks, got {len(r)}")
    d = np.diff(r)
    pre = np.concatenate([d[:1], d])
    post = np.concatenate([d, d[-1:]])
    typical = np.median(d)
    csum = np.concatenate([[0.0], np.cumsum(pre)])
    i = np.arange(len(pre))
    lo = np.maximum(0, i - LOCAL_BEATS + 1)
    local = (csum[i + 1] - csum[lo]) / (i + 1 - lo)
    return np.stack([np.log(pre / typical), np.log(post / typical), np.log(local / typical),
                     np.log(pre / local), np.log(pre / post)], axis=1).astype(np.float32)


def dechazal_rr_features(rpeaks: np.ndarray, fs: float) -> np.ndarray:
    """(n, 4) pre-RR, post-RR, average RR (+-5 min) and local RR (+-10 beats) of every beat, each over the
    record's mean RR. The first and last beat borrow their missing interval from their neighbour."""
    r = np.asarray(rpeaks, dtype=np.float64)
    if len(r) < 3 or np.any(np.diff(r) <= 0):
        raise CardioError(f"RR features need at least 3 increasing R peaks, got {len(r)}")
    d = np.diff(r)
    pre = np.concatenate([d[:1], d])
    post = np.concatenate([d, d[-1:]])
    csum = np.concatenate([[0.0], np.cumsum(pre)])
    i = np.arange(len(pre))

    def window_mean(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:  # mean of pre[lo:hi] for every beat
        return (csum[hi] - csum[lo]) / (hi - lo)

    half = AVERAGE_SECONDS * float(fs)
    average = window_mean(np.searchsorted(r, r - half), np.searchsorted(r, r + half, side="right"))
    local = window_mean(np.maximum(0, i - LOCAL_HALF_BEATS), np.minimum(len(pre), i + LOCAL_HALF_BEATS + 1))
    mean_rr = d.mean()
    return (np.stack([pre, post, average, local], axis=1) / mean_rr).astype(np.float32)


def shape_features(filtered: np.ndarray, rpeaks: np.ndarray, fs: float) -> np.ndarray:
    """(n, 3) of every beat against the record's median QRS: correlation, log amplitude ratio, log residual norm.

    `filtered` is the high-passed lead; windows are a fixed time around each R peak, so a
    premature beat is not stretched as its RR-scaled beat window is.
    """
    x = np.asarray(filtered, dtype=np.float64)
    before, after = int(round(QRS_WINDOW[0] * fs)), int(round(QRS_WINDOW[1] * fs))
    if len(x) < before + after + 1:
        raise CardioError(f"a lead of {len(x)} samples is shorter than one QRS window ({before + after} samples)")
    at = np.clip(np.asarray(rpeaks, dtype=np.int64), before, len(x) - after - 1)
    w = x[at[:, None] + np.arange(-before, after)[None, :]]
    w = w - np.median(w, axis=1, keepdims=True)
    template = np.median(w, axis=0)
    wc = w - w.mean(axis=1, keepdims=True)
    tc = template - template.mean()
    corr = wc @ tc / (np.linalg.norm(wc, axis=1) * np.linalg.norm(tc) + 1e-12)
    amplitude = np.log((np.ptp(w, axis=1) + 1e-6) / (np.ptp(template) + 1e-6))
    residual = np.log(np.linalg.norm(w - template, axis=1) / (np.linalg.norm(template) + 1e-12) + 1e-3)
    return np.stack([corr, amplitude, residual], axis=1).astype(np.float32)


def side_features(filtered: np.ndarray, rpeaks: np.ndarray, fs: float,
                  kinds: list[str] | tuple[str, ...]) -> np.ndarray:
    """(n beats, len(names(kinds))) side features of every R peak of one record."""
    names(kinds)
    parts = {"rr": lambda: rr_features(rpeaks), "shape": lambda: shape_features(filtered, rpeaks, fs),
             "dechazal_rr": lambda: dechazal_rr_features(rpeaks, fs)}
    cols = [parts[k]() for k in kinds]
    return np.concatenate(cols, axis=1) if cols else np.zeros((len(rpeaks), 0), np.float32)
