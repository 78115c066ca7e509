"""A beat relative to its own record: RR-interval ratios and likeness to the record's median QRS.

Inter-patient beat classification fails mostly on morphology that is normal for one patient and
ectopic for another. De Chazal et al. (2004) and most inter-patient methods since add the RR
intervals, normalized by the record's own rhythm; the same idea applied to shape compares each
QRS with the record's median QRS, and the "two_lead" kind compares QRS, T and P of both MIT-BIH
channels with the record's median beat. These side features join the pooled image features of the
pretraining network only (resnet.SpectrogramResNet n_side), and feed the fused protocol's side models
(side_models.fit_side_models); the transferred backbone is image-only.
No library computes these per-record normalizations, so they are written here, vectorized.
"""
from __future__ import annotations

import numpy as np

from cardio import CardioError

RR_NAMES = ("log_pre_rr", "log_post_rr", "log_local_rr", "log_pre_over_local", "log_pre_over_post")
SHAPE_NAMES = ("qrs_corr", "log_qrs_amplitude", "log_qrs_residual")
DECHAZAL_NAMES = ("pre_rr_norm", "post_rr_norm", "average_rr_norm", "local_rr_norm")
#: Per lead of the "two_lead" kind, each against the record's median beat on that lead (or its neighbours').
MORPHOLOGY_NAMES = ("qrs_corr", "t_corr", "p_corr", "log_qrs_residual", "log_t_residual", "log_qrs_amplitude",
                    "log_qrs_width_ratio", "log_qrs_width", "qrs_area_change", "t_area_change", "neighbour_qrs_corr",
                    "log_t_noise")
TWO_LEAD_NAMES = tuple(f"ch{c}_{n}" for c in (0, 1) for n in MORPHOLOGY_NAMES)
#: Beats averaged for the local RR (the beat itself and the ones before it), as de Chazal et al.
LOCAL_BEATS = 10
#: de Chazal et al. 2004: the average RR is the mean over +-5 minutes around the beat, the local RR the mean
#: over the +-10 beats around it; here each is divided by the record's mean RR (as Mondejar-Guerra et al. 2019).
AVERAGE_SECONDS = 300.0
LOCAL_HALF_BEATS = 10
#: QRS window around the R peak for the shape features (s): before, after.
QRS_WINDOW = (0.10, 0.15)
#: Windows of the morphology features (s from the R peak): the beat, its P, QRS and T parts.
BEAT_WINDOW, P_WINDOW, T_WINDOW = (-0.25, 0.45), (-0.25, -0.08), (0.15, 0.45)
#: Beats on either side whose median QRS is the "neighbours" template (the beat itself left out).
NEIGHBOURS = 4


def names(kinds: list[str] | tuple[str, ...]) -> list[str]:
    """Feature names, in column order, of the side feature kinds ('rr', 'shape')."""
    table = {"rr": RR_NAMES, "shape": SHAPE_NAMES, "dechazal_rr": DECHAZAL_NAMES, "two_lead": TWO_LEAD_NAMES}
    unknown = [k for k in kinds if k not in table]
    if unknown:
        raise CardioError(f"ecg_transfer.pretrain.side_features: unknown kind(s) {unknown}; use any of {sorted(table)}")
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


