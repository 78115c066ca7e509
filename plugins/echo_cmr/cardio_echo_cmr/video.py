"""Clip preprocessing: frame-rate resampling, sector mask, crop to the sector, cubic resize, uint8 cache, clip
sampling.

Each video is decoded once (cardio_imaging.cine), resampled in time to `clip.fps` (the nearest frame at each output
time, from the DICOM FrameTime or the container's rate), masked with the sector learned from frame-to-frame variance,
cropped to the sector's bounding box and resized with cubic interpolation, keeping the physical aspect ratio (pixel
spacing from the DICOM ultrasound regions, else square pixels) with the rest of the square zero; the result is
cached as uint8 .npy in ctx.cache, so training never decodes a video twice and an interrupted preprocessing restarts
where it stopped.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from cardio import Cache, CardioError
from cardio.data.files import npy_header, read_npy
from cardio_echo_cmr.settings import Clip
from cardio_imaging.cine import read_cine, sector_mask, to_gray

log = logging.getLogger(__name__)
CACHE_VERSION = 2


def resample_times(n_frames: int, fps_in: float, fps_out: float) -> np.ndarray:
    """Indices of the frames nearest to each output time when a video at fps_in is shown at fps_out (same span)."""
    n_out = max(1, int(round(n_frames * fps_out / fps_in)))
    return np.minimum(np.round(np.arange(n_out) * fps_in / fps_out).astype(int), n_frames - 1)


def fit_size(height: int, width: int, size: int, spacing: tuple[float, float] | None) -> tuple[int, int]:
    """(rows, cols) of a crop of height x width pixels resized into size x size at its physical aspect ratio
    (spacing: (row, col) mm per pixel; None: square pixels)."""
    dy, dx = spacing or (1.0, 1.0)
    tall, wide = height * dy, width * dx
    scale = size / max(tall, wide)
    return max(1, min(size, round(tall * scale))), max(1, min(size, round(wide * scale)))


def preprocess_frames(frames: np.ndarray, size: int, spacing: tuple[float, float] | None = None,
                      keep_aspect: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(T, size, size) uint8: greyscale, everything outside the sector zeroed, cropped to it, cubic resize (at the
    physical aspect ratio, centred, when keep_aspect); and the (H, W) mask."""
    import cv2

    gray = to_gray(frames)
    mask = sector_mask(frames)
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    masked = gray * mask[None]
    crop = masked[:, rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    height, width = crop.shape[1:]
    h, w = fit_size(height, width, size, spacing) if keep_aspect else (size, size)
    out = np.zeros((len(crop), size, size), np.uint8)
    top, left = (size - h) // 2, (size - w) // 2
    for i, f in enumerate(crop):
        out[i, top:top + h, left:left + w] = np.clip(cv2.resize(f, (w, h), interpolation=cv2.INTER_CUBIC), 0, 255)
    return out, mask


def read_frames(path: Path, fps: float | None) -> tuple[np.ndarray, tuple[float, float] | None]:
    """A video's frames at `fps` (None: as recorded) and its pixel spacing."""
    cine = read_cine(path)
    frames = cine.frames
    if fps:
        if not cine.fps:
            raise CardioError(f"{path}: no frame rate in the file (FrameTime, or the container's rate); it cannot "
                              "be resampled to echo_cmr.clip.fps (null keeps every video's own frames)")
        frames = frames[resample_times(len(frames), cine.fps, float(fps))]
    return frames, cine.pixel_spacing_mm


def cached_clip(cache: Cache, path: str | Path, clip: Clip) -> Path:
    """The cache entry (.npy) of one preprocessed video; keyed by the file's path, mtime and the clip settings."""
    path = Path(path)
    st = path.stat()
    size, fps, keep_aspect = clip.size, clip.fps, clip.keep_aspect
    key = {"file": str(path.resolve()), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "size": size, "fps": fps,
           "keep_aspect": keep_aspect}

    def build(tmp: Path) -> None:
        frames, spacing = read_frames(path, fps)
        out, _ = preprocess_frames(frames, size, spacing, keep_aspect)
        with open(tmp, "wb") as fh:
            np.save(fh, out)

    return cache.get("echo_cmr_clips", key, build, suffix=".npy", version=CACHE_VERSION)


def _one(args: tuple[str, str, Clip]) -> str:
    root, path, clip = args
    return str(cached_clip(Cache(root), path, clip))


def preprocess_all(paths: list[str], clip: Clip, ctx, workers: int | None = None) -> list[str]:
    """Cache entries of every video, built in `workers` processes (ctx.map; 0 or None: the run's CPUs) with a
    progress bar; under torchrun each rank builds its share first (rank::world_size), then finds the others'
    entries (the cache's file lock waits)."""
    root = str(ctx.cache.root)
    rank, world = int(getattr(ctx, "rank", 0)), int(getattr(ctx, "world_size", 1))
    order = paths[rank::world] + [p for i, p in enumerate(paths) if i % world != rank]
    built = ctx.map(_one, [(root, p, clip) for p in order], desc="preprocess echo clips", workers=workers or None)
    where = dict(zip(order, built))
    return [where[p] for p in paths]


def sample_clip(video: np.ndarray, start: int, length: int, period: int) -> tuple[np.ndarray, int]:
    """`length` frames from `start` every `period` frames; frames past the end repeat the last one.

    Returns the clip and the number of padded frames (the loader reports them).
    """
    idx = start + period * np.arange(length)
    padded = int((idx >= len(video)).sum())
    return video[np.clip(idx, 0, len(video) - 1)], padded


def clip_starts(n_frames: int, length: int, period: int) -> list[int]:
    """Starts of every non-overlapping clip of a video (test-time averaging); one start for a short video."""
    span = length * period
    return list(range(0, max(1, n_frames - span + 1), span)) or [0]


def load_clip(path: str) -> np.ndarray:
    try:
        return read_npy(path)  # the cache is not trusted: its header is checked like a user's record
    except CardioError as exc:
        raise CardioError(f"damaged clip cache entry: {exc}") from None


def clip_shape(path: str) -> tuple[int, ...]:
    """(frames, size, size) of a cached clip, from its header alone (checked as load_clip checks it)."""
    try:
        return npy_header(path)[0]
    except CardioError as exc:
        raise CardioError(f"damaged clip cache entry: {exc}") from None
