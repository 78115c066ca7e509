"""Phase analysis of gated SPECT MPI (Chen et al., J Nucl Cardiol 2005; 2011), vectorized over patients.

Steps, after the published method of the Emory tools the paper used (never compared with their output:
the plugin README's "Phase analysis and the Emory tools"):
1. maximal-count sampling: in every short-axis slice (apex to base) rays are cast from the LV
   long axis at `sectors` angles; along each ray the myocardial band is the stretch within
   `band_px` of the count maximum of the time-averaged slice, and each gate's count at that ray
   is its maximum within the band (partial volume makes it rise as the wall thickens);
2. the per-slice samples are resampled to `rings` rings spaced evenly between the apex and the
   base (found at half the peak slice count), giving count curves (rings, sectors, gates);
3. the Fourier phase of each curve: with harmonics=1 (systolic) the angle of the first harmonic;
   with harmonics=K>1 the time of the maximum of the K-harmonic reconstruction (harmonics=3 is
   the diastolic variant: the end of thickening, i.e. onset of mechanical relaxation).

Conventions. Polar grid: RINGS x SECTORS = 32 x 64; ring k lies at fraction (k + 0.5) / 32 of the
apex-to-base length (ring 0 = apex, the centre of a bull's-eye); sector j at angle (j + 0.5) *
360 / 64 degrees, counter-clockwise from the lateral wall as seen on a short-axis slice
(0 deg lateral / 3 o'clock, 90 anterior / 12 o'clock, 180 septal / 9 o'clock, 270 inferior).
Phase: degrees in [0, 360) over one R-R interval; gate g is sampled at the centre of its time
slot, (g + 0.5) / G of the interval, so a curve a + A cos(2 pi t - phi) gives back exactly phi.
Histogram: 360 bins of 1 degree. Peak phase: the mode of that histogram after a 9-degree
circular moving average. PSD: population standard deviation of the phases unwrapped into
[peak - 180, peak + 180). PBW (95% bandwidth): the width between the 2.5th and 97.5th
percentiles of the same unwrapped phases, i.e. the central interval holding 95% of the
samples ("95% of the histogram width"). Entropy: Shannon entropy of the 1-degree histogram
divided by log(360), so 0 = all samples in one bin and 1 = uniform. Every grid sample counts
once (no area weighting). Segments: the AHA 17-segment model of cardio_imaging.aha17 on this grid
(apex cap, then apical, mid and basal thirds of the apex-to-base length).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from cardio import CardioError
from cardio_imaging import aha17
from cardio_spect_polar.dicom_io import GatedVolume, check_volume
from cardio_spect_polar.localize import suppress_extracardiac

RINGS = 32
SECTORS = 64
HIST_BINS = 360
MIN_GATES = 8  # fewer frames per R-R interval cannot time contraction (phase analysis is validated on 8 and 16)
PEAK_SMOOTH_DEG = 9


@dataclass
class PhaseResult:
    """Phase analysis of one volume (or one ready phase polar map)."""

    phase_map: np.ndarray  # (rings, sectors) degrees in [0, 360)
    amplitude_map: np.ndarray  # (rings, sectors) first-harmonic amplitude / mean count (relative thickening)
    psd: float  # degrees
    pbw: float  # degrees
    peak: float  # degrees
    entropy: float  # 0..1
    segments17: np.ndarray  # (17,) circular mean phase of AHA segments 1..17 (cardio_imaging.aha17), degrees
    histogram: np.ndarray  # (360,) sample counts per 1-degree bin
    perfusion_map: np.ndarray | None = None  # (rings, sectors) time-averaged max counts, % of the maximum
    curves: np.ndarray | None = None  # (rings, sectors, gates) count curves
    harmonics: int = 1
    source: str = ""
    geometry: dict = field(default_factory=dict)  # apex/base slice positions, axis, ray limit


def circular_mean_deg(phase: np.ndarray, axis=None) -> np.ndarray:
    return np.degrees(np.angle(np.exp(1j * np.radians(phase)).mean(axis=axis))) % 360.0


def segment_phases(phase_maps: np.ndarray) -> np.ndarray:
    """Circular mean phase of each AHA segment (cardio_imaging.aha17): (..., rings, sectors) -> (..., 17) degrees."""
    phase_maps = np.asarray(phase_maps, dtype=np.float64)
    return aha17.segment_values(phase_maps, aha17.polar_labels(*phase_maps.shape[-2:]), reduce="circular")


def phase_statistics(phase_maps: np.ndarray) -> dict[str, np.ndarray]:
    """PSD, PBW, peak, entropy and 1-degree histogram of phase maps (..., rings, sectors) or (..., n)."""
    phase = np.asarray(phase_maps, dtype=np.float64)
    if not np.isfinite(phase).all():
        raise CardioError("phase map holds NaN/inf values")
    lead = phase.shape[:-2] if phase.ndim >= 2 else ()
    flat = (phase.reshape(*lead, -1) if phase.ndim >= 2 else phase[None]) % 360.0
    flat2 = flat.reshape(-1, flat.shape[-1])
    n_maps, n = flat2.shape
    bins = np.minimum(np.floor(flat2).astype(np.int64), HIST_BINS - 1)
    hist = np.bincount((bins + HIST_BINS * np.arange(n_maps)[:, None]).ravel(),
                       minlength=n_maps * HIST_BINS).reshape(n_maps, HIST_BINS)
    smooth = sum(np.roll(hist, s, axis=1) for s in range(-(PEAK_SMOOTH_DEG // 2), PEAK_SMOOTH_DEG // 2 + 1))
    peak = np.argmax(smooth, axis=1) + 0.5
    unwrapped = peak[:, None] + ((flat2 - peak[:, None] + 180.0) % 360.0) - 180.0
    psd = unwrapped.std(axis=1)
    lo, hi = np.percentile(unwrapped, [2.5, 97.5], axis=1)
    p = hist / n
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1) / np.log(HIST_BINS)
    out = {"psd": psd, "pbw": hi - lo, "peak": peak, "entropy": ent, "histogram": hist}
    shape = lead if phase.ndim >= 2 else ()
    return {k: v.reshape(tuple(shape) + v.shape[1:]) for k, v in out.items()}


def fourier_phase(curves: np.ndarray, harmonics: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Phase (degrees) and relative first-harmonic amplitude of count curves (..., gates).

    Gate g is taken at time (g + 0.5) / G of the R-R interval. harmonics=1: the first-harmonic
    angle (exact for a + A cos(2 pi t - phi)). harmonics=K>1: the time of the maximum of the
    K-harmonic reconstruction, found on a 0.25-degree grid and refined by a parabola.
    """
    curves = np.asarray(curves, dtype=np.float64)
    n_gates = curves.shape[-1]
    if harmonics < 1:
        raise CardioError(f"harmonics must be >= 1, got {harmonics}")
    if n_gates < 2 * harmonics + 1:
        raise CardioError(f"{n_gates} gate(s) cannot resolve {harmonics} harmonic(s); "
                          f"need at least {2 * harmonics + 1}")
    spec = np.fft.rfft(curves, axis=-1)
    mean = spec[..., 0].real / n_gates
    amp = 2.0 * np.abs(spec[..., 1]) / n_gates
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_amp = np.where(mean > 0, amp / np.where(mean > 0, mean, 1.0), 0.0)
    half_gate = np.pi / n_gates  # sample g sits at the centre of its time slot
    if harmonics == 1:
        phase = (np.degrees(-np.angle(spec[..., 1]) + half_gate)) % 360.0
        return phase, rel_amp
    steps = 1440
    t = np.arange(steps) / steps
    k = np.arange(1, harmonics + 1)
    basis = np.exp(2j * np.pi * np.outer(k, t) - 1j * half_gate * k[:, None])  # (K, steps)
    recon = (spec[..., 1:harmonics + 1] @ basis).real  # constant term does not move the maximum
    i = np.argmax(recon, axis=-1)
    y0 = np.take_along_axis(recon, ((i - 1) % steps)[..., None], -1)[..., 0]
    y1 = np.take_along_axis(recon, i[..., None], -1)[..., 0]
    y2 = np.take_along_axis(recon, ((i + 1) % steps)[..., None], -1)[..., 0]
    denom = y0 - 2 * y1 + y2
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(denom < 0, 0.5 * (y0 - y2) / np.where(denom < 0, denom, -1.0), 0.0)
    phase = ((i + shift) * 360.0 / steps) % 360.0
    return phase, rel_amp


