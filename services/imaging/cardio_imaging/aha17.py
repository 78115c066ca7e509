"""The AHA 17-segment model of the left ventricle (Cerqueira et al., Circulation 2002), once for cardio.

Segments: 6 basal (1-6), 6 mid (7-12), 4 apical (13-16) and the apex (17). The LV between the apex
cap and the base is cut into three equal thirds along the long axis (basal, mid-cavity, apical);
the apex cap is the myocardium beyond the end of the cavity. SPECT, PET, echo wall motion and CMR
all report on it.

Polar-map geometry (the bull's-eye): radius r in [0, 1] is the position along the long axis from
the apex (centre, r = 0) to the base (rim, r = 1); the apex cap is r < APEX_CAP and the three
thirds share the rest equally. Angles are counter-clockwise from the lateral wall as seen on a
short-axis slice: 0 lateral (right), 90 anterior (top), 180 septal (left), 270 inferior (bottom).
Basal and mid rings have six 60-degree segments with anterior (1, 7) centred at 90 degrees, then,
counter-clockwise, anteroseptal, inferoseptal, inferior, inferolateral and anterolateral. The
apical ring has four 90-degree segments: anterior 13 (45-135), septal 14, inferior 15, lateral 16.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from cardio.data import CardioError
from cardio_report.figures import Figure

N_SEGMENTS = 17
APEX_CAP = 0.2  # radius of the apex cap in the polar map; the cavity's thirds share the rest
# Radii where the apical, mid and basal rings start (the apex cap starts at 0).
LEVELS = (0.0, APEX_CAP, APEX_CAP + (1 - APEX_CAP) / 3, APEX_CAP + 2 * (1 - APEX_CAP) / 3)

NAMES = (
    "basal anterior", "basal anteroseptal", "basal inferoseptal", "basal inferior", "basal inferolateral",
    "basal anterolateral",
    "mid anterior", "mid anteroseptal", "mid inferoseptal", "mid inferior", "mid inferolateral",
    "mid anterolateral",
    "apical anterior", "apical septal", "apical inferior", "apical lateral",
    "apex",
)
RINGS = {"basal": range(1, 7), "mid": range(7, 13), "apical": range(13, 17), "apex": range(17, 18)}
# The usual assignment of segments to coronary territories (Cerqueira et al., figure 4).
TERRITORIES = {"LAD": (1, 2, 7, 8, 13, 14, 17), "RCA": (3, 4, 9, 10, 15), "LCX": (5, 6, 11, 12, 16)}
# Segments each standard echo view shows (Lang et al., JASE 2015, figure 3): apical four-chamber the
# inferoseptal and anterolateral walls, apical two-chamber the inferior and anterior walls, parasternal long
# axis the anteroseptal and inferolateral walls.
VIEW_SEGMENTS = {"A4C": (3, 6, 9, 12, 14, 16, 17), "A2C": (1, 4, 7, 10, 13, 15, 17), "PLAX": (2, 5, 8, 11)}
_SIX_CENTRES = (90, 150, 210, 270, 330, 30)
_FOUR_CENTRES = (90, 180, 270, 0)


def segment_of(r: Any, angle_deg: Any) -> np.ndarray:
    """Segment number (1..17) at polar-map radius r in [0, 1] and angle in degrees; 0 outside (r > 1)."""
    r = np.asarray(r, dtype=float)
    ang = np.asarray(angle_deg, dtype=float) % 360.0
    r, ang = np.broadcast_arrays(r, ang)
    six = np.floor(((ang - 60.0) % 360.0) / 60.0).astype(np.int64)  # 0 anterior ... 5 anterolateral
    four = np.floor(((ang - 45.0) % 360.0) / 90.0).astype(np.int64)  # 0 anterior ... 3 lateral
    seg = np.zeros(r.shape, dtype=np.int64)
    seg = np.where(r < LEVELS[1], 17, seg)
    seg = np.where((r >= LEVELS[1]) & (r < LEVELS[2]), 13 + four, seg)
    seg = np.where((r >= LEVELS[2]) & (r < LEVELS[3]), 7 + six, seg)
    seg = np.where((r >= LEVELS[3]) & (r <= 1.0), 1 + six, seg)
    return seg


def polar_grid(rings: int, sectors: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres of a (rings, sectors) polar map: radii (apex -> base) and angles in degrees."""
    return (np.arange(rings) + 0.5) / rings, (np.arange(sectors) + 0.5) * 360.0 / sectors


