"""What a gated perfusion SPECT, or a phase polar map made from one, can hold (issue 55's signal plausibility):
counts, gates in their cycle's order, a phase in degrees (the voxel's size is dicom_io's header check). Each failure
is one line naming the file; cohort.load_record runs them on every record a run or `cardio validate` reads, and
fingerprint gives cardio_imaging.same_image what a scan shows, so that one scan under two patients is found by content.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter, zoom

from cardio import CardioError
from cardio_spect_polar.dicom_io import GatedVolume

# A reconstructed gated SPECT's brightest voxel holds tens to thousands of counts (the real NM sample's: 141); a peak
# this low is a normalised export (values 0..1), whose noise no longer says how many photons were counted.
MIN_PEAK_COUNTS = 2.0
# Successive gates of one cycle look more alike than gates further apart (the heart moves a little from one to the
# next); noise alone brings the ratio to 1, never above it. 200 synthetic volumes in order: at most 0.73 (smoothed at
# 2 voxels); with their gates shuffled, above 1.05 for about a third, as the damaged cohort's 1 5 2 7 3 8 4 6 (1.22).
GATE_ORDER_RATIO = 1.05
# A phase polar map is in degrees of the R-R interval (the normal LV contracts near 100-150 degrees): a whole map
# within 0..2 pi is in radians.
RADIANS_MAX = 2 * np.pi + 1e-6


def check_volume(vol: GatedVolume) -> None:
    """A volume's counts and its gates' order; CardioError naming its source otherwise."""
    peak = float(vol.data.max())
    if peak < MIN_PEAK_COUNTS:
        raise CardioError(f"{vol.source}: its counts peak at {peak:.3g}: a perfusion SPECT counts tens to thousands "
                          "of photons in its brightest voxel; a normalised export (values 0..1)? export the counts")
    ratio = gate_order_ratio(vol.data)
    if vol.n_gates >= 4 and ratio > GATE_ORDER_RATIO:
        raise CardioError(f"{vol.source}: its gates are out of order: successive gates differ more than gates two or "
                          f"more apart ({ratio:.2f} times as much), which no cardiac cycle does; export the gates in "
                          "time-slot order")


def gate_order_ratio(data: np.ndarray) -> float:
    """Mean difference of successive gates (cyclic) over that of gates two or more apart, each gate smoothed."""
    gates = [gaussian_filter(g.astype(np.float32), 2.0) for g in data]
    n = len(gates)
    near: list[float] = []
    far: list[float] = []
    for i in range(n):
        for j in range(i + 1, n):  # pair by pair: 16 gates of a 128-pixel matrix are a million voxels each
            (near if min(j - i, n - j + i) == 1 else far).append(float(np.abs(gates[i] - gates[j]).mean()))
    return float(np.mean(near) / np.mean(far)) if far and np.mean(far) > 0 else 0.0


def check_phase_map(arr: np.ndarray, source: str) -> None:
    """A phase polar map in degrees: a whole map within 0..2 pi is in radians."""
    if arr.min() >= 0 and arr.max() <= RADIANS_MAX:
        raise CardioError(f"{source}: its phases span {arr.min():.3g}..{arr.max():.3g}: a phase polar map is in "
                          "degrees of the R-R interval (0-360); radians? multiply by 180/pi")


def fingerprint(vol: GatedVolume) -> np.ndarray:
    """What the scan shows, for cardio_imaging.same_image: its gates' summed counts on an 8 x 12 x 12 grid, each gate's
    share of the counts, all standardised (a rescaled or re-typed export gives the same)."""
    summed = vol.data.sum(axis=0)
    coarse = zoom(summed, [t / s for t, s in zip((8, 12, 12), summed.shape)], order=1)
    gates = vol.data.reshape(vol.n_gates, -1).sum(axis=1)
    parts = [coarse.ravel(), gates / gates.sum()]
    return np.concatenate([(p - p.mean()) / (p.std() + 1e-12) for p in parts])
