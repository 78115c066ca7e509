"""Cine (multi-frame video) reading and writing shared by the echo plugins.

`read_cine` turns an ultrasound multi-frame DICOM (pydicom's documented pixel-data handlers), an AVI/MP4 (OpenCV)
or a .npy array into uint8 frames plus the header's frame time; `sector_mask` finds the ultrasound sector from
frame-to-frame variance. Errors are one-line `CardioError`s naming the file.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cardio.data import CardioError
from cardio.data.file_kind import read_dicom
from cardio.data.files import check_dicom_frames, npy_header, read_npy

__all__ = ["Cine", "cine_problem", "frame_time_problem", "read_cine", "sector_mask", "to_gray", "write_dicom_cine",
           "write_video"]

US_MULTIFRAME_STORAGE = "1.2.840.10008.5.1.4.1.1.3.1"
_VIDEO_SUFFIXES = {".avi": "avi", ".mp4": "mp4", ".mov": "mp4", ".m4v": "mp4"}
# pydicom names the missing plug-in by its import name; users install the PyPI distribution.
_INSTALL_NAMES = {"pylibjpeg": "pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg", "gdcm": "python-gdcm",
                  "pillow": "pillow", "numpy": "numpy"}


@dataclass(frozen=True)
class Cine:
    frames: np.ndarray            # (T, H, W) uint8 greyscale, or (T, H, W, 3) uint8 RGB
    frame_time_ms: float | None   # from the header; None when absent
    path: Path
    source: str                   # "dicom" | "avi" | "mp4" | "npy"
    photometric: str | None = None
    transfer_syntax: str | None = None
    pixel_spacing_mm: tuple[float, float] | None = None   # (row, col) from SequenceOfUltrasoundRegions

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def fps(self) -> float | None:
        return 1000.0 / self.frame_time_ms if self.frame_time_ms else None


def read_cine(path: str | Path, *, min_frames: int = 2, need_frame_time: bool = False) -> Cine:
    """Read a cine as uint8 frames; DICOM by content or .dcm suffix, AVI/MP4 by suffix, .npy arrays."""
    path = Path(path)
    if not path.is_file():
        raise CardioError(f"{path}: cine file not found")
    suffix = path.suffix.lower()
    if suffix in _VIDEO_SUFFIXES:
        cine = _read_video(path, _VIDEO_SUFFIXES[suffix])
    elif suffix == ".npy":
        cine = _read_npy(path)
    else:
        cine = _read_dicom(path)
    if cine.n_frames < min_frames:
        raise CardioError(f"{path}: {cine.n_frames} frame(s), a cine needs at least {min_frames}")
    if need_frame_time and not cine.frame_time_ms:
        raise CardioError(f"{path}: no frame timing in the header (FrameTime, FrameTimeVector, CineRate or FPS)")
    return cine


def probe(path: str | Path) -> int:
    """The number of frames a cine holds, from its header and size without decoding it (cardio validate);
    a file that cannot hold its frames (truncated pixel data, an empty or unreadable video) is a CardioError."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in _VIDEO_SUFFIXES:
        import cv2

        if path.stat().st_size == 0:
            raise CardioError(f"{path}: empty video file (0 bytes)")
        cap = cv2.VideoCapture(str(path))
        try:
            ok = cap.isOpened() and cap.read()[0]
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        finally:
            cap.release()
        if not ok or n < 1:
            raise CardioError(f"{path}: video has no decodable frames")
        return n
    if suffix == ".npy":
        shape = npy_header(path)[0]  # its claimed size checked against the file's
        return int(shape[0]) if shape else 0
    ds = read_dicom(path)  # reads the pixel bytes, decodes nothing
    _not_echo(ds, path)
    if "PixelData" not in ds:
        raise CardioError(f"{path}: DICOM has no pixel data")
    n = int(ds.get("NumberOfFrames", 1) or 0)
    if n < 1:
        raise CardioError(f"{path}: NumberOfFrames is {n}: the file declares no frame")
    tsyntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if tsyntax is None or not tsyntax.is_compressed:
        need = (int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1)) * n
                * -(-int(ds.get("BitsAllocated", 8)) // 8))
        if len(ds.PixelData) < need:
            raise CardioError(f"{path}: truncated pixel data ({len(ds.PixelData)} of {need} bytes for {n} frames)")
    return n


def _read_npy(path: Path) -> Cine:
    arr = read_npy(path)
    if arr.ndim not in (3, 4) or (arr.ndim == 4 and arr.shape[-1] != 3):
        raise CardioError(f"{path}: .npy cine must be (T, H, W) or (T, H, W, 3), got {arr.shape}")
    if arr.dtype.kind == "f":  # one NaN would make the min-max scaling blank every frame
        bad = ~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1)
        if bad.any():
            frames = np.flatnonzero(bad)
            raise CardioError(f"{path}: {bad.sum()} frame(s) hold NaN or infinite values (frames "
                              f"{frames[:10].tolist()}{' ...' if len(frames) > 10 else ''})")
    elif arr.dtype.kind not in "ui":
        raise CardioError(f"{path}: .npy cine must hold numbers, got {arr.dtype}")
    return Cine(_to_uint8(arr), None, path, "npy")


