"""Finding the left ventricle among extracardiac uptake (liver, gut) before the phase analysis samples it.

Real MPI often shows liver or gut activity beside the inferior wall, as hot as the myocardium or hotter. The
phase analysis finds the LV as the bright voxels of each slice and samples each ray at its count maximum: a
blob beside the wall pulls the LV axis towards it, lengthens the rays and puts the maxima of the inferior
rays in the blob. Here the bright voxels of the time-averaged volume are split into 3-D connected components
(scipy.ndimage.label) at rising thresholds. The LV is the component that encloses a cavity (a hole in its
short-axis slices: binary_fill_holes) in the most slices; a component whose centroid lies outside the LV's
outer radius is extracardiac. Where the blob touches the wall at the lowest threshold, a higher one
separates them. The extracardiac components (grown by a margin, never into the LV) are zeroed; a volume
with nothing beside its LV is left as it is. Uptake that touches the wall with no gap at all stays joined
to the LV at every threshold and is not removed (benchmarks/spect_phase_phantom.py measures both).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

THRESHOLDS = (0.5, 0.6, 0.7, 0.8)  # fractions of the volume's maximum, lowest first
MARGIN_PX = 2  # extracardiac components are grown by this many pixels in plane (their blurred edge)
MIN_VOXELS = 8  # smaller components are noise


def _hole_slices(component: np.ndarray) -> int:
    """In how many short-axis slices the component encloses a hole (the LV cavity)."""
    return sum(int((ndimage.binary_fill_holes(sl) & ~sl).any()) for sl in component if sl.any())


def _radius_of(component: np.ndarray) -> tuple[np.ndarray, float]:
    """The component's in-plane centre (row, col) and its outer radius (pixels)."""
    _, rows, cols = np.nonzero(component)
    centre = np.array([rows.mean(), cols.mean()])
    return centre, float(np.sqrt((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2).max())


def _in_plane() -> np.ndarray:
    structure = ndimage.generate_binary_structure(3, 1)
    structure[0] = structure[2] = False
    return structure


def _split(mean: np.ndarray, threshold: float) -> tuple[np.ndarray | None, list[np.ndarray]]:
    """(the LV component, the extracardiac components) of the voxels at or above `threshold`."""
    labels, n = ndimage.label(mean >= threshold)
    parts = [labels == k for k in range(1, n + 1)]
    parts = [p for p in parts if p.sum() >= MIN_VOXELS]
    holes = [_hole_slices(p) for p in parts]
    if not parts or max(holes) < 2:
        return None, []
    lv = parts[int(np.argmax(holes))]
    centre, radius = _radius_of(lv)
    outside = []
    for p in parts:
        if p is lv:
            continue
        _, rows, cols = np.nonzero(p)
        if np.hypot(rows.mean() - centre[0], cols.mean() - centre[1]) > radius:
            outside.append(p)  # fragments of the LV's own wall lie within its radius and stay
    return lv, outside


def extracardiac_mask(mean: np.ndarray) -> np.ndarray | None:
    """Voxels of extracardiac uptake in a time-averaged volume (slices, rows, cols), or None when none is
    found (one component, or no component with a cavity)."""
    top = float(mean.max())
    if top <= 0:
        return None
    for fraction in THRESHOLDS:
        lv, outside = _split(mean, fraction * top)
        if lv is None or not outside:
            continue
        blob = ndimage.binary_dilation(np.any(outside, axis=0), _in_plane(), iterations=MARGIN_PX)
        return blob & ~ndimage.binary_dilation(lv, _in_plane(), iterations=1)
    return None


def suppress_extracardiac(volume: np.ndarray) -> tuple[np.ndarray, float]:
    """(gates, slices, rows, cols) with extracardiac uptake zeroed, and the fraction of voxels zeroed."""
    mask = extracardiac_mask(volume.mean(axis=0))
    if mask is None:
        return volume, 0.0
    return np.where(mask[None], np.float32(0), volume), float(mask.mean())