def polar_labels(rings: int, sectors: int) -> np.ndarray:
    """Segment (1..17) of every cell of a (rings, sectors) polar map, ring 0 at the apex."""
    r, theta = polar_grid(rings, sectors)
    return segment_of(r[:, None], theta[None, :])


def image_labels(size: int) -> np.ndarray:
    """Segment (1..17) of every pixel of a (size, size) bull's-eye image, 0 outside the disc.

    Anterior at the top and septum on the left, as the bull's-eye is displayed.
    """
    c = (size - 1) / 2.0
    yy, xx = np.mgrid[0:size, 0:size]
    dx, dy = (xx - c) / (size / 2.0), (c - yy) / (size / 2.0)
    return segment_of(np.hypot(dx, dy), np.degrees(np.arctan2(dy, dx)))


def segment_values(maps: np.ndarray, labels: np.ndarray, reduce: str = "mean") -> np.ndarray:
    """Per-segment summary of maps (..., H, W) labelled by `labels` (H, W): (..., 17).

    reduce "mean" or "circular" (the circular mean of angles in degrees, for phase maps).
    """
    maps = np.asarray(maps)
    if maps.shape[-2:] != labels.shape:
        raise CardioError(f"maps of shape {maps.shape[-2:]} do not match segment labels {labels.shape}")
    out = np.empty(maps.shape[:-2] + (N_SEGMENTS,), dtype=np.float64)
    for s in range(1, N_SEGMENTS + 1):
        cells = maps[..., labels == s]
        if cells.shape[-1] == 0:
            raise CardioError(f"the {labels.shape} grid has no cell in AHA segment {s}; use a finer grid")
        if reduce == "circular":
            out[..., s - 1] = np.degrees(np.angle(np.exp(1j * np.radians(cells)).mean(axis=-1))) % 360.0
        else:
            out[..., s - 1] = cells.mean(axis=-1)
    return out


def overlay(ax, values: np.ndarray | None = None, fmt: str = "{:.0f}") -> None:
    """Segment borders and labels (numbers, or `values` formatted) on a polar axis with radius 0..1."""
    kw = dict(color="black", lw=0.8)
    t = np.linspace(0, 2 * np.pi, 361)
    for level in (*LEVELS[1:], 1.0):
        ax.plot(t, np.full_like(t, level), **kw)
    for a in range(30, 360, 60):  # basal and mid borders
        ax.plot([np.radians(a)] * 2, [LEVELS[2], 1.0], **kw)
    for a in (45, 135, 225, 315):  # apical borders
        ax.plot([np.radians(a)] * 2, [LEVELS[1], LEVELS[2]], **kw)
    radii = (0.5 * (LEVELS[3] + 1.0), 0.5 * (LEVELS[2] + LEVELS[3]), 0.5 * (LEVELS[1] + LEVELS[2]))
    spots = [(np.radians(a), radii[0]) for a in _SIX_CENTRES] + [(np.radians(a), radii[1]) for a in _SIX_CENTRES] \
        + [(np.radians(a), radii[2]) for a in _FOUR_CENTRES] + [(0.0, 0.0)]
    for i, (a, r) in enumerate(spots):
        text = str(i + 1) if values is None else fmt.format(values[i])
        ax.text(a, r, text, ha="center", va="center", fontsize=7,
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.7))