def _read_video(path: Path, source: str) -> Cine:
    import cv2

    if path.stat().st_size == 0:
        raise CardioError(f"{path}: empty video file (0 bytes)")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise CardioError(f"{path}: OpenCV cannot open this video")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        frames = []
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
    if not frames:
        raise CardioError(f"{path}: video has no decodable frames")
    return Cine(np.stack(frames), 1000.0 / fps if fps > 0 else None, path, source, photometric="RGB")


#: DICOM modalities that are no cine of the heart an echo plugin reads (an MR or CT slice, a nuclear scan, an X-ray).
NOT_CINE = {"MR": "an MR image", "CT": "a CT image", "NM": "a nuclear-medicine image", "PT": "a PET image",
            "CR": "an X-ray", "DX": "an X-ray", "MG": "a mammogram", "OT": "a secondary capture"}


def _not_echo(ds, path: Path) -> None:
    """A DICOM of another modality given as an echo clip: named by its modality, not by its frame count."""
    modality = str(ds.get("Modality", "")).strip().upper()
    if modality in NOT_CINE:
        raise CardioError(f"{path}: {NOT_CINE[modality]} (Modality {modality}, {int(ds.get('NumberOfFrames', 1) or 1)} "
                          "frame(s)), not an ultrasound cine (Modality US): the row names the wrong file")


def _read_dicom(path: Path) -> Cine:
    ds = read_dicom(path)
    _not_echo(ds, path)
    if "PixelData" not in ds:
        raise CardioError(f"{path}: DICOM has no pixel data")
    tsyntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if tsyntax is not None and tsyntax.is_compressed:
        _require_decoder(path, tsyntax)
    declared = ds.get("NumberOfFrames", 1)
    try:
        n_frames = int(declared if declared not in (None, "") else 1)
    except (TypeError, ValueError):
        raise CardioError(f"{path}: NumberOfFrames is {declared!r}, not a number") from None
    if n_frames < 1:
        raise CardioError(f"{path}: NumberOfFrames is {n_frames}: the file declares no frame")
    check_dicom_frames(ds, path, n_frames)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    try:
        arr = ds.pixel_array  # pydicom 3 returns RGB for YBR_FULL/YBR_FULL_422
    except Exception as exc:  # the handlers raise many types; all mean "this file's pixels cannot be decoded"
        raise CardioError(f"{path}: pixel data cannot be decoded ({type(exc).__name__}: {exc})") from None
    samples = int(ds.get("SamplesPerPixel", 1))
    if n_frames == 1:
        arr = arr[None]
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        arr = apply_color_lut(arr, ds)
        samples = 3
    elif photometric == "MONOCHROME1":
        arr = arr.max() - arr if arr.dtype.kind == "f" else np.iinfo(arr.dtype).max - arr
        if ds.get("BitsStored") and arr.dtype.kind == "u":
            arr = arr >> max(0, arr.dtype.itemsize * 8 - int(ds.BitsStored))
    if samples == 1 and arr.ndim == 4:
        arr = arr[..., 0]
    bits = int(ds.get("BitsStored", 8))
    return Cine(_to_uint8(arr, bits=None if photometric == "PALETTE COLOR" else bits), _dicom_frame_time(ds), path,
                "dicom", photometric=photometric, transfer_syntax=str(tsyntax) if tsyntax else None,
                pixel_spacing_mm=_dicom_spacing(ds))


