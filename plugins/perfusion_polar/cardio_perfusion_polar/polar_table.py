"""Polar maps exported as ring x sector tables (CSV), resampled onto the bull's-eye image the ResNet reads.

One study is one long CSV table with the columns `channel` (rest, stress or mfr), `ring`, `sector` and `value`:
a row per cell of each of the three maps, any number of rings and sectors (the three maps of a study share them).
Rings are consecutive integers numbered from the apex or from the base, sectors consecutive integers around the
ring; the lowest number of each is the first (0 or 1 alike). The rings divide the radius of the polar map
(apex at the centre, base at the rim) into equal steps, the sectors the circle into equal angles, as
`cardio_imaging.aha17.polar_grid` lays them out. Where sector 0 starts and which way the sectors run differ between
programs, so both are settings (`Orientation`, config `perfusion_polar.tables`); the default is the core's own
layout: the first ring at the apex, sector 0 starting at 3 o'clock (the lateral wall on the displayed
bull's-eye, anterior up and septum left, as seen from the apex) and sectors running counter-clockwise.

Resampling: every pixel of the (size, size) bull's-eye image (cardio_imaging.aha17.image_labels' geometry) takes the
bilinear interpolation of the table at its radius and angle (SciPy's map_coordinates; angles wrap around,
radii inside the first and last ring centres take those rings' values), zero outside the disc as in the .npy maps.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.ndimage import distance_transform_edt, map_coordinates

from cardio import CardioError, write_csv
from cardio.data.cohort import decimal_mark, read_csv_text
from cardio_imaging import aha17

if TYPE_CHECKING:
    from cardio_perfusion_polar.settings import Tables

CHANNELS = ("rest", "stress", "mfr")
COLUMNS = ("channel", "ring", "sector", "value")


@dataclass(frozen=True)
class Orientation:
    """How a program numbers its polar map: where the first ring lies, where sector 0 starts (degrees
    counter-clockwise from 3 o'clock on the displayed bull's-eye: 0 lateral, 90 anterior, 180 septal, 270
    inferior) and which way the sectors run, as seen from the apex."""

    first_ring: str = "apex"
    first_sector_deg: float = 0.0
    direction: str = "counterclockwise"

    @classmethod
    def from_settings(cls, t: Tables) -> Orientation:
        """The `perfusion_polar.tables` section (its choices checked when the config was resolved); an infinite or
        NaN angle is one line naming the key."""
        if not np.isfinite(t.first_sector_deg):
            raise CardioError(f"perfusion_polar.tables.first_sector_deg must be a number of degrees, "
                              f"got {t.first_sector_deg!r}")
        return cls(t.first_ring, t.first_sector_deg, t.direction)


def read_table(path: str | Path) -> np.ndarray:
    """The (3, rings, sectors) grid of a long CSV polar table, rings and sectors as numbered in the file.

    Raises CardioError with the problem only (the caller names the file): a missing column, a channel other than
    rest/stress/mfr, a number that is not one, a cell given twice or missing, too few rings or sectors."""
    try:  # ",", ";" or tab between values, decimal commas where ";" or tab separates them (the core's CSV rules)
        raw, delimiter = read_csv_text(path)
        raw.columns = [str(c).strip().lower() for c in raw.columns]
        decimal = decimal_mark(raw["value"].dropna() if "value" in raw else [], delimiter, path)
    except CardioError as e:
        raise CardioError(f"is not a readable CSV table ({str(e).removeprefix(f'{path}: ')})") from None
    if decimal == ",":
        raw["value"] = raw["value"].str.replace(",", ".", regex=False)
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        raise CardioError(f"lacks column(s) {missing} of a ring x sector table {list(COLUMNS)}")
    if raw.empty:
        raise CardioError("holds no rows")
    channel = raw["channel"].astype(str).str.strip().str.lower()
    other = sorted(set(channel) - set(CHANNELS))
    if other:
        raise CardioError(f"names channel(s) {other[:3]}; a polar table holds {list(CHANNELS)}")
    cells = {c: pd.to_numeric(raw[c].str.strip(), errors="coerce") for c in ("ring", "sector", "value")}
    for c in ("ring", "sector"):
        bad = cells[c].isna() | (cells[c] % 1 != 0)
        if bad.any():
            raise CardioError(f"column {c!r}, line {int(np.flatnonzero(bad)[0]) + 2}: must be a whole number, "
                              f"found {raw[c].iloc[int(np.flatnonzero(bad)[0])]!r}")
    bad = ~np.isfinite(cells["value"].to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise CardioError(f"column 'value', line {i + 2}: must be a finite number, found {raw['value'].iloc[i]!r} "
                          f"({int(bad.sum())} such cell(s))")
    return _grid(channel, cells["ring"].astype(int), cells["sector"].astype(int), cells["value"].to_numpy(float))


def _grid(channel: pd.Series, ring: pd.Series, sector: pd.Series, value: np.ndarray) -> np.ndarray:
    """The long table's cells as a (3, rings, sectors) array: every cell of every channel exactly once."""
    cells = pd.DataFrame({"channel": channel, "ring": ring, "sector": sector})
    twice = cells.duplicated()
    if twice.any():
        c = cells[twice].iloc[0]
        raise CardioError(f"gives channel {c['channel']} ring {c['ring']} sector {c['sector']} more than once")
    rings = np.arange(ring.min(), ring.max() + 1)
    sectors = np.arange(sector.min(), sector.max() + 1)
    if len(rings) < 2 or len(sectors) < 4:
        raise CardioError(f"has {len(rings)} ring(s) and {len(sectors)} sector(s); a polar map needs at least 2 "
                          "rings and 4 sectors")
    expected = len(CHANNELS) * len(rings) * len(sectors)
    if len(cells) != expected:
        raise CardioError(f"holds {len(cells)} cells; rings {rings[0]}-{rings[-1]} x sectors {sectors[0]}-"
                          f"{sectors[-1]} x {len(CHANNELS)} channels make {expected} (a cell or a channel missing)")
    grid = np.empty((len(CHANNELS), len(rings), len(sectors)), dtype=np.float64)
    grid[channel.map(CHANNELS.index).to_numpy(), (ring - rings[0]).to_numpy(), (sector - sectors[0]).to_numpy()] \
        = value
    return grid


