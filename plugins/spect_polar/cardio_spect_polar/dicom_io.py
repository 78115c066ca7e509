"""Reading and writing gated SPECT short-axis volumes: NM DICOM (pydicom), NumPy, polar maps.

A gated reconstruction is stored as one NM multi-frame image ("RECON GATED TOMO"): every frame
is one short-axis slice of one gate, and the NM Multi-frame Module says which through the
Frame Increment Pointer (0028,0009), which names the per-frame index vectors: R-R Interval
Vector (0054,0060), Time Slot Vector (0054,0070) and Slice Vector (0054,0080). The reader places
every frame by those vectors rather than trusting a frame order, so files from any vendor load
the same way. A non-gated reconstruction ("RECON TOMO", Slice Vector only) loads too, as one
"gate" with `gated=False`; phase analysis refuses it.

Array layout everywhere in this plugin: (gates, slices, rows, cols), slices from apex to base,
each short-axis slice displayed as usual (anterior wall up, septum left, lateral wall right).
"""
from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import BaseTag, Tag
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, NuclearMedicineImageStorage, generate_uid

from cardio import CardioError, atomic_path
from cardio.data.cohort import csv_delimiter, decimal_mark, format_text
from cardio.data.files import check_dicom_frames, read_npy
from cardio_spect_polar.orientation import SHORT_AXIS_IOP, Orientation, from_header

DICOM_SUFFIXES = {".dcm", ".dicom", ".ima", ""}
POLAR_SUFFIXES = {".npy", ".csv"}

# NM Multi-frame index vectors (DICOM PS3.3 C.8.4.8); a reconstructed gated study uses the
# last three, projections carry the angular view vector.
_VECTORS = {
    Tag(0x0054, 0x0010): "EnergyWindowVector", Tag(0x0054, 0x0020): "DetectorVector",
    Tag(0x0054, 0x0030): "PhaseVector", Tag(0x0054, 0x0050): "RotationVector",
    Tag(0x0054, 0x0060): "RRIntervalVector", Tag(0x0054, 0x0070): "TimeSlotVector",
    Tag(0x0054, 0x0080): "SliceVector", Tag(0x0054, 0x0090): "AngularViewVector",
    Tag(0x0054, 0x0100): "TimeSliceVector",
}
_SINGLE_VALUED = ("EnergyWindowVector", "DetectorVector", "PhaseVector", "RotationVector",
                  "RRIntervalVector", "TimeSliceVector")


@dataclass
class GatedVolume:
    """A short-axis SPECT volume (gates, slices, rows, cols) in counts, with where it came from."""

    data: np.ndarray
    gated: bool
    source: str
    pixel_spacing: tuple[float, float] | None = None  # mm (row, col)
    slice_spacing: float | None = None  # mm
    rr_ms: float | None = None  # nominal R-R interval
    time_slot_ms: list[float] | None = None  # start of each gate within the R-R interval
    meta: dict = field(default_factory=dict)
    orientation: Orientation = field(default_factory=Orientation)  # what the header said, what was assumed

    @property
    def n_gates(self) -> int:
        return int(self.data.shape[0])

    @property
    def n_slices(self) -> int:
        return int(self.data.shape[1])


# A SPECT voxel: about 2-3 mm for a zoomed or CZT reconstruction, 6-7 mm for a 64 x 64 matrix (the real NM sample's
# 3.1 x 6.2 mm); outside this range the header's spacing is in another unit or belongs to another image.
VOXEL_MM = (1.5, 15.0)


def _name(path) -> str:
    return str(path)


def _detail(exc: BaseException) -> str:
    """A library's exception as one short line: its first line (pydicom may append a whole traceback)."""
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {first}"[:240]


