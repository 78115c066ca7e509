"""Reading A4C sequences (multi-frame DICOM, AVI/MP4, NumPy) for this plugin: frames, frame time, grey.

The plugin's own small reader while the core offers no shared cine service (its API is the one
such a service would have: read_cine, to_gray). pydicom decodes DICOM (JPEG through pylibjpeg; YBR
comes back as RGB), OpenCV the videos. Frame time: DICOM FrameTime, else the mean of
FrameTimeVector, else CineRate; a video's frame rate; none for NumPy (labels.csv gives it).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cardio import CardioError


@dataclass(frozen=True)
class Cine:
    frames: np.ndarray  # (T, H, W) or (T, H, W, 3) uint8
    frame_time_ms: float | None
    path: Path
    source: str


def _dicom(path: Path) -> tuple[np.ndarray, float | None]:
    import pydicom

    try:
        ds = pydicom.dcmread(path)
        frames = ds.pixel_array
    except Exception as e:  # damaged, not DICOM, no pixel data or an unsupported transfer syntax
        raise CardioError(f"{path}: unreadable DICOM ({' '.join(str(e).split())[:200]})") from None
    if int(ds.get("NumberOfFrames", 1) or 1) == 1:
        frames = frames[None]
    try:
        ft = float(ds.FrameTime) if ds.get("FrameTime") not in (None, "") else None
        if ft is None and ds.get("FrameTimeVector"):
            ft = float(np.mean([float(v) for v in ds.FrameTimeVector[1:]]))
        if ft is None and ds.get("CineRate"):
            ft = 1000.0 / float(ds.CineRate)
    except (TypeError, ValueError, ZeroDivisionError):
        raise CardioError(f"{path}: malformed frame timing in the DICOM header") from None
    return frames, ft


def _video(path: Path) -> tuple[np.ndarray, float | None]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    cap.release()
    if not frames:
        raise CardioError(f"{path}: no frames could be decoded")
    return np.stack(frames), (1000.0 / fps if fps and fps > 0 else None)


def read_cine(path: str | Path, *, min_frames: int = 2, need_frame_time: bool = False) -> Cine:
    path = Path(path)
    if not path.is_file():
        raise CardioError(f"{path}: sequence not found")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            frames, ft, source = np.load(path, allow_pickle=False), None, "npy"
        except (ValueError, OSError, EOFError) as e:
            raise CardioError(f"{path}: not a readable .npy array ({' '.join(str(e).split())[:200]})") from None
    elif suffix in (".avi", ".mp4"):
        (frames, ft), source = _video(path), suffix[1:]
    else:
        (frames, ft), source = _dicom(path), "dicom"
    if frames.ndim not in (3, 4) or (frames.ndim == 4 and frames.shape[-1] != 3) or len(frames) < min_frames:
        raise CardioError(f"{path}: expected at least {min_frames} frames (T, H, W[, 3]), got shape {frames.shape}")
    if need_frame_time and (ft is None or not ft > 0):
        raise CardioError(f"{path}: no frame timing (FrameTime, FrameTimeVector or CineRate)")
    return Cine(frames, ft, path, source)


def to_gray(frames: np.ndarray) -> np.ndarray:
    if frames.ndim == 3:
        return frames
    g = frames[..., 0] * 0.299 + frames[..., 1] * 0.587 + frames[..., 2] * 0.114
    return np.clip(np.rint(g), 0, 255).astype(np.uint8)