def _require_decoder(path: Path, tsyntax) -> None:
    from pydicom.pixels import get_decoder

    try:
        decoder = get_decoder(tsyntax)
    except NotImplementedError:
        raise CardioError(f"{path}: pydicom has no decoder for transfer syntax {tsyntax.name} ({tsyntax})") from None
    if not decoder.is_available:
        missing = "; ".join(decoder.missing_dependencies) or "a pixel-data plug-in"
        names = sorted({_INSTALL_NAMES.get(m.split(" ")[0], m.split(" ")[0]) for m in decoder.missing_dependencies})
        raise CardioError(f"{path}: no installed decoder for transfer syntax {tsyntax.name}: "
                          f"pip install {' '.join(names) or 'pylibjpeg-libjpeg'} ({missing})")


def _dicom_frame_time(ds) -> float | None:
    if ds.get("FrameTime"):
        return float(ds.FrameTime)
    vector = ds.get("FrameTimeVector")
    if vector is not None and len(vector) > 1:
        return float(np.mean(np.asarray(vector, dtype=float)[1:]))  # first entry is 0 by definition
    for tag in ("CineRate", "RecommendedDisplayFrameRate"):
        if ds.get(tag):
            return 1000.0 / float(ds.get(tag))
    return None


def _dicom_spacing(ds) -> tuple[float, float] | None:
    regions = ds.get("SequenceOfUltrasoundRegions")
    if not regions:
        return None
    region = regions[0]
    dy, dx = region.get("PhysicalDeltaY"), region.get("PhysicalDeltaX")
    # units code 3 = cm (DICOM C.8.5.5.1.15); others (seconds, Hz for Doppler) are not spatial
    units = (region.get("PhysicalUnitsYDirection"), region.get("PhysicalUnitsXDirection"))
    if dy is None or dx is None or units != (3, 3):
        return None
    return (abs(float(dy)) * 10.0, abs(float(dx)) * 10.0)


def _to_uint8(arr: np.ndarray, bits: int | None = None) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype.kind == "u" and bits is not None and bits <= 8:
        return arr.astype(np.uint8)
    if arr.dtype.kind == "u":  # 16-bit (palette LUT output, or >8 bits stored): keep the top 8 bits
        top = bits if bits is not None else arr.dtype.itemsize * 8
        return (arr >> max(0, top - 8)).astype(np.uint8)
    arr = arr.astype(np.float64)
    lo, hi = float(arr.min()), float(arr.max())
    return np.zeros(arr.shape, np.uint8) if hi <= lo else np.round((arr - lo) / (hi - lo) * 255).astype(np.uint8)