def check_volume(data: np.ndarray, source: str, *, gated: bool = True) -> np.ndarray:
    """Validate a (gates, slices, rows, cols) array; returns it as float32."""
    arr = np.asarray(data)
    if arr.dtype == object:
        raise CardioError(f"{source}: volume is a ragged object array (gates of unequal size?)")
    if arr.ndim != 4:
        raise CardioError(f"{source}: expected a volume of shape (gates, slices, rows, cols), got shape {arr.shape}")
    if min(arr.shape) == 0:
        raise CardioError(f"{source}: volume is empty, shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise CardioError(f"{source}: volume has non-numeric dtype {arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    bad = ~np.isfinite(arr)
    if bad.any():
        raise CardioError(f"{source}: volume holds {int(bad.sum())} NaN/inf value(s)")
    if gated and arr.shape[0] == 1:
        raise CardioError(f"{source}: volume has one gate; a gated SPECT volume has 8 or 16")
    totals = arr.reshape(arr.shape[0], -1).max(axis=1)
    if not (totals > 0).any():
        raise CardioError(f"{source}: every voxel is zero (no myocardial counts)")
    empty = np.flatnonzero(totals <= 0)
    if empty.size:
        raise CardioError(f"{source}: gate(s) {[int(g) + 1 for g in empty]} of {arr.shape[0]} hold no counts")
    if arr.max() == arr.min():
        raise CardioError(f"{source}: every voxel holds {float(arr.max()):g} (a blank export, no image)")
    if gated and (arr == arr[:1]).all():
        raise CardioError(f"{source}: its {arr.shape[0]} gates are one image (gating failed, or the summed volume was "
                          "copied into every gate): phase analysis needs the heart's motion between gates; export "
                          "the gated series")
    return arr


def stack_gates(gates: Sequence[np.ndarray], source: str = "<gates>") -> np.ndarray:
    """Stack per-gate (slices, rows, cols) arrays into one volume; gates must have one shape."""
    shapes = [np.shape(g) for g in gates]
    if len(set(shapes)) > 1:
        sizes = ", ".join(f"gate {i + 1} {s}" for i, s in enumerate(shapes))
        raise CardioError(f"{source}: gates of unequal size: {sizes}")
    return check_volume(np.stack([np.asarray(g) for g in gates]), source)


def _is_dicom(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError as exc:
        raise CardioError(f"{path}: cannot read ({exc.strerror})") from exc
    return len(head) == 132 and head[128:132] == b"DICM"


def read_volume(path: str | Path) -> GatedVolume:
    """A gated (or non-gated) short-axis volume from NM DICOM or a (gates, slices, rows, cols) .npy."""
    path = Path(path)
    if not path.is_file():
        raise CardioError(f"{path}: no such file")
    if path.suffix.lower() == ".npy":
        return read_npy_volume(path)
    if path.suffix.lower() in DICOM_SUFFIXES or _is_dicom(path):
        return read_dicom_volume(path)
    raise CardioError(f"{path}: unknown volume format {path.suffix!r}; "
                      "use NM DICOM or .npy (gates, slices, rows, cols)")


def read_npy_volume(path: str | Path) -> GatedVolume:
    path = Path(path)
    arr = read_npy(path)  # an .npz, object arrays (ragged gates) and a truncated file refused, naming it
    return GatedVolume(check_volume(arr, _name(path)), gated=True, source=_name(path), meta={"format": "npy"})


def _numbers(ds: Dataset, keyword: str, path: Path, count: int = 1) -> list[float] | None:
    """A DS/IS element as `count` finite numbers, None when absent or empty; anything else names the element."""
    try:
        value = ds.get(keyword)
    except (TypeError, ValueError) as exc:  # pydicom converts DS/IS lazily and may refuse here
        raise CardioError(f"{path}: {keyword} is malformed ({_detail(exc)})") from None
    if value is None or value == "":
        return None
    items = list(value) if isinstance(value, (list, tuple, MultiValue)) else [value]
    try:
        out = [float(v) for v in items]
    except (TypeError, ValueError):
        out = []
    if len(out) != count or not np.isfinite(out).all():
        raise CardioError(f"{path}: {keyword} is {str(value)[:40]!r}; expected {count} finite number(s)")
    return out


def _vector(ds: Dataset, tag: BaseTag, n_frames: int, path: Path) -> np.ndarray:
    name = _VECTORS.get(tag, str(tag))
    named = f"{name} {tag}" if tag in _VECTORS else str(tag)
    if tag not in ds:
        raise CardioError(f"{path}: Frame Increment Pointer names {named} but the file lacks it")
    try:
        vec = np.atleast_1d(np.asarray(ds[tag].value, dtype=np.int64))
    except (TypeError, ValueError, OverflowError):
        raise CardioError(f"{path}: Frame Increment Pointer names {named}, which is not a vector of "
                          "frame indices") from None
    if vec.ndim != 1 or vec.size != n_frames:
        raise CardioError(f"{path}: {name} has {vec.size} values for {n_frames} frames")
    return vec


def _gating_info(ds: Dataset, path: Path) -> tuple[float | None, list[float] | None]:
    """Nominal R-R interval and the time-slot start times from the NM Multi-gated Acquisition Module."""
    rr, slots = None, None
    gis = ds.get("GatedInformationSequence")
    dis = gis[0].get("DataInformationSequence") if gis else None
    if dis:
        item = dis[0]
        nominal = _numbers(item, "NominalInterval", path)
        rr = nominal[0] if nominal else None
        for slot in item.get("TimeSlotInformationSequence") or []:
            time = _numbers(slot, "TimeSlotTime", path)
            if time is not None:
                slots = [*(slots or []), time[0]]
    return rr, slots


@dataclass(frozen=True)
class HeaderFacts:
    """What a DICOM volume's header says: its gates (1 = not gated) and its orientation."""

    gates: int
    orientation: Orientation


def check_dicom_header(path: str | Path, pixels: bool = True) -> HeaderFacts:
    """Every check a full read makes, without decoding the pixels: a foreign, damaged or non-NM file, a frame
    count its vectors or its pixel bytes do not match, frames that do not fill the (gate, slice) grid, a bad
    orientation are each an error naming the file. The cohort reader calls it on every DICOM row, so such files
    are listed before any analysis. `pixels=False` reads the header alone (no frame-count check)."""
    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = _open_dicom(path, pixels=pixels)
    if not pixels:
        slices = ds.get("SliceVector")
        try:
            slice_vec = None if slices is None else np.atleast_1d(np.asarray(slices, dtype=np.int64))
        except (TypeError, ValueError):
            slice_vec = None  # the full read names a malformed Slice Vector
        return HeaderFacts(int(ds.get("NumberOfTimeSlots") or 1), from_header(ds, path, slice_vec))
    n_frames = _frame_count(ds, path)
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if "PixelData" in ds and (syntax is None or not syntax.is_compressed):
        need = n_frames * int(ds.Rows) * int(ds.Columns) * -(-int(ds.get("BitsAllocated", 16)) // 8)
        if len(ds.PixelData) < need:
            raise CardioError(f"{path}: pixel data holds {len(ds.PixelData)} bytes, not the {need} of "
                              f"NumberOfFrames x Rows x Columns = {n_frames} x {ds.Rows} x {ds.Columns}: a file "
                              "truncated (cut short in a copy or transfer), or a header whose sizes are wrong")
    slot_vec, slice_vec, n_slots, gated, _ = _frame_grid(ds, n_frames, path)
    _check_grid(slot_vec, slice_vec, n_slots, path)
    _check_spacing(ds, path)
    return HeaderFacts(n_slots if gated else 1, from_header(ds, path, slice_vec))


def _check_spacing(ds: Dataset, path: Path) -> None:
    """The header's pixel and slice spacing within what a SPECT reconstructs (VOXEL_MM): another unit (cm) or
    another image's would give the heart a wrong size."""
    pixel = _numbers(ds, "PixelSpacing", path, count=2)
    between = _numbers(ds, "SpacingBetweenSlices", path) or _numbers(ds, "SliceThickness", path)
    low, high = VOXEL_MM
    spacings: tuple[tuple[str, float | None], ...] = (
        ("PixelSpacing", pixel[0] if pixel else None),
        ("SpacingBetweenSlices (else SliceThickness)", between[0] if between else None))
    for what, mm in spacings:
        if mm is not None and not low <= abs(mm) <= high:
            hint = " (written in cm?)" if abs(mm) < low else ""
            raise CardioError(f"{path}: {what} is {abs(mm):g} mm{hint}; a SPECT voxel is {low:g}-{high:g} mm, so "
                              "the heart's size would be wrong: correct the header")


def _check_grid(slot_vec: np.ndarray, slice_vec: np.ndarray, n_slots: int, path: Path) -> None:
    seen = np.zeros((n_slots, int(slice_vec.max())), dtype=np.int64)
    np.add.at(seen, (slot_vec - 1, slice_vec - 1), 1)
    if (seen != 1).any():
        raise CardioError(f"{path}: frames do not fill the (time slot, slice) grid exactly once "
                          f"({int((seen == 0).sum())} missing, {int((seen > 1).sum())} repeated)")


def _open_dicom(path: Path, pixels: bool = True) -> Dataset:
    """The dataset of a DICOM image file (without its pixel data when not `pixels`); a truncated or foreign
    file is an error naming it."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=not pixels)
        ds.walk(lambda dataset, element: None)  # pydicom parses elements lazily: parse every one here, once
    except InvalidDicomError as exc:
        raise CardioError(f"{path}: not a DICOM file ({exc})") from exc
    except Exception as exc:  # damaged bytes make pydicom raise many types (struct.error, NotImplementedError...)
        raise CardioError(f"{path}: unreadable DICOM file, damaged or truncated ({_detail(exc)})") from exc
    # pydicom stops quietly where a file ends: a cut file reads as a dataset that lacks elements.
    lacking = [k for k in ("Modality", "Rows", "Columns") if k not in ds]
    if lacking:
        raise CardioError(f"{path}: DICOM file lacks {', '.join(lacking)}: truncated, or not an image "
                          f"({path.stat().st_size} bytes)")
    modality = str(ds.get("Modality", "")).strip()
    if modality != "NM":
        raise CardioError(f"{path}: Modality is {modality or 'missing'!r}; "
                          "a SPECT volume must be NM (nuclear medicine)")
    if pixels and not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise CardioError(f"{path}: DICOM file has no pixel data (7FE0,0010): truncated, or not an image "
                          f"({path.stat().st_size} bytes)")
    return ds


def _frame_count(ds: Dataset, path: Path) -> int:
    declared = ds.get("NumberOfFrames")
    try:
        n_frames = 1 if declared in (None, "") else int(declared)
    except (TypeError, ValueError):
        n_frames = 0
    if n_frames < 1:
        raise CardioError(f"{path}: NumberOfFrames is {declared!r}; a volume needs at least one frame")
    return n_frames


def _frames(ds: Dataset, path: Path) -> np.ndarray:
    """The pixel data as (frames, rows, cols), in counts (the modality rescale applied)."""
    n_frames = _frame_count(ds, path)
    slope, intercept = _numbers(ds, "RescaleSlope", path), _numbers(ds, "RescaleIntercept", path)
    check_dicom_frames(ds, path, n_frames)
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # pydicom raises many types for truncated or undecodable data
        raise CardioError(f"{path}: pixel data cannot be decoded ({_detail(exc)})") from exc
    if slope is not None or intercept is not None:
        pixels = pixels * (slope or [1.0])[0] + (intercept or [0.0])[0]
    rows, cols = int(ds.Rows), int(ds.Columns)
    pixels = np.asarray(pixels)
    if pixels.size != n_frames * rows * cols:
        raise CardioError(f"{path}: pixel data holds {pixels.size} values, not NumberOfFrames x Rows x Columns "
                          f"= {n_frames} x {rows} x {cols}")
    return pixels.reshape(n_frames, rows, cols)


def _frame_grid(ds: Dataset, n_frames: int, path: Path) -> tuple[np.ndarray, np.ndarray, int, bool, list[str]]:
    """(time slot, slice) of every frame from the Frame Increment Pointer's vectors; gates, gated, vector names."""
    fip = ds.get("FrameIncrementPointer")
    tags = [] if fip is None else [Tag(t) for t in (fip if isinstance(fip, (list, tuple, MultiValue)) else [fip])]
    vectors = {_VECTORS.get(t, str(t)): _vector(ds, t, n_frames, path) for t in tags}
    if "AngularViewVector" in vectors:
        raise CardioError(f"{path}: holds projections (Angular View Vector), not reconstructed slices; "
                          "reconstruct and reorient to short axis first")
    for name in _SINGLE_VALUED:
        if name in vectors and np.unique(vectors[name]).size > 1:
            raise CardioError(f"{path}: holds {np.unique(vectors[name]).size} distinct {name} values; "
                              "export one energy window, detector and R-R window per file")
    gated = "TimeSlotVector" in vectors
    slice_vec = vectors.get("SliceVector", np.arange(1, n_frames + 1) if not gated else np.ones(n_frames, int))
    slot_vec = vectors.get("TimeSlotVector", np.ones(n_frames, int))
    n_slots = int(ds.get("NumberOfTimeSlots") or slot_vec.max()) if gated else 1
    if slot_vec.min() < 1 or slot_vec.max() > n_slots or slice_vec.min() < 1:
        raise CardioError(f"{path}: Time Slot / Slice Vector values out of range (NumberOfTimeSlots={n_slots})")
    if gated and n_slots == 1:
        raise CardioError(f"{path}: gated file with one time slot (NumberOfTimeSlots=1); a gated SPECT has 8 or 16")
    per_slot = np.bincount(slot_vec, minlength=n_slots + 1)[1:]
    if gated and np.unique(per_slot).size > 1:
        detail = ", ".join(f"gate {g + 1}: {c}" for g, c in enumerate(per_slot))
        raise CardioError(f"{path}: gates of unequal size (slices per time slot: {detail})")
    return slot_vec, slice_vec, n_slots, gated, list(vectors)


def read_dicom_volume(path: str | Path) -> GatedVolume:
    """An NM multi-frame short-axis reconstruction, gated or not, as (gates, slices, rows, cols)."""
    path = Path(path)
    with warnings.catch_warnings():
        # pydicom warns (on stderr, mid-run) about values it keeps anyway; each value used here is checked
        # instead, and a bad one is one error line naming the file
        warnings.simplefilter("ignore")
        ds = _open_dicom(path)
        pixels = _frames(ds, path)
    n_frames, rows, cols = pixels.shape
    slot_vec, slice_vec, n_slots, gated, vector_names = _frame_grid(ds, n_frames, path)
    _check_grid(slot_vec, slice_vec, n_slots, path)
    volume = np.zeros((n_slots, int(slice_vec.max()), rows, cols), dtype=np.float32)
    with np.errstate(over="ignore"):  # counts beyond float32 become inf, which check_volume reports
        volume[slot_vec - 1, slice_vec - 1] = pixels.astype(np.float32)
    spacing = _numbers(ds, "PixelSpacing", path, count=2)
    slice_spacing = _numbers(ds, "SpacingBetweenSlices", path) or _numbers(ds, "SliceThickness", path)
    rr, slots = _gating_info(ds, path)
    meta = {"format": "dicom", "modality": "NM", "image_type": [str(v) for v in (ds.get("ImageType") or [])],
            "number_of_frames": n_frames, "frame_increment_pointer": vector_names,
            "image_id": str(ds.get("ImageID", "")), "number_of_time_slots": n_slots if gated else 0}
    check_volume(volume, _name(path), gated=gated)
    orientation = from_header(ds, path, slice_vec)
    return GatedVolume(orientation.apply(volume), gated=gated, source=_name(path),
                       pixel_spacing=(spacing[0], spacing[1]) if spacing else None,
                       slice_spacing=abs(slice_spacing[0]) if slice_spacing else None, rr_ms=rr, time_slot_ms=slots,
                       meta=meta, orientation=orientation)


def read_polar_map(path: str | Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """A ready polar map (rings apex->base, sectors) from .npy or .csv (no header), as float64."""
    path = Path(path)
    if not path.is_file():
        raise CardioError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            arr = read_npy(path)
        elif suffix == ".csv":
            arr = _csv_map(path)
        else:
            raise CardioError(f"{path}: a polar map must be .npy or .csv, not {suffix!r}")
    except (ValueError, OSError, EOFError) as exc:
        raise CardioError(f"{path}: unreadable polar map ({exc})") from exc
    if arr.ndim != 2 or min(arr.shape) < 2:
        raise CardioError(f"{path}: a polar map is 2-D (rings, sectors), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise CardioError(f"{path}: polar map has non-numeric dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise CardioError(f"{path}: polar map holds {int((~np.isfinite(arr)).sum())} NaN/inf value(s); export it "
                          "with every cell measured, or leave the scan out")
    if shape is not None and arr.shape != tuple(shape):
        raise CardioError(f"{path}: polar map has shape {arr.shape}, expected {tuple(shape)} (rings, sectors)")
    if arr.max() == arr.min():
        raise CardioError(f"{path}: every cell of the polar map holds {float(arr.max()):g} (a blank export: no phase "
                          "varies)")
    return arr


def _csv_map(path: Path) -> np.ndarray:
    """A polar map written as CSV rows of numbers (no header) with ",", ";" or tab between values, decimal commas
    where ";" or tab separates them (cardio.data.cohort's rules for every CSV), logged where not "," and "."."""
    delimiter = csv_delimiter(path)
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    decimal = decimal_mark((c for line in text.splitlines() for c in line.split(delimiter)), delimiter, path)
    if (delimiter, decimal) != (",", "."):
        logging.getLogger("cardio.run.spect_polar").info("%s: read as a CSV with %s", path,
                                                         format_text(delimiter, decimal))
    return np.loadtxt(io.StringIO(text.replace(",", ".") if decimal == "," else text), delimiter=delimiter, ndmin=2)


def _uid(seed_parts: Sequence[str], what: str) -> str:
    # Deterministic UIDs (hash of the seed parts) so that re-writing a cohort gives identical files.
    return generate_uid(entropy_srcs=[*map(str, seed_parts), what]) if seed_parts else generate_uid()


def _nm_header(vol: np.ndarray, sop_uid: str, *, pixel_spacing_mm: float, slice_spacing_mm: float,
               patient_id: str, patient_sex: str, patient_age: int | None, uid_seed: Sequence[str],
               series_description: str, base_first: bool) -> Dataset:
    """File meta, patient, study, series and NM image modules of a gated short-axis volume."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = NuclearMedicineImageStorage
    meta.MediaStorageSOPInstanceUID = pydicom.uid.UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "RECON GATED TOMO", "EMISSION"]
    ds.SOPClassUID = NuclearMedicineImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ds.StudyTime = ds.AccessionNumber = ds.ReferringPhysicianName = ""
    ds.Modality = "NM"
    ds.Manufacturer = "cardio"
    ds.ManufacturerModelName = "gated SPECT phantom"
    ds.SeriesDescription = series_description
    ds.PatientName = "Anonymous"
    ds.PatientID = str(patient_id)
    ds.PatientBirthDate = ""
    ds.PatientSex = patient_sex
    if patient_age is not None:
        ds.PatientAge = f"{int(patient_age):03d}Y"
    ds.BodyPartExamined = "HEART"
    ds.StudyInstanceUID = _uid(uid_seed, "study")
    ds.SeriesInstanceUID = _uid(uid_seed, "series")
    ds.FrameOfReferenceUID = _uid(uid_seed, "frame-of-reference")
    ds.PositionReferenceIndicator = ""
    ds.StudyID = ""
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.PatientOrientation = ""
    ds.ImageID = "SA gated"
    ds.SliceThickness = f"{slice_spacing_mm:.4g}"
    ds.SpacingBetweenSlices = f"{-slice_spacing_mm if base_first else slice_spacing_mm:.4g}"
    ds.PixelSpacing = [f"{pixel_spacing_mm:.4g}", f"{pixel_spacing_mm:.4g}"]
    ds.CountsAccumulated = int(min(vol.sum(dtype=np.int64), 2**31 - 1))
    ds.TypeOfDetectorMotion = "STEP AND SHOOT"
    ds.BeatRejectionFlag = "N"
    ds.TriggerSourceOrType = "ECG"
    return ds


def _add_isotope_and_detector(ds: Dataset, geometry: bool) -> None:
    """NM Isotope and Detector modules: one 99mTc photopeak window (20% at 140 keV), one detector item."""
    window = Dataset()
    rng_item = Dataset()
    rng_item.EnergyWindowLowerLimit = "126"
    rng_item.EnergyWindowUpperLimit = "154"
    window.EnergyWindowRangeSequence = DicomSequence([rng_item])
    window.EnergyWindowName = "Tc99m"
    ds.EnergyWindowInformationSequence = DicomSequence([window])
    ds.RadiopharmaceuticalInformationSequence = DicomSequence([])
    detector = Dataset()
    if geometry:  # the short-axis plane in patient coordinates: columns lateral, rows inferior, normal to the base
        detector.ImagePositionPatient = ["0", "0", "0"]
        detector.ImageOrientationPatient = [f"{v:.6g}" for v in SHORT_AXIS_IOP]
    ds.DetectorInformationSequence = DicomSequence([detector])
    ds.NumberOfEnergyWindows = 1
    ds.NumberOfDetectors = 1


def _add_gating(ds: Dataset, rr_ms: float, n_gates: int) -> None:
    """NM Multi-gated Acquisition Module: R-R window and the start time of every time slot."""
    slot_ms = rr_ms / n_gates
    data_info = Dataset()
    data_info.FrameTime = f"{slot_ms:.6g}"
    data_info.NominalInterval = int(round(rr_ms))
    data_info.LowRRValue = int(round(rr_ms * 0.8))
    data_info.HighRRValue = int(round(rr_ms * 1.2))
    data_info.IntervalsAcquired = 0
    data_info.IntervalsRejected = 0
    slots = []
    for g in range(n_gates):
        item = Dataset()
        item.TimeSlotTime = f"{g * slot_ms:.6g}"
        slots.append(item)
    data_info.TimeSlotInformationSequence = DicomSequence(slots)
    gated = Dataset()
    gated.TriggerTime = "0"
    gated.CardiacFramingType = "FORW"
    gated.DataInformationSequence = DicomSequence([data_info])
    ds.GatedInformationSequence = DicomSequence([gated])


def _add_frames(ds: Dataset, vol: np.ndarray) -> None:
    """NM Multi-frame Module (which R-R window, time slot and slice each frame is; gate-major) and the
    16-bit pixel data."""
    n_gates, n_slices, rows, cols = vol.shape
    n_frames = n_gates * n_slices
    ds.NumberOfFrames = n_frames
    ds.FrameIncrementPointer = [Tag(0x0054, 0x0060), Tag(0x0054, 0x0070), Tag(0x0054, 0x0080)]
    ds.NumberOfRRIntervals = 1
    ds.RRIntervalVector = [1] * n_frames
    ds.NumberOfTimeSlots = n_gates
    ds.TimeSlotVector = np.repeat(np.arange(1, n_gates + 1), n_slices).tolist()
    ds.NumberOfSlices = n_slices
    ds.SliceVector = np.tile(np.arange(1, n_slices + 1), n_gates).tolist()

    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = vol.reshape(n_frames, rows, cols).astype("<u2").tobytes()
    ds["PixelData"].VR = "OW"


def write_gated_dicom(path: str | Path, volume: np.ndarray, *, pixel_spacing_mm: float = 5.0,
                      slice_spacing_mm: float = 6.0, rr_ms: float = 1000.0, patient_id: str = "ANONYMOUS",
                      patient_sex: str = "", patient_age: int | None = None,
                      uid_seed: Sequence[str] = (), series_description: str = "gated SPECT MPI short axis",
                      base_first: bool = False, geometry: bool = True) -> Path:
    """Write (gates, slices, rows, cols) counts as an NM multi-frame RECON GATED TOMO file.

    Frames are ordered gate-major (time slot slowest, slice fastest), indexed by R-R Interval,
    Time Slot and Slice Vectors named in the Frame Increment Pointer. Counts must be integers in
    0..65535 (stored as uint16). The file is written whole or not at all (cardio.atomic_path).
    `volume` is apex first; `base_first` stores the slices base first with a negative SpacingBetweenSlices
    (as some NM systems write it), `geometry=False` leaves out the plane's position and orientation.
    """
    path = Path(path)
    vol = np.asarray(volume)[:, ::-1] if base_first else np.asarray(volume)
    check_volume(vol, _name(path))
    if vol.min() < 0 or vol.max() > 65535:
        raise CardioError(f"{path}: counts must lie in 0..65535 for 16-bit NM pixel data "
                          f"(got {vol.min():g}..{vol.max():g})")
    vol = np.rint(vol).astype(np.uint16)
    ds = _nm_header(vol, _uid(uid_seed, "sop"), pixel_spacing_mm=pixel_spacing_mm,
                    slice_spacing_mm=slice_spacing_mm, patient_id=patient_id, patient_sex=patient_sex,
                    patient_age=patient_age, uid_seed=uid_seed, series_description=series_description,
                    base_first=base_first)
    _add_isotope_and_detector(ds, geometry)
    _add_gating(ds, rr_ms, vol.shape[0])
    _add_frames(ds, vol)
    with atomic_path(path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return path
