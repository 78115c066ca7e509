"""Where a short-axis volume's apex and walls are, read from its DICOM header.

The phase analysis takes slices from apex to base, anterior wall up (row 0) and lateral wall right (last
column). A header places the slices and the image plane in patient coordinates (LPS: +x left, +y posterior,
+z superior): the plane's row and column directions (ImageOrientationPatient, in the NM Detector
Information Sequence or at the top level) and the slice positions, from the Slice Location Vector or from
the first slice's ImagePositionPatient stepped by SpacingBetweenSlices along the plane's normal (NM files
may give the spacing a negative sign: the slices then run against the normal). The LV long axis points
from base to apex leftward, anteriorly and inferiorly; slices that step towards the apex start at the base
and are reversed. Walls are placed by projecting patient left (lateral) and inferior onto the short-axis
plane. Where the header lacks a fact, or gives a direction that is not clearly along or across the long
axis, the plugin's convention is assumed and `assumed` says which.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from cardio import CardioError

APEX = np.array([1.0, -1.0, -1.0]) / np.sqrt(3.0)  # base -> apex in LPS, the usual LV long axis
MIN_COS = 0.3  # a direction within about 73 degrees of the expected one counts; closer to 90 is ambiguous
CONVENTION = {"slices": "apex first", "rows": "anterior wall up", "columns": "lateral wall right"}


def _in_plane(direction: np.ndarray) -> np.ndarray:
    """A patient direction projected onto the short-axis plane (perpendicular to APEX), unit length."""
    v = direction - np.dot(direction, APEX) * APEX
    return v / np.linalg.norm(v)


LATERAL = _in_plane(np.array([1.0, 0.0, 0.0]))  # patient left, in the short-axis plane
INFERIOR = _in_plane(np.array([0.0, 0.0, -1.0]))
_DOWN = INFERIOR - np.dot(INFERIOR, LATERAL) * LATERAL
# ImageOrientationPatient of short-axis slices in the plugin's convention (columns grow laterally, rows
# inferiorly); its normal points from apex to base, so apex-first slices have a positive spacing
SHORT_AXIS_IOP = tuple(float(v) + 0.0 for v in np.round(np.concatenate([LATERAL, _DOWN / np.linalg.norm(_DOWN)]), 6))


@dataclass(frozen=True)
class Orientation:
    """How to bring a volume to the plugin's convention, and what the header did not say."""

    reverse_slices: bool = False
    flip_rows: bool = False
    flip_cols: bool = False
    assumed: tuple[str, ...] = ("slices", "rows", "columns")  # keys of CONVENTION taken without the header

    def apply(self, volume: np.ndarray) -> np.ndarray:
        """(gates, slices, rows, cols) reordered to apex first, anterior up, lateral right."""
        out = volume[:, ::-1] if self.reverse_slices else volume
        out = out[:, :, ::-1] if self.flip_rows else out
        return np.ascontiguousarray(out[:, :, :, ::-1] if self.flip_cols else out)

    def describe(self) -> str:
        """One phrase for the cohort table and the log: 'header' or what was assumed."""
        if not self.assumed:
            return "header"
        return "assumed " + ", ".join(CONVENTION[k] for k in self.assumed)


def _floats(ds: Dataset, keyword: str, count: int | None, path: Path) -> np.ndarray | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    items = list(value) if isinstance(value, (list, tuple, MultiValue)) else [value]
    try:
        out = np.array([float(v) for v in items])
    except (TypeError, ValueError):
        raise CardioError(f"{path}: {keyword} is {str(value)[:40]!r}, not numbers") from None
    if (count is not None and out.size != count) or not np.isfinite(out).all():
        raise CardioError(f"{path}: {keyword} is {str(value)[:40]!r}; expected {count or 'finite'} number(s)")
    return out


def _geometry_item(ds: Dataset) -> Dataset:
    """Where an NM file keeps its plane (the Detector Information Sequence), else the dataset itself."""
    detectors = ds.get("DetectorInformationSequence")
    if detectors and "ImageOrientationPatient" in detectors[0]:
        return detectors[0]
    return ds


def _slice_step(ds: Dataset, normal: np.ndarray, slice_vec: np.ndarray | None, path: Path) -> np.ndarray | None:
    """The direction (LPS) in which slice index grows: from per-frame slice locations, else the signed spacing."""
    locations = _floats(ds, "SliceLocationVector", None, path)
    if locations is not None and slice_vec is not None and locations.size == slice_vec.size:
        first, last = locations[slice_vec == slice_vec.min()][0], locations[slice_vec == slice_vec.max()][0]
        if first != last:
            return normal * np.sign(last - first)
    spacing = _floats(ds, "SpacingBetweenSlices", 1, path)
    if spacing is not None and spacing[0] != 0:
        return normal * np.sign(spacing[0])
    return None


def from_header(ds: Dataset, path: str | Path, slice_vec: np.ndarray | None = None) -> Orientation:
    """The Orientation a DICOM header gives (`slice_vec`: each frame's slice number, for per-frame locations)."""
    path = Path(path)
    item = _geometry_item(ds)
    iop = _floats(item, "ImageOrientationPatient", 6, path)
    if iop is None:
        return Orientation()
    col_dir, row_dir = iop[:3], iop[3:]  # along a row (column index grows), down a column (row index grows)
    if np.linalg.norm(col_dir) == 0 or np.linalg.norm(row_dir) == 0:
        raise CardioError(f"{path}: ImageOrientationPatient {list(iop)} has a zero direction")
    col_dir, row_dir = col_dir / np.linalg.norm(col_dir), row_dir / np.linalg.norm(row_dir)
    assumed, decided = [], {}
    step = _slice_step(ds, np.cross(col_dir, row_dir), slice_vec, path)
    for key, direction, target in (("slices", step, APEX), ("columns", col_dir, LATERAL),
                                   ("rows", row_dir, INFERIOR)):
        cos = None if direction is None else float(np.dot(direction, target))
        if cos is None or abs(cos) < MIN_COS:
            assumed.append(key)
        else:
            decided[key] = cos
    # slices stepping towards the apex start at the base; columns must grow laterally, rows inferiorly
    return Orientation(reverse_slices=decided.get("slices", -1.0) > 0, flip_rows=decided.get("rows", 1.0) < 0,
                       flip_cols=decided.get("columns", 1.0) < 0, assumed=tuple(assumed))
