"""Clip preprocessing: sector mask, crop to the sector, cubic resize, uint8 cache, clip sampling.

Every video is decoded once (cardio.cine), masked with the sector learned from frame-to-frame variance, cropped to
the sector's bounding box and resized with cubic interpolation; the result is cached as uint8 .npy in ctx.cache, so
training never decodes a video twice and an interrupted preprocessing restarts where it stopped.
"""
from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from cardio import Cache, CardioError
from cardio.cine import read_cine, sector_mask, to_gray

log = logging.getLogger(__name__)
CACHE_VERSION = 1


def preprocess_frames(frames: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(T, size, size) uint8: greyscale, everything outside the sector zeroed, cropped to it, cubic resize;
    and the (H, W) mask."""
    import cv2

    gray = to_gray(frames)
    mask = sector_mask(frames)
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    masked = gray * mask[None]
    crop = masked[:, rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    out = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_CUBIC) for f in crop])
    return out.astype(np.uint8), mask


def cached_clip(cache: Cache, path: str | Path, size: int) -> Path:
    """The cache entry (.npy) of one preprocessed video; keyed by the file's path, size and mtime."""
    path = Path(path)
    st = path.stat()
    key = {"file": str(path.resolve()), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "size": size}

    def build(tmp: Path) -> None:
        clip, _ = preprocess_frames(read_cine(path).frames, size)
        with open(tmp, "wb") as fh:
            np.save(fh, clip)

    return cache.get("echo_cmr_clips", key, build, suffix=".npy", version=CACHE_VERSION)


def _one(args: tuple[str, str, int]) -> str:
    root, path, size = args
    return str(cached_clip(Cache(root), path, size))


def preprocess_all(paths: list[str], size: int, ctx, workers: int | None = None) -> list[str]:
    """Cache entries of every video, built in worker processes with a progress bar; under torchrun each rank
    builds its share first (rank::world_size), then finds the others' entries (the cache's file lock waits)."""
    root = str(ctx.cache.root)
    rank, world = int(getattr(ctx, "rank", 0)), int(getattr(ctx, "world_size", 1))
    order = paths[rank::world] + [p for i, p in enumerate(paths) if i % world != rank]
    workers = max(1, min(int(workers or os.cpu_count() or 1), len(order)))
    jobs = [(root, p, size) for p in order]
    if workers == 1:
        built = [_one(j) for j in ctx.progress(jobs, desc="preprocess echo clips", total=len(jobs))]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            built = list(ctx.progress(pool.map(_one, jobs), desc="preprocess echo clips", total=len(jobs)))
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
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise CardioError(f"{path}: damaged clip cache entry ({exc})") from None