def to_image(grid: np.ndarray, size: int, orientation: Orientation) -> np.ndarray:
    """A (C, rings, sectors) polar grid as (C, size, size) bull's-eye images in cardio_imaging.aha17's layout."""
    if orientation.first_ring == "base":
        grid = grid[:, ::-1]  # apex first, as cardio_imaging.aha17.polar_grid
    rings, sectors = grid.shape[1:]
    c = (size - 1) / 2.0
    yy, xx = np.mgrid[0:size, 0:size]
    dx, dy = (xx - c) / (size / 2.0), (c - yy) / (size / 2.0)  # as cardio_imaging.aha17.image_labels
    radius, angle = np.hypot(dx, dy), np.degrees(np.arctan2(dy, dx))
    turn = angle - orientation.first_sector_deg
    if orientation.direction == "clockwise":
        turn = -turn
    ring_pos = radius * rings - 0.5  # cell centres at (i + 0.5) / rings
    sector_pos = (turn % 360.0) / (360.0 / sectors) - 0.5
    wrapped = np.concatenate([grid[:, :, -1:], grid, grid[:, :, :1]], axis=2)  # one sector each side: angles wrap
    inside = aha17.image_labels(size) > 0
    out = np.stack([map_coordinates(m, [ring_pos, sector_pos + 1.0], order=1, mode="nearest") for m in wrapped])
    return np.where(inside, out, 0.0).astype(np.float32)


def sample_image(images: np.ndarray, rings: int, sectors: int, orientation: Orientation = Orientation()) -> np.ndarray:
    """(C, size, size) bull's-eye images sampled at the cell centres of a (rings, sectors) polar grid numbered as
    `orientation` says: what a program's ring x sector export of these maps holds (for tests and the guide)."""
    size = images.shape[-1]
    r, theta = aha17.polar_grid(rings, sectors)
    if orientation.first_ring == "base":
        r = r[::-1]
    step = -1.0 if orientation.direction == "clockwise" else 1.0
    angle = np.radians(orientation.first_sector_deg + step * theta)
    c = (size - 1) / 2.0
    col = c + r[:, None] * (size / 2.0) * np.cos(angle)[None, :]
    row = c - r[:, None] * (size / 2.0) * np.sin(angle)[None, :]
    # outside the disc each pixel takes its nearest disc pixel's value: the rim's interpolation blends in no zeros
    outside = aha17.image_labels(size) == 0
    nearest = distance_transform_edt(outside, return_distances=False, return_indices=True)
    filled = images[:, nearest[0], nearest[1]]
    return np.stack([map_coordinates(m, [row, col], order=1, mode="nearest") for m in filled])


def write_table(grid: np.ndarray, path: str | Path) -> Path:
    """A (3, rings, sectors) grid as a long CSV polar table (rings and sectors numbered from 1)."""
    c, r, s = np.meshgrid(np.arange(grid.shape[0]), np.arange(grid.shape[1]), np.arange(grid.shape[2]),
                          indexing="ij")
    write_csv(path, pd.DataFrame({"channel": np.asarray(CHANNELS)[c.ravel()], "ring": r.ravel() + 1,
                                  "sector": s.ravel() + 1, "value": grid.ravel().round(4)}))
    return Path(path)
