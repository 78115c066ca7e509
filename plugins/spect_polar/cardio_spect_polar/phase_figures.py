"""SPECT phase figures: phase and perfusion bull's-eyes (on cardio_imaging.aha17.bullseye), phase histograms.

Bull's-eye orientation is cardio_imaging.aha17's and matches phase.py: apex at the centre, base at the
rim, anterior up, septum left, lateral right, inferior down (polar angle = sector angle).
"""
from __future__ import annotations

import numpy as np

from cardio import CardioError
from cardio_imaging import aha17
from cardio_report.figures import Figure
from cardio_spect_polar.phase import HIST_BINS, PhaseResult, phase_statistics

# Colour map, range and colour-bar label of each kind of polar map.
KINDS = {"phase": ("twilight_shifted", 0.0, 360.0, "phase (degrees)"),
         "perfusion": ("hot", 0.0, 100.0, "counts (% of maximum)"),
         "amplitude": ("viridis", 0.0, None, "relative amplitude")}


def plot_bullseye(polar_map: np.ndarray, *, kind: str = "phase", title: str | None = None,
                  segments: np.ndarray | None = None, overlay: bool = True, ax=None, vmin: float | None = None,
                  vmax: float | None = None, cmap: str | None = None) -> Figure:
    """Bull's-eye of a (rings, sectors) map; kind "phase" (degrees, cyclic colours), "perfusion" (%) or "amplitude"."""
    if kind not in KINDS:
        raise CardioError(f"unknown bull's-eye kind {kind!r}; use phase, perfusion or amplitude")
    m = np.asarray(polar_map, dtype=float)
    if m.ndim != 2:
        raise CardioError(f"a polar map is 2-D (rings, sectors), got shape {m.shape}")
    default_cmap, lo, hi, label = KINDS[kind]
    if hi is None:
        hi = float(np.nanmax(m)) if np.isfinite(m).any() else 1.0
    return aha17.bullseye(m, ax=ax, title=title, cmap=cmap or default_cmap, vmin=lo if vmin is None else vmin,
                          vmax=hi if vmax is None else vmax, label=label, segments=segments, show_overlay=overlay)


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