def bullseye(polar_map: np.ndarray, *, ax=None, title: str | None = None, cmap: str = "viridis",
             vmin: float | None = None, vmax: float | None = None, label: str = "",
             segments: np.ndarray | None = None, show_overlay: bool = True, fmt: str = "{:.0f}") -> Figure:
    """Bull's-eye of a (rings, sectors) polar map, or of 17 segment values, with the segment overlay."""
    m = np.asarray(polar_map, dtype=float)
    if m.shape == (N_SEGMENTS,):  # segment values: paint each segment on a fine grid
        m = m[polar_labels(60, 120) - 1]
    if m.ndim != 2:
        raise CardioError(f"a polar map is 2-D (rings, sectors) or 17 segment values, got shape {m.shape}")
    rings, sectors = m.shape
    if ax is None:
        fig = Figure(figsize=(5.0, 4.0), layout="constrained")
        ax = fig.add_subplot(projection="polar")
    else:
        fig = ax.figure
    # rasterized: the map is data pixels, so an SVG embeds it as one image at the save's dpi instead of a path per
    # cell (7,200 for 17 segment values); the PNG is the same bytes, the SVG a quarter the size and 4.7x faster to
    # draw with its PNG (tests/imaging/test_aha17_bullseye.py)
    mesh = ax.pcolormesh(np.linspace(0, 2 * np.pi, sectors + 1), np.linspace(0, 1, rings + 1), m, cmap=cmap,
                         vmin=vmin, vmax=vmax, shading="flat", rasterized=True)
    ax.set_theta_zero_location("E")
    ax.set_theta_direction(1)
    ax.set_ylim(0, 1)
    ax.set_xticks(np.radians([0, 90, 180, 270]), ["lateral", "anterior", "septal", "inferior"], fontsize=8)
    ax.set_yticks([])
    ax.grid(False)
    ax.tick_params(axis="x", pad=7)  # the wall names stand off the outer ring, never on it
    if show_overlay:
        overlay(ax, segments, fmt)
    fig.colorbar(mesh, ax=ax, shrink=0.75, pad=0.16, label=label)
    if title:
        ax.set_title(title, fontsize=10, pad=16)  # above the "anterior" label
    return fig


def image_bullseye(ax, image: np.ndarray, *, title: str = "", cmap: str = "viridis", vmin: float | None = None,
                   vmax: float | None = None):
    """A (size, size) bull's-eye image on an ordinary axis, blank outside the disc, segment borders drawn."""
    size = image.shape[-1]
    labels = image_labels(size)
    im = ax.imshow(np.ma.masked_where(labels == 0, image), cmap=cmap, vmin=vmin, vmax=vmax)
    # Borders drawn as geometry (circles and spokes), in pixel coordinates with y pointing down.
    c, radius = (size - 1) / 2.0, size / 2.0
    t = np.linspace(0, 2 * np.pi, 361)
    kw = dict(color="black", lw=0.6)
    for level in (*LEVELS[1:], 1.0):
        ax.plot(c + level * radius * np.cos(t), c - level * radius * np.sin(t), **kw)
    spokes = [(a, LEVELS[2], 1.0) for a in range(30, 360, 60)] \
        + [(a, LEVELS[1], LEVELS[2]) for a in (45, 135, 225, 315)]
    for a, r0, r1 in spokes:
        th = np.radians(a)
        ax.plot([c + r0 * radius * np.cos(th), c + r1 * radius * np.cos(th)],
                [c - r0 * radius * np.sin(th), c - r1 * radius * np.sin(th)], **kw)
    ax.set_xlim(-0.5, size - 0.5)
    ax.set_ylim(size - 0.5, -0.5)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    return im


def view_finding(segments: Any, view: str) -> np.ndarray:
    """Per-view finding from a 17-segment report: (n, 17) 0/1 values (NaN: not read) -> (n,) 1 where any of
    the view's segments (VIEW_SEGMENTS) is 1, 0 where all of them are 0, NaN otherwise."""
    if view not in VIEW_SEGMENTS:
        raise CardioError(f"no AHA segment map for echo view {view!r}; known: {', '.join(VIEW_SEGMENTS)}")
    values = np.atleast_2d(np.asarray(segments, dtype=float))
    if values.shape[-1] != N_SEGMENTS:
        raise CardioError(f"a 17-segment report needs {N_SEGMENTS} values per row, got {values.shape[-1]}")
    shown = values[:, [s - 1 for s in VIEW_SEGMENTS[view]]]
    any_positive = np.nan_to_num(shown, nan=0.0).max(1) > 0
    return np.where(any_positive, 1.0, np.where(np.isnan(shown).any(1), np.nan, 0.0))