def _corr(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Row-wise Pearson correlation of x (n, k) with t (k,) or (n, k)."""
    xc = x - x.mean(axis=-1, keepdims=True)
    tc = t - t.mean(axis=-1, keepdims=True)
    return (xc * tc).sum(axis=-1) / (np.linalg.norm(xc, axis=-1) * np.linalg.norm(tc, axis=-1) + 1e-12)


def _qrs_width(w: np.ndarray, fs: float) -> np.ndarray:
    """Seconds between the first and last sample whose slope exceeds 20% of the row's steepest slope."""
    d = np.abs(np.diff(w, axis=-1))
    above = d > 0.2 * d.max(axis=-1, keepdims=True)
    first, last = above.argmax(axis=-1), above.shape[-1] - 1 - above[..., ::-1].argmax(axis=-1)
    return (last - first + 1) / fs


def morphology_features(filtered: np.ndarray, rpeaks: np.ndarray, fs: float) -> np.ndarray:
    """(n, 12) MORPHOLOGY_NAMES of every beat of one lead against the record's median beat on that lead.

    A ventricular beat is unlike the patient's own dominant beat in QRS and T, whatever the dominant
    beat looks like (a bundle-branch block, a lead other than MLII); its neighbours' median QRS
    separates a noisy stretch, where all beats change together, from a single ectopic beat.
    """
    x = np.asarray(filtered, dtype=np.float64)
    start, stop = (int(round(s * fs)) for s in BEAT_WINDOW)
    if len(x) < stop - start + 1:
        raise CardioError(f"a lead of {len(x)} samples is shorter than one beat window ({stop - start} samples)")
    at = np.clip(np.asarray(rpeaks, dtype=np.int64), -start, len(x) - stop - 1)
    w = x[at[:, None] + np.arange(start, stop)[None, :]]
    part = {k: slice(int(round(a * fs)) - start, int(round(b * fs)) - start)
            for k, (a, b) in {"p": P_WINDOW, "t": T_WINDOW, "qrs": (-QRS_WINDOW[0], QRS_WINDOW[1])}.items()}
    w = w - np.median(w[:, part["p"]], axis=1, keepdims=True)  # the P-R stretch as each beat's baseline
    tm = np.median(w, axis=0)
    q, t = part["qrs"], part["t"]
    scale = np.linalg.norm(tm[q]) + 1e-9
    near = np.clip(np.arange(len(w))[:, None] + np.r_[-NEIGHBOURS:0, 1:NEIGHBOURS + 1][None, :], 0, len(w) - 1)
    noise = np.abs(np.diff(w[:, t], 2, axis=1)).mean(axis=1)
    width = _qrs_width(w[:, q], fs)
    return np.stack([
        _corr(w[:, q], tm[q]), _corr(w[:, t], tm[t]), _corr(w[:, part["p"]], tm[part["p"]]),
        np.log(np.linalg.norm(w[:, q] - tm[q], axis=1) / scale + 1e-3),
        np.log(np.linalg.norm(w[:, t] - tm[t], axis=1) / scale + 1e-3),
        np.log(np.ptp(w[:, q], axis=1) / (np.ptp(tm[q]) + 1e-6) + 1e-3),
        np.log(width / _qrs_width(tm[q], fs)), np.log(width),
        (w[:, q].sum(axis=1) - tm[q].sum()) / (np.abs(tm[q]).sum() + 1e-9),
        (w[:, t].sum(axis=1) - tm[t].sum()) / (np.abs(tm[q]).sum() + 1e-9),
        _corr(w[:, q], np.median(w[:, q][near], axis=1)),
        np.log(noise / (np.median(noise) + 1e-12) + 1e-3),
    ], axis=1).astype(np.float32)


def side_features(filtered: np.ndarray, rpeaks: np.ndarray, fs: float, kinds: list[str] | tuple[str, ...],
                  channels: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """(n beats, len(names(kinds))) side features of every R peak of one record.

    `channels`: both high-passed channels of the record, which the "two_lead" kind needs.
    """
    names(kinds)
    if "two_lead" in kinds and (channels is None or len(channels) != 2):
        raise CardioError("side feature kind 'two_lead' needs both channels of the record")
    pair = channels or ()  # both channels when two_lead is asked for (checked above)
    parts = {"rr": lambda: rr_features(rpeaks), "shape": lambda: shape_features(filtered, rpeaks, fs),
             "dechazal_rr": lambda: dechazal_rr_features(rpeaks, fs),
             "two_lead": lambda: np.concatenate([morphology_features(c, rpeaks, fs) for c in pair], axis=1)}
    cols = [parts[k]() for k in kinds]
    return np.concatenate(cols, axis=1) if cols else np.zeros((len(rpeaks), 0), np.float32)
