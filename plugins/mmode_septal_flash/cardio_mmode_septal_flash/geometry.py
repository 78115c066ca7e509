"""Where the virtual M-mode line lies: the normal to the mid-basal septum, through a septal point, toward the LV.

Image coordinates are (x, y) in pixels: x the column (to the right), y the row (down). The 62
septum points are ordered from the basal septum (at the mitral annulus) toward the apex, as the
paper's segmentations. The paper's 10th and 20th points (0-based 9 and 19) give the tangent of the mid-basal
septum and the 15th (0-based 14), midway between them, the septal point of interest; its offline augmentation's five
points above and below it then span the 10th to the 20th.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cardio import CardioError

N_POINTS = 62
TANGENT_POINTS = (9, 19)  # 0-based: the paper's 10th and 20th points
CENTRE_POINT = 14  # the 15th
LV_SIDES = ("right", "left")


@dataclass(frozen=True)
class Line:
    """A sampling line in pixel coordinates: from `start` (RV side) to `end` (LV lateral wall side)."""

    start: np.ndarray  # (2,) x, y
    end: np.ndarray  # (2,)
    centre: np.ndarray  # (2,) the septal point it crosses
    normal: np.ndarray  # (2,) unit vector toward the LV
    length_mm: float | None = None  # its physical length where the clip is calibrated

    @property
    def length(self) -> float:
        return float(np.hypot(*(self.end - self.start)))


def check_points(points: np.ndarray, shape: tuple[int, int], path: Path | str) -> np.ndarray:
    """62 finite (x, y) points inside an image of `shape` (H, W); a CardioError naming `path` otherwise."""
    p = np.asarray(points, dtype=float)
    if p.ndim != 2 or p.shape[1] != 2:
        raise CardioError(f"{path}: septum points must be (x, y) pairs, got an array of shape {p.shape}")
    if len(p) != N_POINTS:
        raise CardioError(f"{path}: {len(p)} septum points, expected {N_POINTS} ordered points (base to apex)")
    if not np.isfinite(p).all():
        raise CardioError(f"{path}: septum points hold NaN/inf values")
    h, w = shape
    outside = (p[:, 0] < 0) | (p[:, 0] > w - 1) | (p[:, 1] < 0) | (p[:, 1] > h - 1)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise CardioError(f"{path}: {int(outside.sum())} septum point(s) outside the {w} x {h} image "
                          f"(point {i} at x={p[i, 0]:.1f}, y={p[i, 1]:.1f})")
    # an apical view shows the apex at the top (near the probe) and the base below it
    if p[0, 1] < p[-1, 1] - 0.1 * h:
        raise CardioError(f"{path}: its septum points run from y={p[0, 1]:.0f} (point 0) down to y={p[-1, 1]:.0f} "
                          "(point 61), apex to base; in an apical view the base lies below the apex: give them base "
                          "to apex (reverse their order)")
    return p


def septal_normal(points: np.ndarray, lv_side: str = "right") -> np.ndarray:
    """Unit normal of the mid-basal septum (tangent from the 10th to the 20th point), pointing toward the LV.

    The points alone cannot tell the LV from the RV; `lv_side` is the image side the LV lies on
    (the usual apical four-chamber display has it on the right).
    """
    if lv_side not in LV_SIDES:
        raise CardioError(f"mmode_septal_flash.lv_side must be one of {list(LV_SIDES)}, got {lv_side!r}")
    p = np.asarray(points, dtype=float)
    tangent = p[TANGENT_POINTS[1]] - p[TANGENT_POINTS[0]]
    norm = float(np.hypot(*tangent))
    if norm < 1e-6:
        raise CardioError("the 10th and 20th septum points coincide: no septal direction")
    tangent /= norm
    normal = np.array([-tangent[1], tangent[0]])
    if abs(normal[0]) < 1e-3:
        raise CardioError("the mid-basal septum lies horizontal in the image: mmode_septal_flash.lv_side cannot "
                          "orient its normal")
    if (normal[0] > 0) != (lv_side == "right"):
        normal = -normal
    return normal


def mm_per_step(normal: np.ndarray, spacing_mm: tuple[float, float]) -> float:
    """Millimetres of one pixel step along `normal` (x, y), for (row, column) spacing: anisotropic pixels too."""
    dy, dx = spacing_mm
    return float(np.hypot(dx * normal[0], dy * normal[1]))


def mmode_line(points: np.ndarray, width: int, lv_side: str = "right", length: float = 0.6,
               rv_share: float = 0.25, offset: int = 0, spacing_mm: tuple[float, float] | None = None,
               length_mm: float | None = None) -> Line:
    """The M-mode line through septal point CENTRE_POINT + offset, along the mid-basal normal.

    The line is `length_mm` long where the clip is calibrated (`spacing_mm`, mm per pixel as (row, column)), else
    `length` x the image width in pixels. `rv_share` of it lies on the RV side of the septal point, the rest
    crosses the LV toward its lateral wall. Offsets move the point along the septum (the paper's offline
    augmentation) and keep the normal.
    """
    p = np.asarray(points, dtype=float)
    i = CENTRE_POINT + int(offset)
    if not 0 <= i < len(p):
        raise CardioError(f"septal offset {offset} leaves the {len(p)} septum points")
    n = septal_normal(p, lv_side)
    line_mm: float | None = None  # calibrated clips only
    if spacing_mm is not None and length_mm is not None:
        line_mm = float(length_mm)
        total = line_mm / mm_per_step(n, spacing_mm)
    else:
        total = float(length) * width
    centre = p[i]
    return Line(start=centre - rv_share * total * n, end=centre + (1 - rv_share) * total * n, centre=centre, normal=n,
                length_mm=line_mm)