def to_gray(frames: np.ndarray) -> np.ndarray:
    """(T, H, W) uint8 greyscale from (T, H, W) or (T, H, W, 3) RGB frames (ITU-R BT.601 luma, via OpenCV)."""
    import cv2

    frames = np.asarray(frames)
    if frames.ndim == 3:
        return _to_uint8(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise CardioError(f"frames must be (T, H, W) or (T, H, W, 3), got {frames.shape}")
    t, h, w, _ = frames.shape
    return cv2.cvtColor(_to_uint8(frames).reshape(t * h, w, 3), cv2.COLOR_RGB2GRAY).reshape(t, h, w)


def _to_rgb(frames: np.ndarray) -> np.ndarray:
    frames = _to_uint8(np.asarray(frames))
    return np.repeat(frames[..., None], 3, axis=-1) if frames.ndim == 3 else frames


def write_dicom_cine(path: str | Path, frames: np.ndarray, frame_time_ms: float, *, photometric: str = "MONOCHROME2",
                     transfer_syntax: str = "explicit", uid_entropy: tuple[str, ...] = ()) -> Path:
    """Write frames as an Ultrasound Multi-frame Image DICOM (synthetic cohorts, tests).

    transfer_syntax: explicit | rle | jpeg_baseline; photometric: MONOCHROME2 | RGB | YBR_FULL | YBR_FULL_422 |
    PALETTE COLOR (8-bit indices into a 256-entry 16-bit LUT: the grey value mapped through a warm ramp).
    uid_entropy: the UIDs are derived from these texts (the same call writes the same bytes); empty: random UIDs.
    """
    from pydicom.uid import RLELossless

    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim not in (3, 4):
        raise CardioError(f"{path}: frames must be (T, H, W) or (T, H, W, 3), got {frames.shape}")
    combos = {"explicit": {"MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422", "PALETTE COLOR"},
              "rle": {"MONOCHROME2", "RGB", "YBR_FULL", "PALETTE COLOR"},
              "jpeg_baseline": {"MONOCHROME2", "YBR_FULL", "YBR_FULL_422"}}
    if transfer_syntax not in combos:
        raise CardioError(f"{path}: transfer_syntax must be one of {sorted(combos)}, got {transfer_syntax!r}")
    if photometric not in combos[transfer_syntax]:
        raise CardioError(f"{path}: photometric {photometric!r} is not written with {transfer_syntax}")
    ds = _cine_header(frames, frame_time_ms, photometric, uid_entropy)
    data = _cine_pixels(ds, frames, photometric, transfer_syntax, path)
    if transfer_syntax == "jpeg_baseline":
        _encode_jpeg(ds, data if photometric == "MONOCHROME2" else _to_rgb(frames), photometric)
    else:
        ds.PixelData = np.ascontiguousarray(data).tobytes()
        ds["PixelData"].VR = "OB"
        if transfer_syntax == "rle":
            ds.compress(RLELossless)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _cine_header(frames: np.ndarray, frame_time_ms: float, photometric: str, uid_entropy: tuple[str, ...] = ()):
    """The dataset of an 8-bit US multi-frame image: ids, geometry, frame timing (no pixels yet)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

    def uid(kind: str) -> UID:
        return generate_uid(entropy_srcs=[*uid_entropy, kind]) if uid_entropy else generate_uid()

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID(US_MULTIFRAME_STORAGE)
    ds.file_meta.MediaStorageSOPInstanceUID = uid("instance")
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = US_MULTIFRAME_STORAGE
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = uid("study"), uid("series")
    ds.Modality = "US"
    ds.NumberOfFrames = int(frames.shape[0])
    ds.Rows, ds.Columns = int(frames.shape[1]), int(frames.shape[2])
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.FrameTime = f"{float(frame_time_ms):.4f}"
    ds.FrameIncrementPointer = 0x00181063
    ds.PhotometricInterpretation = photometric
    return ds


def _cine_pixels(ds, frames: np.ndarray, photometric: str, transfer_syntax: str, path: Path) -> np.ndarray:
    """The frames in the photometric interpretation's layout (grey indices with a LUT, RGB, YBR, packed 4:2:2)."""
    from pydicom.pixels import convert_color_space

    if photometric in ("MONOCHROME2", "PALETTE COLOR"):
        ds.SamplesPerPixel = 1
        if photometric == "PALETTE COLOR":
            ramp = np.arange(256, dtype=np.float64) / 255.0
            for name, curve in (("Red", ramp ** 0.5), ("Green", ramp), ("Blue", ramp ** 2)):
                setattr(ds, f"{name}PaletteColorLookupTableDescriptor", [256, 0, 16])
                lut = np.round(curve * 65535).astype("<u2")
                setattr(ds, f"{name}PaletteColorLookupTableData", lut.tobytes())
        return to_gray(frames)
    ds.SamplesPerPixel = 3
    ds.PlanarConfiguration = 0
    rgb = _to_rgb(frames)
    data = rgb if photometric == "RGB" else convert_color_space(rgb, "RGB", "YBR_FULL")
    if photometric == "YBR_FULL_422" and transfer_syntax == "explicit":
        if rgb.shape[2] % 2:
            raise CardioError(f"{path}: YBR_FULL_422 needs an even number of columns, got {rgb.shape[2]}")
        # native 4:2:2 packs each pixel pair as Y1 Y2 Cb Cr (PS3.5 8.2.1); no library writes it
        pairs = data.reshape(data.shape[0], data.shape[1], -1, 2, 3).astype(np.uint16)
        chroma = ((pairs[..., 0, 1:] + pairs[..., 1, 1:] + 1) // 2).astype(np.uint8)
        data = np.concatenate([pairs[..., :, 0].astype(np.uint8), chroma], axis=-1)
    return data


def _encode_jpeg(ds, frames: np.ndarray, photometric: str) -> None:
    """Baseline JPEG, one fragment per frame (Pillow converts RGB to YCbCr; 4:2:2 only for YBR_FULL_422)."""
    import io

    from PIL import Image
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit

    encoded = []
    for frame in frames:
        buf = io.BytesIO()
        image = Image.fromarray(frame, mode="L" if frame.ndim == 2 else "RGB")
        image.save(buf, format="JPEG", quality=95, subsampling=1 if photometric == "YBR_FULL_422" else 0)
        encoded.append(buf.getvalue())
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PixelData = encapsulate(encoded)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.LossyImageCompression = "01"


def write_video(path: str | Path, frames: np.ndarray, fps: float) -> Path:
    """Write frames as .avi (Motion-JPEG) or .mp4 (MPEG-4 part 2) with OpenCV."""
    import cv2

    path = Path(path)
    suffix = path.suffix.lower()
    codecs = {".avi": "MJPG", ".mp4": "mp4v"}
    if suffix not in codecs:
        raise CardioError(f"{path}: write_video writes .avi or .mp4")
    rgb = _to_rgb(frames)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*codecs[suffix]), float(fps),
                             (int(rgb.shape[2]), int(rgb.shape[1])))
    if not writer.isOpened():
        raise CardioError(f"{path}: OpenCV cannot open a {codecs[suffix]} writer")
    try:
        for frame in rgb:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return path


