"""Clips per second: echo_cmr's cached uint8 loader vs decoding each video with OpenCV per item (EchoNet-Dynamic's
loader), on the same AVI files and checked to give the same tensors; prints the ratio (goal >= 10x).

    .venv/bin/python benchmarks/echo_loader.py [--videos 24] [--frames 96] [--size 112] [--epochs 3]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import torch

from cardio import Cache
from cardio_echo_cmr import synthetic
from cardio_echo_cmr.training import ClipDataset
from cardio_echo_cmr.video import load_clip, sample_clip
from cardio_imaging.cine import write_video


def echonet_item(path: str, start: int, length: int, period: int) -> torch.Tensor:
    """EchoNet-Dynamic's way: open and decode the whole video with OpenCV on every item, then take the clip."""
    cap = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY))
    cap.release()
    clip, _ = sample_clip(np.stack(frames), start, length, period)
    return torch.from_numpy(clip.astype(np.float32))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=24)
    ap.add_argument("--frames", type=int, default=96)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--clip", type=int, default=32)
    ap.add_argument("--period", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: checks the script runs")
    a = ap.parse_args()
    if a.smoke:
        a.videos, a.frames, a.size, a.clip, a.epochs = 3, 24, 32, 8, 1
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        rng = np.random.default_rng(0)
        paths = []
        for i in range(a.videos):  # already masked and sized, as EchoNet's AVIs are
            frames = synthetic.render_view(synthetic.VIEWS[i % 3], set(), rng, n_frames=a.frames, height=a.size,
                                           width=a.size, reduction=0.0)
            paths.append(str(write_video(tmp / f"v{i}.avi", frames, fps=30)))
        cache = Cache(tmp / "cache")
        # the cache stores the decoded grey frames at their size (preprocessing at this size is the identity
        # up to the mask); build it once, outside the timed loop, as featurize does before training
        t0 = time.perf_counter()
        entries = []
        for p in paths:
            key = {"bench": p}
            entries.append(str(cache.get("bench", key, partial(_save_gray, p), suffix=".npy")))
        build_s = time.perf_counter() - t0
        starts = rng.integers(0, a.frames - a.clip * a.period + 1, size=(a.epochs, a.videos))
        ds = ClipDataset(entries, None, a.clip, a.period, train=False)
        t0 = time.perf_counter()  # as ClipDataset serves an item: its cached .npy read, then the clip cut
        ours = [torch.from_numpy(sample_clip(load_clip(ds.paths[j]), int(starts[e, j]), a.clip, a.period)[0]
                                 .astype(np.float32)) for e in range(a.epochs) for j in range(a.videos)]
        cached_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        theirs = [echonet_item(paths[j], int(starts[e, j]), a.clip, a.period)
                  for e in range(a.epochs) for j in range(a.videos)]
        echonet_s = time.perf_counter() - t0
        same = all(torch.equal(x, y) for x, y in zip(ours, theirs))
        n = a.epochs * a.videos
        print(f"{a.videos} AVI videos x {a.frames} frames {a.size}x{a.size}, clips of {a.clip} at period {a.period}, "
              f"{a.epochs} epochs ({n} clips)")
        print(f"cache build (one decode per video, once): {build_s:.2f} s")
        print(f"cached loader:          {n / cached_s:10.1f} clips/s")
        print(f"per-item OpenCV decode: {n / echonet_s:10.1f} clips/s")
        print(f"same tensors: {same}")
        print(f"ratio cached / per-item: {echonet_s / cached_s:.1f}x (goal >= 10x)")


def _save_gray(path: str, target: Path) -> None:
    """The cache's builder: the clip's grey frames as .npy at `target`."""
    with open(target, "wb") as f:
        np.save(f, _gray(path))


def _gray(path: str) -> np.ndarray:
    from cardio_imaging.cine import read_cine, to_gray

    return to_gray(read_cine(path).frames)


if __name__ == "__main__":
    main()