def _lv_extent(slice_max: np.ndarray, sources: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apex and base (fractional slice index at half the peak slice count) and the LV slice mask."""
    n_pat, n_sl = slice_max.shape
    apex, base = np.empty(n_pat), np.empty(n_pat)
    in_lv = np.zeros((n_pat, n_sl), dtype=bool)
    for p in range(n_pat):
        m = slice_max[p]
        half = 0.5 * m.max()
        top = int(np.argmax(m))
        i0 = top
        while i0 > 0 and m[i0 - 1] >= half:
            i0 -= 1
        i1 = top
        while i1 < n_sl - 1 and m[i1 + 1] >= half:
            i1 += 1
        apex[p] = i0 - 1 + (half - m[i0 - 1]) / (m[i0] - m[i0 - 1]) if i0 > 0 else i0 - 0.5
        base[p] = i1 + (m[i1] - half) / (m[i1] - m[i1 + 1]) if i1 < n_sl - 1 else i1 + 0.5
        if i1 - i0 < 2:
            raise CardioError(f"{sources[p]}: the left ventricle spans only {i1 - i0 + 1} slice(s); "
                              "expected a short-axis stack from apex to base")
        in_lv[p, i0:i1 + 1] = True
    return apex, base, in_lv


def _bilinear_gather(vol: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Sample vol (P, G, S, H, W) at (rows, cols) of shape (P, S, M): returns (P, G, S, M).

    Written out because scipy.ndimage.map_coordinates would interpolate over the patient and
    gate axes too (16 neighbours per point instead of 4 here); flat np.take is the fastest gather.
    """
    n_pat, n_g, n_s, h, w = vol.shape
    r = np.clip(rows, 0, h - 1.001)
    c = np.clip(cols, 0, w - 1.001)
    r0, c0 = r.astype(np.int64), c.astype(np.int64)  # floor: coordinates are >= 0
    fr, fc = (r - r0).astype(np.float32)[:, None], (c - c0).astype(np.float32)[:, None]
    plane = (np.arange(n_pat)[:, None, None] * n_g + np.arange(n_g)[None, :, None]) * n_s \
        + np.arange(n_s)[None, None, :]  # (P, G, S): index of each slice plane
    idx = plane[..., None] * (h * w) + (r0 * w + c0)[:, None]  # (P, G, S, M)
    flat = vol.reshape(-1)
    v00, v01 = flat.take(idx), flat.take(idx + 1)
    v10, v11 = flat.take(idx + w), flat.take(idx + w + 1)
    return (v00 * (1 - fc) + v01 * fc) * (1 - fr) + (v10 * (1 - fc) + v11 * fc) * fr


def _without_extracardiac(vol: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(P, G, S, H, W) volumes with liver/gut uptake beside the LV zeroed (localize.py), and the fraction of
    voxels zeroed per volume; volumes with nothing beside their LV are returned as they are."""
    cleaned = [suppress_extracardiac(v) for v in vol]
    fractions = np.array([fraction for _, fraction in cleaned])
    return (np.stack([v for v, _ in cleaned]) if fractions.any() else vol), fractions


def _long_axis(mean: np.ndarray, slice_max: np.ndarray,
               in_lv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centre rows, centre cols) (P, S) on the LV long axis, and the bright-myocardium mask (P, S, H, W).

    The axis is the count-weighted centroid of the bright myocardium of each LV slice, then a weighted
    straight-line fit through those centroids (robust at the apex and base)."""
    _, n_s, h, w = mean.shape
    mask = mean >= 0.5 * slice_max[:, :, None, None]
    wts = np.where(mask, mean, 0.0)
    tot = wts.sum(axis=(2, 3))
    yy, xx = np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        cy = (wts.sum(axis=3) * yy).sum(axis=2) / tot
        cx = (wts.sum(axis=2) * xx).sum(axis=2) / tot
    sw = np.where(in_lv, tot, 0.0)
    s = np.arange(n_s, dtype=np.float64)
    sw_sum = sw.sum(axis=1, keepdims=True)
    s_bar = (sw * s).sum(axis=1, keepdims=True) / sw_sum
    var = (sw * (s - s_bar) ** 2).sum(axis=1, keepdims=True)

    def line(c):
        c = np.where(in_lv, c, 0.0)
        c_bar = (sw * c).sum(axis=1, keepdims=True) / sw_sum
        slope = (sw * (s - s_bar) * (c - c_bar)).sum(axis=1, keepdims=True) / var
        return c_bar + slope * (s - s_bar)

    return line(cy), line(cx), mask


def _max_count_rays(vol: np.ndarray, mean: np.ndarray, cy_fit: np.ndarray, cx_fit: np.ndarray, r_lim: np.ndarray,
                    sectors: int, band_px: float, radial_step: float) -> tuple[np.ndarray, np.ndarray]:
    """(max count per gate (P, G, S, sectors), time-averaged max count (P, S, sectors)) along `sectors` rays
    from the long axis on every slice, up to `r_lim` pixels."""
    n_pat, n_g, n_s = vol.shape[:3]
    radii = np.arange(0.0, r_lim.max() + radial_step, radial_step, dtype=np.float32)
    theta = np.radians((np.arange(sectors) + 0.5) * 360.0 / sectors)
    rows = cy_fit[:, :, None, None] - np.sin(theta)[:, None] * radii  # anterior = up
    cols = cx_fit[:, :, None, None] + np.cos(theta)[:, None] * radii  # lateral = right
    n_r = radii.size
    # Pass 1, time-averaged volume: where along each ray the myocardium (count maximum) lies.
    profile = _bilinear_gather(mean[:, None], rows.reshape(n_pat, n_s, -1), cols.reshape(n_pat, n_s, -1))
    profile = profile.reshape(n_pat, n_s, sectors, n_r)
    outside = radii[None, :] > r_lim[:, None]  # (P, n_r)
    profile = np.where(outside[:, None, None, :], -np.inf, profile)
    r_star = np.argmax(profile, axis=-1)  # (P, S, sectors)
    perf_slices = profile.max(axis=-1)  # (P, S, sectors)
    # Pass 2, every gate: maximal count within the band around that radius.
    half = int(round(band_px / radial_step))
    ri = r_star[..., None] + np.arange(-half, half + 1)  # (P, S, sectors, band)
    valid = (ri >= 0) & (ri < n_r)
    ri = np.clip(ri, 0, n_r - 1)
    rb = radii[ri]
    valid &= rb <= r_lim[:, None, None, None]
    rows_b = cy_fit[:, :, None, None] - np.sin(theta)[:, None] * rb
    cols_b = cx_fit[:, :, None, None] + np.cos(theta)[:, None] * rb
    samples = _bilinear_gather(vol, rows_b.reshape(n_pat, n_s, -1), cols_b.reshape(n_pat, n_s, -1))
    samples = samples.reshape(n_pat, n_g, n_s, sectors, 2 * half + 1)
    per_gate = np.where(valid[:, None], samples, -np.inf).max(axis=-1)  # (P, G, S, sectors)
    return per_gate, perf_slices


def _slices_to_rings(per_gate: np.ndarray, perf_slices: np.ndarray, apex: np.ndarray, base: np.ndarray,
                     rings: int) -> tuple[np.ndarray, np.ndarray]:
    """Slices resampled to rings evenly spaced from apex to base: (curves (P, rings, sectors, G),
    perfusion (P, rings, sectors))."""
    n_s = per_gate.shape[2]
    u = (np.arange(rings) + 0.5) / rings
    z = np.clip(apex[:, None] + u[None, :] * (base - apex)[:, None], 0, n_s - 1)  # (P, rings)
    i0 = np.minimum(np.floor(z).astype(np.int64), n_s - 1)
    i1 = np.minimum(i0 + 1, n_s - 1)
    f = (z - i0).astype(np.float32)
    g0 = np.take_along_axis(per_gate, i0[:, None, :, None], axis=2)
    g1 = np.take_along_axis(per_gate, i1[:, None, :, None], axis=2)
    curves = g0 * (1 - f[:, None, :, None]) + g1 * f[:, None, :, None]  # (P, G, rings, sectors)
    p0 = np.take_along_axis(perf_slices, i0[:, :, None], axis=1)
    p1 = np.take_along_axis(perf_slices, i1[:, :, None], axis=1)
    perfusion = p0 * (1 - f[:, :, None]) + p1 * f[:, :, None]
    return np.moveaxis(curves, 1, -1), perfusion


def sample_count_curves(volumes: np.ndarray, *, rings: int = RINGS, sectors: int = SECTORS, band_px: float = 2.0,
                        radial_step: float = 0.5, sources: list[str] | None = None) -> dict[str, np.ndarray]:
    """Maximal-count sampling of (P, gates, slices, rows, cols) volumes.

    Returns curves (P, rings, sectors, gates), perfusion (P, rings, sectors) (time-averaged max
    counts) and the geometry found (apex, base, centres, ray limit).
    """
    vol, extracardiac = _without_extracardiac(np.asarray(volumes, dtype=np.float32))
    n_pat, _, _, h, w = vol.shape
    sources = sources or [f"volume {p}" for p in range(n_pat)]
    mean = vol.mean(axis=1)  # (P, S, H, W)
    slice_max = mean.max(axis=(2, 3))
    for p in np.flatnonzero(slice_max.max(axis=1) <= 0):
        raise CardioError(f"{sources[p]}: all-zero myocardium (no counts in any slice)")
    apex, base, in_lv = _lv_extent(slice_max, sources)
    cy_fit, cx_fit, mask = _long_axis(mean, slice_max, in_lv)
    # Ray length: the farthest bright myocardial pixel of any LV slice, plus the band.
    yy, xx = np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32)
    dist = np.sqrt((yy[None, None, :, None] - cy_fit[:, :, None, None]) ** 2 +
                   (xx[None, None, None, :] - cx_fit[:, :, None, None]) ** 2)
    far = np.where(mask & in_lv[:, :, None, None], dist, 0.0).max(axis=(1, 2, 3))
    r_lim = np.minimum(far + band_px + 1.0, 0.5 * min(h, w))
    per_gate, perf_slices = _max_count_rays(vol, mean, cy_fit, cx_fit, r_lim, sectors, band_px, radial_step)
    curves, perfusion = _slices_to_rings(per_gate, perf_slices, apex, base, rings)
    empty = ~(curves.max(axis=(1, 2, 3)) > 0)
    for p in np.flatnonzero(empty):
        raise CardioError(f"{sources[p]}: all-zero myocardium (the sampled myocardial band holds no counts)")
    return {"curves": curves, "perfusion": perfusion, "apex": apex, "base": base,
            "centre_row": cy_fit, "centre_col": cx_fit, "ray_limit": r_lim, "extracardiac_fraction": extracardiac}


def _items(volumes, sources) -> tuple[list, list[str]]:
    """The volumes as a list (arrays or GatedVolumes, not yet copied) and their names for messages."""
    if isinstance(volumes, GatedVolume):
        volumes = [volumes]
    if not isinstance(volumes, (list, tuple)):
        arr = np.asarray(volumes)
        if arr.ndim == 4:
            arr = arr[None]
        if arr.ndim != 5:
            raise CardioError(f"expected volumes of shape (patients, gates, slices, rows, cols), got {arr.shape}")
        volumes = list(arr)
    names = [v.source if isinstance(v, GatedVolume) else (sources[i] if sources else f"volume {i}")
             for i, v in enumerate(volumes)]
    return list(volumes), names


def _volume_data(v, name: str, harmonics: int) -> np.ndarray:
    if isinstance(v, GatedVolume):
        if not v.gated:
            raise CardioError(f"{name}: not gated ({v.meta.get('image_type') or 'no Time Slot Vector'}, "
                              f"{v.meta.get('number_of_frames', v.n_slices)} frames indexed by "
                              f"{'/'.join(v.meta.get('frame_increment_pointer') or ['nothing'])}); "
                              "it has no gates, and phase analysis needs a gated short-axis volume (8 or 16 gates)")
        v = v.data
    return _check_gates(v, name, harmonics)


def _check_gates(arr, name: str, harmonics: int) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim == 4 and arr.shape[0] == 1:
        raise CardioError(f"{name}: has one gate (not gated); phase analysis needs a gated volume (8 or 16 gates)")
    arr = check_volume(arr, name)
    if arr.shape[0] < 2 * harmonics + 1:
        raise CardioError(f"{name}: {arr.shape[0]} gates cannot resolve {harmonics} harmonic(s); "
                          f"need at least {2 * harmonics + 1} (8 or 16 in practice)")
    if arr.shape[0] < MIN_GATES:
        raise CardioError(f"{name}: {arr.shape[0]} gates; phase analysis needs a gated volume of at least "
                          f"{MIN_GATES} gates (8 or 16 in practice)")
    return arr


def phase_analysis_batch(volumes, harmonics: int = 1, *, sources: list[str] | None = None, rings: int = RINGS,
                         sectors: int = SECTORS, band_px: float = 2.0, keep_curves: bool = False,
                         chunk: int = 4) -> list[PhaseResult]:
    """Phase analysis of many volumes: an array (P, G, S, H, W) or a list of arrays / GatedVolumes
    (of any shapes; a chunk with mixed shapes is analysed one volume at a time).

    `chunk` patients go through each vectorized pass; 2-4 measured fastest on CPU (larger
    batches spill the cache; benchmarks/spect_pipeline.py compares with one at a time).
    """
    items, names = _items(volumes, sources)
    results: list[PhaseResult] = []
    # Validate and convert to float32 one chunk at a time, so memory stays bounded by the chunk.
    groups: list[list[int]] = []
    for start in range(0, len(items), chunk):
        idx = list(range(start, min(start + chunk, len(items))))
        shapes = [np.shape(items[i].data if isinstance(items[i], GatedVolume) else items[i]) for i in idx]
        groups += [idx] if len(set(shapes)) == 1 else [[i] for i in idx]  # mixed shapes: one at a time
    for idx in groups:
        part = np.stack([_volume_data(items[i], names[i], harmonics) for i in idx])
        part_names = [names[i] for i in idx]
        smp = sample_count_curves(part, rings=rings, sectors=sectors, band_px=band_px, sources=part_names)
        phase, amp = fourier_phase(smp["curves"], harmonics)
        stats = phase_statistics(phase)
        segs = segment_phases(phase)
        perf = smp["perfusion"]
        perf = 100.0 * perf / perf.max(axis=(1, 2), keepdims=True)
        for i in range(len(part)):
            results.append(PhaseResult(
                phase_map=phase[i], amplitude_map=amp[i], psd=float(stats["psd"][i]), pbw=float(stats["pbw"][i]),
                peak=float(stats["peak"][i]), entropy=float(stats["entropy"][i]), segments17=segs[i],
                histogram=stats["histogram"][i], perfusion_map=perf[i],
                curves=smp["curves"][i] if keep_curves else None, harmonics=harmonics, source=part_names[i],
                geometry={"apex_slice": float(smp["apex"][i]), "base_slice": float(smp["base"][i]),
                          "ray_limit_px": float(smp["ray_limit"][i]),
                          "extracardiac_fraction": float(smp["extracardiac_fraction"][i])}))
    return results


def phase_analysis(volume, harmonics: int = 1, **kwargs) -> PhaseResult:
    """Phase analysis of one gated short-axis volume (array (G, S, H, W) or GatedVolume)."""
    return phase_analysis_batch([volume], harmonics, **kwargs)[0]


def result_from_phase_map(phase_map: np.ndarray, amplitude_map: np.ndarray | None = None, *,
                          source: str = "phase map") -> PhaseResult:
    """PSD, PBW, histogram and segments of a ready phase polar map (degrees, rings x sectors)."""
    phase_map = np.asarray(phase_map, dtype=np.float64)
    if phase_map.ndim != 2:
        raise CardioError(f"{source}: a phase polar map is 2-D (rings, sectors), got shape {phase_map.shape}")
    if not np.isfinite(phase_map).all():
        raise CardioError(f"{source}: phase map holds NaN/inf values")
    phase_map = phase_map % 360.0
    st = phase_statistics(phase_map)
    amp = np.full(phase_map.shape, np.nan) if amplitude_map is None else np.asarray(amplitude_map, dtype=np.float64)
    return PhaseResult(phase_map=phase_map, amplitude_map=amp, psd=float(st["psd"]), pbw=float(st["pbw"]),
                       peak=float(st["peak"]), entropy=float(st["entropy"]), segments17=segment_phases(phase_map),
                       histogram=st["histogram"], source=source)


def circular_abs_error(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """|a - b| in degrees on the circle (0..180)."""
    d = (np.asarray(a) - np.asarray(b)) % 360.0
    return np.minimum(d, 360.0 - d)
