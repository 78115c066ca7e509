"""Bull's-eye (polar map) figures with the AHA 17-segment overlay, and phase histograms.

Bull's-eye orientation is the usual one and matches phase.py: apex at the centre, base at the
rim, anterior up, septum left, lateral right, inferior down (polar angle = sector angle).
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from cardio.data import CardioError  # noqa: E402
from cardio_spect_polar.phase import AHA_LEVELS, HIST_BINS, PhaseResult, phase_statistics  # noqa: E402

_SIX_CENTRES = [90, 150, 210, 270, 330, 30]  # anterior, anteroseptal, inferoseptal, inferior, inferolateral, anterolateral
_FOUR_CENTRES = [90, 180, 270, 0]  # anterior, septal, inferior, lateral


def _segment_overlay(ax, values: np.ndarray | None = None, fmt: str = "{:.0f}") -> None:
    """AHA boundaries on a polar axis with radius = apex->base fraction; labels are numbers or values."""
    kw = dict(color="black", lw=0.8)
    t = np.linspace(0, 2 * np.pi, 361)
    for level in (*AHA_LEVELS[1:], 1.0):
        ax.plot(t, np.full_like(t, level), **kw)
    for a in range(30, 360, 60):  # basal and mid borders
        ax.plot([np.radians(a)] * 2, [AHA_LEVELS[2], 1.0], **kw)
    for a in (45, 135, 225, 315):  # apical borders
        ax.plot([np.radians(a)] * 2, [AHA_LEVELS[1], AHA_LEVELS[2]], **kw)
    r_basal = 0.5 * (AHA_LEVELS[3] + 1.0)
    r_mid = 0.5 * (AHA_LEVELS[2] + AHA_LEVELS[3])
    r_apical = 0.5 * (AHA_LEVELS[1] + AHA_LEVELS[2])
    spots = [(np.radians(a), r_basal) for a in _SIX_CENTRES] + [(np.radians(a), r_mid) for a in _SIX_CENTRES] \
        + [(np.radians(a), r_apical) for a in _FOUR_CENTRES] + [(0.0, 0.0)]
    for i, (a, r) in enumerate(spots):
        text = str(i + 1) if values is None else fmt.format(values[i])
        ax.text(a, r, text, ha="center", va="center", fontsize=7,
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.7))


def plot_bullseye(polar_map: np.ndarray, *, kind: str = "phase", title: str | None = None,
                  segments: np.ndarray | None = None, overlay: bool = True, ax=None, vmin: float | None = None,
                  vmax: float | None = None, cmap: str | None = None) -> Figure:
    """Bull's-eye of a (rings, sectors) map; kind "phase" (degrees, cyclic colours) or "perfusion" (%)."""
    m = np.asarray(polar_map, dtype=float)
    if m.ndim != 2:
        raise CardioError(f"a polar map is 2-D (rings, sectors), got shape {m.shape}")
    if kind not in ("phase", "perfusion", "amplitude"):
        raise CardioError(f"unknown bull's-eye kind {kind!r}; use phase, perfusion or amplitude")
    rings, sectors = m.shape
    if ax is None:
        fig = Figure(figsize=(5.0, 4.0), layout="constrained")
        ax = fig.add_subplot(projection="polar")
    else:
        fig = ax.figure
    theta_edges = np.linspace(0, 2 * np.pi, sectors + 1)
    r_edges = np.linspace(0, 1, rings + 1)
    defaults = {"phase": ("twilight_shifted", 0.0, 360.0, "phase (degrees)"),
                "perfusion": ("hot", 0.0, 100.0, "counts (% of maximum)"),
                "amplitude": ("viridis", 0.0, float(np.nanmax(m)) if np.isfinite(m).any() else 1.0,
                              "relative amplitude")}[kind]
    mesh = ax.pcolormesh(theta_edges, r_edges, m, cmap=cmap or defaults[0],
                         vmin=defaults[1] if vmin is None else vmin, vmax=defaults[2] if vmax is None else vmax,
                         shading="flat")
    ax.set_theta_zero_location("E")
    ax.set_theta_direction(1)
    ax.set_ylim(0, 1)
    ax.set_xticks(np.radians([0, 90, 180, 270]), ["lateral", "anterior", "septal", "inferior"], fontsize=8)
    ax.set_yticks([])
    ax.grid(False)
    if overlay:
        _segment_overlay(ax, segments)
    ax.tick_params(axis="x", pad=2)
    fig.colorbar(mesh, ax=ax, shrink=0.75, pad=0.12, label=defaults[3])
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def plot_phase_histogram(phases_or_result, *, title: str | None = None, ax=None) -> Figure:
    """1-degree phase histogram with the peak, PSD and the 95% bandwidth (PBW) marked."""
    if isinstance(phases_or_result, PhaseResult):
        hist, peak, psd, pbw = (phases_or_result.histogram, phases_or_result.peak, phases_or_result.psd,
                                phases_or_result.pbw)
        phases = phases_or_result.phase_map.ravel()
    else:
        phases = np.asarray(phases_or_result, dtype=float).ravel()
        st = phase_statistics(phases)
        hist, peak, psd, pbw = st["histogram"], float(st["peak"]), float(st["psd"]), float(st["pbw"])
    if ax is None:
        fig = Figure(figsize=(5.0, 3.0), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    centres = np.arange(HIST_BINS) + 0.5
    ax.bar(centres, 100.0 * hist / max(hist.sum(), 1), width=1.0, color="tab:blue")
    unwrapped = peak + ((phases % 360.0 - peak + 180.0) % 360.0) - 180.0
    lo, hi = np.percentile(unwrapped, [2.5, 97.5])
    start, width = lo % 360.0, min(hi - lo, 360.0)
    spans = [(start, start + width)] if start + width <= 360 else [(start, 360.0), (0.0, start + width - 360.0)]
    for a, b in spans:  # the 95% band, split where it wraps past 360
        ax.axvspan(a, b, color="tab:orange", alpha=0.15, lw=0)
    ax.axvline(peak, color="tab:red", lw=1)
    ax.set_xlim(0, 360)
    ax.set_xticks(range(0, 361, 60))
    ax.set_xlabel("phase (degrees of the R-R interval)")
    ax.set_ylabel("% of samples")
    ax.set_title(title or f"peak {peak:.0f}°, PSD {psd:.1f}°, PBW {pbw:.0f}°", fontsize=10)
    return fig


def plot_phase_summary(result: PhaseResult, title: str | None = None) -> Figure:
    """Phase bull's-eye (segment means printed), perfusion bull's-eye and the phase histogram."""
    panels = 3 if result.perfusion_map is not None else 2
    fig = Figure(figsize=(4.4 * panels, 4.0), layout="constrained")
    ax = fig.add_subplot(1, panels, 1, projection="polar")
    plot_bullseye(result.phase_map, kind="phase", ax=ax, segments=result.segments17, title="phase")
    if result.perfusion_map is not None:
        ax2 = fig.add_subplot(1, panels, 2, projection="polar")
        plot_bullseye(result.perfusion_map, kind="perfusion", ax=ax2, title="perfusion")
    plot_phase_histogram(result, ax=fig.add_subplot(1, panels, panels))
    if title:
        fig.suptitle(title)
    return fig
