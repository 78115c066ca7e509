"""A synthetic gated SPECT of a beating left ventricle with a known phase map.

Geometry: the LV is a half prolate ellipsoid (endocardial and epicardial surfaces centred on the
base plane, long axis along the slice axis, apex at slice ~2), sized from the end-diastolic
volume. Every point of the myocardium has a polar-grid position (u = fraction of the apex-to-base
length, theta = angle on the short-axis slice) and so a phase from the true phase map
(phase.RINGS x phase.SECTORS, the grid of phase.py). Its wall thickens over the R-R interval
with the waveform w(t - phase/360) (a first plus a 0.2 second harmonic, symmetric about its
maximum, so the first-harmonic phase and the time of maximal thickening both equal the true
phase); the endocardium moves in by `shrink * amplitude * w`, where `shrink` follows from the
ejection fraction. Scar lowers uptake and thickening. Each gate (sampled at the centre of its
time slot) is rendered with anti-aliased edges, blurred to the camera resolution (Gaussian,
`fwhm_mm`), so that thickening brightens the wall through partial volume, scaled to `counts`,
given Poisson noise and a light post-reconstruction smoothing.

Activation patterns (phase = base_phase + dyssynchrony * f(u, theta) + small heterogeneity,
f normalised to 0..1): "lbbb" (broad, septum earliest, latest at the posterolateral base),
"focal" (a Gaussian late zone around (late_angle, late_position)), "random" (a smooth random
field), "synchronous" (heterogeneity only). Positions are compared on a hemisphere (apex at the
pole, base at the equator), which keeps patterns smooth through the apex.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from numpy.typing import ArrayLike
from scipy.ndimage import gaussian_filter

from cardio import CardioError
from cardio_imaging.aha17 import polar_grid
from cardio_spect_polar.phase import RINGS, SECTORS, phase_statistics

PATTERNS = ("lbbb", "focal", "random", "synchronous")
LATERAL_DEG = 345.0  # posterolateral free wall: the usual latest site in LBBB and LV lead target
WAVE_BETA = 0.2  # second-harmonic weight of the thickening waveform


@dataclass
class Phantom:
    volume: np.ndarray  # (gates, slices, rows, cols) uint16 counts
    true_phase: np.ndarray  # (RINGS, SECTORS) degrees, first-harmonic phase of wall thickening
    true_psd: float
    true_pbw: float
    true_peak: float
    scar_map: np.ndarray  # (RINGS, SECTORS) 0..1 scar weight
    params: dict = field(default_factory=dict)


def _thickening_wave(t: np.ndarray) -> np.ndarray:
    """Normalised thickening 0..1 over the cycle, maximal at t = 0 (t in cycles)."""
    c = np.cos(2 * np.pi * t)
    g = c + WAVE_BETA * (2 * c * c - 1)  # cos(2x) = 2 cos(x)^2 - 1: one cosine instead of two
    lo, hi = -1.0 + WAVE_BETA, 1.0 + WAVE_BETA  # extremes of g (the minimum is at t = 0.5 while beta <= 0.25)
    return (g - lo) / (hi - lo)


def _unit_vectors(u: ArrayLike, theta_deg: ArrayLike) -> np.ndarray:
    psi = np.asarray(u) * np.pi / 2
    th = np.radians(theta_deg)
    return np.stack([np.sin(psi) * np.cos(th), np.sin(psi) * np.sin(th), np.cos(psi) * np.ones_like(th)], axis=-1)


def _grid_vectors(rings: int = RINGS, sectors: int = SECTORS) -> np.ndarray:
    u, theta = polar_grid(rings, sectors)
    return _unit_vectors(u[:, None], theta[None, :])  # (rings, sectors, 3)


def _arc(vectors: np.ndarray, centre: np.ndarray) -> np.ndarray:
    return np.arccos(np.clip(vectors @ centre, -1.0, 1.0))


def _smooth_field(rng: np.random.Generator, bumps: int, width: float) -> np.ndarray:
    """A smooth random field on the polar grid with zero mean and unit SD."""
    vec = _grid_vectors()
    field_ = np.zeros(vec.shape[:2])
    for _ in range(bumps):
        c = _unit_vectors(rng.uniform(0, 1), rng.uniform(0, 360))
        field_ += rng.normal() * np.exp(-0.5 * (_arc(vec, c) / width) ** 2)
    sd = field_.std()
    return (field_ - field_.mean()) / sd if sd > 0 else field_


def _extracardiac_blob(xx: np.ndarray, yy: np.ndarray, z: np.ndarray, z_base: float, a_epi: float, c_epi: float,
                       gap_mm: float, blur: tuple[float, float, float]) -> np.ndarray:
    """Liver/gut uptake: a solid ellipsoid (radii 35 x 35 mm in plane, 45 mm along the slices) below the inferior
    wall, towards the septum (the patient's right), beside the mid-to-basal LV; blurred like the myocardium
    (blur: slice mm, pixel mm, Gaussian sigma mm) and scaled to a peak of 1."""
    angle = np.radians(250.0)  # inferoseptal, counter-clockwise from the lateral wall (270 = inferior)
    radius, half_length = 35.0, 45.0
    dist = a_epi + gap_mm + radius
    cx, cy = dist * np.cos(angle), -dist * np.sin(angle)  # mm from the LV axis; image rows grow inferiorly
    cz = z_base - 0.35 * c_epi
    rho = ((xx - cx) / radius) ** 2 + ((yy - cy) / radius) ** 2 + ((z[:, None, None] - cz) / half_length) ** 2
    slice_mm, pixel_mm, sig_mm = blur
    blob = gaussian_filter((rho <= 1).astype(np.float32), sigma=(sig_mm / slice_mm, sig_mm / pixel_mm,
                                                                  sig_mm / pixel_mm))
    return blob / blob.max()


def activation_pattern(pattern: str, rng: np.random.Generator, *, late_angle: float | None = None,
                       late_position: float | None = None, width: float | None = None) -> tuple[np.ndarray, dict]:
    """f(u, theta) in 0..1 on the polar grid (1 = latest) and the parameters drawn."""
    vec = _grid_vectors()
    if pattern == "synchronous":
        return np.zeros(vec.shape[:2]), {"late_angle": np.nan, "late_position": np.nan, "width": np.nan}
    if pattern == "lbbb":
        late_angle = LATERAL_DEG + rng.normal(0, 10) if late_angle is None else late_angle
        late_position = 0.8 if late_position is None else late_position
        width = 1.3 if width is None else width
    elif pattern == "focal":
        late_angle = rng.uniform(0, 360) if late_angle is None else late_angle
        late_position = rng.uniform(0.3, 0.9) if late_position is None else late_position
        width = rng.uniform(0.55, 1.1) if width is None else width
    elif pattern == "random":
        f = _smooth_field(rng, 5, 0.6)
        f = (f - f.min()) / (f.max() - f.min())
        i = np.unravel_index(np.argmax(f), f.shape)
        u, th = polar_grid(RINGS, SECTORS)
        return f, {"late_angle": float(th[i[1]]), "late_position": float(u[i[0]]), "width": np.nan}
    else:
        raise CardioError(f"unknown activation pattern {pattern!r}; use one of {PATTERNS}")
    centre = _unit_vectors(late_position, late_angle)
    f = np.exp(-0.5 * (_arc(vec, centre) / width) ** 2)
    f = (f - f.min()) / (f.max() - f.min())
    return f, {"late_angle": float(late_angle % 360), "late_position": float(late_position), "width": float(width)}


def scar_pattern(burden_pct: float, rng: np.random.Generator, *, angle: float | None = None,
                 position: float | None = None) -> tuple[np.ndarray, dict]:
    """A smooth scar cap (0..1) covering about burden_pct % of the LV (area-weighted)."""
    vec = _grid_vectors()
    if burden_pct <= 0:
        return np.zeros(vec.shape[:2]), {"scar_angle": np.nan, "scar_position": np.nan}
    angle = rng.uniform(0, 360) if angle is None else angle
    position = rng.uniform(0.2, 0.8) if position is None else position
    centre = _unit_vectors(position, angle)
    arc = _arc(vec, centre)
    u, _ = polar_grid(RINGS, SECTORS)
    area = np.sin(u * np.pi / 2)[:, None] * np.ones(vec.shape[:2])  # hemisphere area element per cell
    target = burden_pct / 100.0
    # radius of the cap whose area-weighted coverage (edges half-weighted) matches the burden
    lo, hi = 0.0, np.pi
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        cover = (area * (1 / (1 + np.exp((arc - mid) / 0.08)))).sum() / area.sum()
        lo, hi = (mid, hi) if cover < target else (lo, mid)
    scar = 1 / (1 + np.exp((arc - 0.5 * (lo + hi)) / 0.08))
    return scar, {"scar_angle": float(angle % 360), "scar_position": float(position)}


@dataclass(frozen=True)
class _Shape:
    """The LV's half prolate ellipsoids (mm), the shrink giving the EF, and where apex and base sit (mm)."""

    a_endo: float
    c_endo: float
    a_epi: float
    c_epi: float
    shrink: float
    z_apex: float
    z_base: float


@dataclass(frozen=True)
class _Voxels:
    """The image grid (mm from the LV axis) and the voxels near the myocardium, flat: where the wall moves."""

    z: np.ndarray  # (S,) slice centres
    yy: np.ndarray  # (S, H, 1) rows, tilted with the long axis
    xx: np.ndarray  # (S, 1, W) cols
    shape: tuple[int, int, int]  # (S, H, W)
    idx: np.ndarray  # flat indices of the voxels near the myocardium
    r: np.ndarray  # their distance from the long axis (float32)
    depth: np.ndarray  # their depth below the base plane (float32)
    u: np.ndarray  # their polar-grid position: fraction of the apex-to-base length
    theta: np.ndarray  # and angle (degrees; anterior = up, lateral = right)


def _lv_shape(rng: np.random.Generator, edv_ml: float, lvef: float, slices: int, size: int, pixel_mm: float,
              slice_mm: float, fwhm_mm: float) -> _Shape:
    """LV size from EDV (half prolate ellipsoid 2/3 pi a^2 c with c = k a); an error when it does not fit."""
    k = rng.uniform(1.6, 1.9)
    a_endo = (3 * edv_ml * 1000.0 / (2 * np.pi * k)) ** (1 / 3)
    c_endo = k * a_endo
    wall = rng.uniform(8.0, 10.0)
    a_epi, c_epi = a_endo + wall, c_endo + 0.9 * wall
    shrink = 1.0 - (1.0 - lvef / 100.0) ** (1 / 3)  # uniform shrink giving the EF
    z_apex = rng.uniform(1.2, 2.2) * slice_mm
    z_base = z_apex + c_epi
    if z_base > (slices - 1) * slice_mm:
        raise CardioError(f"phantom LV ({c_epi:.0f} mm long) does not fit in {slices} slices of {slice_mm} mm")
    if a_epi + 2 * fwhm_mm > size / 2 * pixel_mm:
        raise CardioError(f"phantom LV (radius {a_epi:.0f} mm) does not fit in {size} pixels of {pixel_mm} mm")
    return _Shape(a_endo, c_endo, a_epi, c_epi, shrink, z_apex, z_base)


def _voxels_near_lv(rng: np.random.Generator, lv: _Shape, slices: int, size: int, pixel_mm: float,
                    slice_mm: float) -> _Voxels:
    """The grid around an LV slightly off centre and tilted, and the voxels near its myocardium."""
    centre = (size - 1) / 2 + rng.normal(0, 1.0, 2)
    tilt = rng.normal(0, 0.04, 2)  # long axis slightly off the slice normal
    z = (np.arange(slices) + 0.5) * slice_mm
    yy = (np.arange(size)[None, :, None] - centre[0] - tilt[0] * (z[:, None, None] - lv.z_base) / pixel_mm) * pixel_mm
    xx = (np.arange(size)[None, None, :] - centre[1] - tilt[1] * (z[:, None, None] - lv.z_base) / pixel_mm) * pixel_mm
    r = np.sqrt(xx ** 2 + yy ** 2)  # (S, H, W) mm
    depth = np.broadcast_to((lv.z_base - z)[:, None, None], r.shape)  # >0 below the base plane
    # Only voxels near the myocardium move; evaluate the beating wall there (flat, float32).
    near = (np.sqrt((r / (lv.a_epi + 2 * pixel_mm)) ** 2 + (depth / (lv.c_epi + 2 * slice_mm)) ** 2) < 1) \
        & (depth > -slice_mm)
    idx = np.flatnonzero(near)
    r_v = r.ravel()[idx].astype(np.float32)
    d_v = depth.ravel()[idx].astype(np.float32)
    y_v = np.broadcast_to(yy, r.shape).ravel()[idx]
    x_v = np.broadcast_to(xx, r.shape).ravel()[idx]
    theta = np.degrees(np.arctan2(-y_v, x_v)) % 360.0  # anterior = up, lateral = right
    u = np.clip((lv.z_base - d_v - lv.z_apex) / (lv.z_base - lv.z_apex), 0, 1)
    return _Voxels(z, yy, xx, r.shape, idx, r_v, d_v, u, theta)


def _polar_lookup(u: np.ndarray, theta: np.ndarray) -> Callable[..., np.ndarray]:
    """lookup(grid, circular=False): polar-grid values at every voxel, bilinear in (ring, sector) with
    wrap-around in angle (a circular grid, in degrees, is interpolated on the unit circle)."""
    ring_c = np.clip(u * RINGS - 0.5, 0, RINGS - 1)
    sec_c = theta / 360.0 * SECTORS - 0.5
    r0 = np.minimum(np.floor(ring_c).astype(int), RINGS - 2)
    fr = ring_c - r0
    s0 = np.floor(sec_c).astype(int)
    fs = sec_c - s0
    s0m, s1m = s0 % SECTORS, (s0 + 1) % SECTORS

    def lookup(grid, circular=False):
        if circular:
            grid = np.exp(1j * np.radians(grid))
        v = ((grid[r0, s0m] * (1 - fs) + grid[r0, s1m] * fs) * (1 - fr)
             + (grid[r0 + 1, s0m] * (1 - fs) + grid[r0 + 1, s1m] * fs) * fr)
        v = np.degrees(np.angle(v)) % 360.0 if circular else v
        return v.astype(np.float32)

    return lookup


def _beating_activity(lv: _Shape, vox: _Voxels, true_phase: np.ndarray, uptake: np.ndarray, amplitude: np.ndarray,
                      gates: int, pixel_mm: float, slice_mm: float) -> np.ndarray:
    """Activity (gates, S, H, W) of the body, the blood pool and the wall, thickening with its phase, sampled
    at the centre of each gate's time slot, with anti-aliased edges."""
    lookup = _polar_lookup(vox.u, vox.theta)
    phase_vox, up_vox, amp_vox = lookup(true_phase, circular=True), lookup(uptake), lookup(amplitude)
    t = ((np.arange(gates) + 0.5) / gates).astype(np.float32)  # gate centres
    w = _thickening_wave(t[:, None] - phase_vox[None] / 360.0) * amp_vox[None]  # (G, voxels)
    a_n = lv.a_endo * (1 - lv.shrink * w)
    c_n = lv.c_endo * (1 - lv.shrink * w)
    a_e = lv.a_epi - 0.2 * lv.a_endo * lv.shrink * w
    edge = pixel_mm  # anti-aliasing ramp width
    r_v, d_v = vox.r, vox.depth
    rho_e = np.sqrt((r_v / a_e) ** 2 + (d_v / lv.c_epi) ** 2)
    rho_n = np.sqrt((r_v / a_n) ** 2 + (d_v / c_n) ** 2)
    inside_epi = np.clip(0.5 + (1 - rho_e) * a_e / edge, 0, 1)
    outside_endo = np.clip(0.5 + (rho_n - 1) * a_n / edge, 0, 1)
    below_base = np.clip(0.5 + d_v / slice_mm, 0, 1)
    myo = inside_epi * outside_endo * below_base * up_vox
    cavity = inside_epi * (1 - outside_endo) * below_base
    n_vox = int(np.prod(vox.shape))
    activity = np.full((gates, n_vox), 0.04, dtype=np.float32)  # body background
    activity[:, vox.idx] += myo + 0.08 * cavity  # myocardium and blood pool
    return activity.reshape(gates, *vox.shape)


def _camera(activity: np.ndarray, rng: np.random.Generator, lv: _Shape, vox: _Voxels, *, pixel_mm: float,
            slice_mm: float, fwhm_mm: float, counts: float, noise: bool, post_filter_px: float, extracardiac: float,
            extracardiac_gap_mm: float) -> np.ndarray:
    """The camera's view of the activity: blurred to its resolution, extracardiac uptake added, scaled to
    `counts`, Poisson noise and a light post-reconstruction smoothing; uint16 counts."""
    sig_mm = fwhm_mm / (2 * np.sqrt(2 * np.log(2)))
    activity = gaussian_filter(activity, sigma=(0, sig_mm / slice_mm, sig_mm / pixel_mm, sig_mm / pixel_mm))
    scale = counts / activity.mean(axis=0).max()  # the myocardium's peak sets the counts, extracardiac or not
    if extracardiac > 0:  # as hot as `extracardiac` times the blurred myocardium's peak
        blob = _extracardiac_blob(vox.xx, vox.yy, vox.z, lv.z_base, lv.a_epi, lv.c_epi, extracardiac_gap_mm,
                                  (slice_mm, pixel_mm, sig_mm))
        activity += extracardiac * activity.mean(axis=0).max() * blob[None]
    activity *= scale
    if noise:
        activity = rng.poisson(activity).astype(np.float32)
        if post_filter_px > 0:
            activity = gaussian_filter(activity, sigma=(0, post_filter_px * pixel_mm / slice_mm,
                                                        post_filter_px, post_filter_px))
    return np.clip(np.rint(activity), 0, 65535).astype(np.uint16)


def make_phantom(seed: int | np.random.Generator = 0, *, pattern: str = "lbbb", dyssynchrony: float = 90.0,
                 base_phase: float = 135.0, heterogeneity: float = 5.0, late_angle: float | None = None,
                 late_position: float | None = None, width: float | None = None, scar_burden: float = 0.0,
                 scar_angle: float | None = None, scar_position: float | None = None, edv_ml: float = 200.0,
                 lvef: float = 35.0, gates: int = 8, slices: int = 24, size: int = 48, pixel_mm: float = 5.0,
                 slice_mm: float = 6.0, fwhm_mm: float = 14.0, counts: float = 80.0, noise: bool = True,
                 post_filter_px: float = 0.6, extracardiac: float = 0.0, extracardiac_gap_mm: float = 10.0) -> Phantom:
    """One gated short-axis volume (gates, slices, size, size) and its true phase map.

    `extracardiac` > 0 plants liver/gut uptake below the inferior wall (a static blob, as hot as `extracardiac`
    times the hottest myocardium after blurring, `extracardiac_gap_mm` from the epicardium at its closest)."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if gates < 2:
        raise CardioError(f"a gated phantom needs >= 2 gates, got {gates}")
    f, pattern_params = activation_pattern(pattern, rng, late_angle=late_angle, late_position=late_position,
                                           width=width)
    hetero = _smooth_field(rng, 8, 0.45) * heterogeneity
    true_phase = (base_phase + dyssynchrony * f + hetero) % 360.0
    scar, scar_params = scar_pattern(scar_burden, rng, angle=scar_angle, position=scar_position)
    uptake = 1.0 - 0.6 * scar  # scar: low counts ...
    amplitude = 1.0 - 0.85 * scar  # ... and little thickening
    lv = _lv_shape(rng, edv_ml, lvef, slices, size, pixel_mm, slice_mm, fwhm_mm)
    vox = _voxels_near_lv(rng, lv, slices, size, pixel_mm, slice_mm)
    activity = _beating_activity(lv, vox, true_phase, uptake, amplitude, gates, pixel_mm, slice_mm)
    volume = _camera(activity, rng, lv, vox, pixel_mm=pixel_mm, slice_mm=slice_mm, fwhm_mm=fwhm_mm, counts=counts,
                     noise=noise, post_filter_px=post_filter_px, extracardiac=extracardiac,
                     extracardiac_gap_mm=extracardiac_gap_mm)
    st = phase_statistics(true_phase)
    params = {"pattern": pattern, "dyssynchrony": float(dyssynchrony), "base_phase": float(base_phase),
              "heterogeneity": float(heterogeneity), **pattern_params, "scar_burden": float(scar_burden),
              **scar_params, "edv_ml": float(edv_ml), "lvef": float(lvef), "gates": gates, "slices": slices,
              "size": size, "pixel_mm": pixel_mm, "slice_mm": slice_mm, "fwhm_mm": fwhm_mm, "counts": counts,
              **({"extracardiac": float(extracardiac), "extracardiac_gap_mm": float(extracardiac_gap_mm)}
                 if extracardiac > 0 else {}),
              "apex_slice": float(lv.z_apex / slice_mm - 0.5), "base_slice": float(lv.z_base / slice_mm - 0.5)}
    return Phantom(volume=volume, true_phase=true_phase, true_psd=float(st["psd"]), true_pbw=float(st["pbw"]),
                   true_peak=float(st["peak"]), scar_map=scar, params=params)