def sector_mask(frames: np.ndarray) -> np.ndarray:
    """(H, W) bool mask of the ultrasound sector, learned from frame-to-frame variance.

    Static overlays (text, scales, calipers) do not change between frames; a burned-in ECG trace changes but is
    thin and lies apart from the sector. So: pixels whose mean absolute frame difference exceeds half an Otsu threshold,
    opened to drop thin lines, the largest connected component kept and filled to its convex hull (a sector is
    convex). With fewer than two frames, or no moving pixels, every pixel is kept.
    """
    import cv2

    gray = to_gray(frames).astype(np.float32)
    h, w = gray.shape[1:]
    if gray.shape[0] < 2:
        return np.ones((h, w), bool)
    motion = np.abs(np.diff(gray, axis=0)).mean(axis=0)
    if motion.max() <= 0:
        return np.ones((h, w), bool)
    motion8 = np.round(motion / motion.max() * 255).astype(np.uint8)
    k = max(3, (min(h, w) // 40) | 1)
    motion8 = cv2.GaussianBlur(motion8, (k, k), 0)
    otsu, _ = cv2.threshold(motion8, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    # half the Otsu level: Otsu alone drops the dim far field and the apex of the sector
    moving = (motion8 > 0.5 * otsu).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    moving = cv2.morphologyEx(moving, cv2.MORPH_OPEN, kernel)
    moving = cv2.morphologyEx(moving, cv2.MORPH_CLOSE, kernel)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(moving, connectivity=8)
    if n <= 1:
        return np.ones((h, w), bool)
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    points = cv2.findNonZero((labels == biggest).astype(np.uint8))
    mask = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(points), 1)
    return mask.astype(bool)


#: A cine is frozen when no frame differs from its first by this many grey levels on average: a still image exported as
#: a loop (a real clip's moving walls differ by several).
FROZEN_GREY = 0.5
#: A cine is saturated when this share of its lit pixels sits at the brightest value: the gain clips the tissue.
SATURATED_SHARE = 0.25
#: A cine is inverted when the top corners (outside an ultrasound sector, black in every real clip) are this bright.
INVERTED_CORNER = 0.8


def cine_problem(frames: np.ndarray) -> str | None:
    """What makes a cine (T, H, W[, 3]) no image of a beating heart, whichever plugin reads it (echo clips, M-mode
    sequences): one value everywhere (a blank export), one still image repeated (a frozen clip), or a quarter of its
    lit pixels at the brightest value (the gain saturates); None for a cine that shows motion."""
    x = np.asarray(frames)
    if x.max() == x.min():
        return f"every pixel of its {len(x)} frame(s) holds {x.flat[0]} (a blank export); export the clip again"
    grey = x.mean(axis=-1) if x.ndim == 4 else x
    top = np.iinfo(x.dtype).max if np.issubdtype(x.dtype, np.integer) else float(x.max())
    corners = _corners(grey)
    if corners >= INVERTED_CORNER * top:
        return (f"its corners, outside the ultrasound sector, are white (median grey {corners:g} of {top:g}): the grey "
                "scale is inverted (a MONOCHROME1 image, or an export with inverted colours); export it again")
    # saturation before motion: a clip whose tissue is clipped white hardly changes from frame to frame, and is no
    # still image for that
    lit = int((grey > 0.1 * top).sum())  # tissue: a JPEG clip's background holds grey levels of 1 or 2
    share = float((grey >= top).sum()) / max(lit, 1)
    if share >= SATURATED_SHARE:
        return (f"{100 * share:.0f}% of its lit pixels sit at the brightest value ({top:g}): the gain saturates and "
                "the tissue is clipped; export it with a lower gain, or leave it out")
    first = x[0].astype(np.float32)
    moved = max((float(np.abs(f.astype(np.float32) - first).mean()) for f in x[1:]), default=0.0)
    if len(x) > 1 and moved < FROZEN_GREY:
        return (f"its {len(x)} frames are one still image (no frame differs from the first by {FROZEN_GREY:g} grey "
                "level on average: a still exported as a loop); export the moving clip, or leave it out")
    return None


#: Frame times (ms) of an echo cine: 500 frames per second (tissue Doppler) to 7 (an old exercise echo's 100 ms and
#: 1994 samples' 76 ms pass).
FRAME_TIME_MS = (2.0, 150.0)


def frame_time_problem(frame_time_ms: float | None, source: str = "its header") -> str | None:
    """A frame time no echo cine has (a frame time typed in seconds or tenths, a header's rate read as its time)."""
    if frame_time_ms is None or FRAME_TIME_MS[0] <= frame_time_ms <= FRAME_TIME_MS[1]:
        return None
    return (f"{source} gives a frame time of {frame_time_ms:g} ms ({1000 / frame_time_ms:.3g} frames per second); an "
            f"echo cine's lies between {FRAME_TIME_MS[0]:g} and {FRAME_TIME_MS[1]:g} ms: is the rate right?")


def _corners(grey: np.ndarray) -> float:
    """The median grey of the two top corners (a tenth of each side), outside any ultrasound sector's fan."""
    h, w = grey.shape[-2:]
    dh, dw = max(1, h // 10), max(1, w // 10)
    return float(np.median(np.concatenate([grey[..., :dh, :dw].ravel(), grey[..., :dh, -dw:].ravel()])))
