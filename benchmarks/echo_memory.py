"""What echo_cmr's clip datasets hold per video: peak RSS of one training epoch (ClipDataset served as the engine
serves it on the CPU: on_device, then take per batch) and one pass of test-time windows (AllClips) at two cohort
sizes, one process per size, and the growth per video between them.

    .venv/bin/python benchmarks/echo_memory.py --sizes 100 400                # this checkout's plugin
    /other/checkout/.venv/bin/python benchmarks/echo_memory.py --sizes 100 400   # the same script against other code

Each size writes its clips (uint8, frames x size x size, as featurize leaves them in the cache) into a temporary
folder and reads them with the plugin's own datasets; no network runs, so the figures are the data path's alone.
The peak RSS is the child's ru_maxrss after each step (a peak so far: it never falls); per video is the difference
between the two sizes over the difference in videos, which cancels the interpreter and torch.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(n: int, size: int, frames: int, folder: Path) -> dict:
    """Write n clips, then one epoch of ClipDataset batches and one pass of AllClips; peak RSS (MB) after each."""
    import numpy as np
    import torch

    from cardio_echo_cmr.training import AllClips, ClipDataset

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):  # one clip at a time: the writing holds none of them
        path = folder / f"clip{i}.npy"
        np.save(path, rng.integers(0, 256, (frames - i % 7, size, size), dtype=np.uint8))
        paths.append(str(path))
    out = {"n": n, "written": _peak_mb()}
    ds = ClipDataset(paths, rng.random((n, 2)).astype(np.float32), frames=8, period=2, train=True, seed=0)
    ds.on_device(torch.device("cpu"))
    checksum = 0.0
    for batch in torch.randperm(n, generator=torch.Generator().manual_seed(0)).split(16):
        x, _ = ds.take(batch)
        checksum += float(x.sum())
    out["train epoch"] = _peak_mb()
    windows = AllClips(paths, frames=8, period=2)
    for i in range(len(windows)):
        checksum += float(windows[i][0].sum())
    out["test windows"] = _peak_mb()
    out["checksum"] = checksum
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs=2, default=(100, 400), help="two cohort sizes (videos)")
    ap.add_argument("--size", type=int, default=112, help="frame size (the paper's 112; the defaults' 16)")
    ap.add_argument("--frames", type=int, default=90, help="frames per video (3 s at 30 fps)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: checks the script runs")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.smoke:
        args.sizes, args.size, args.frames = (8, 16), 16, 20
    if args.child is not None:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(child(args.child, args.size, args.frames, Path(tmp))))
        return
    rows = []
    for n in args.sizes:
        cmd = [sys.executable, __file__, "--child", str(n), "--size", str(args.size), "--frames", str(args.frames)]
        rows.append(json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout))
    video_mb = args.frames * args.size ** 2 / 2**20
    print(f"echo_cmr clip datasets ({sys.executable}): {args.frames} frames of {args.size} x {args.size}, "
          f"{video_mb:.2f} MB a video")
    heads = [f"peak MB at {r['n']}" for r in rows]
    print(f"{'step':<14}{heads[0]:>18}{heads[1]:>18}{'MB a video':>14}")
    for step in ("written", "train epoch", "test windows"):
        a, b = rows[0][step], rows[1][step]
        print(f"{step:<14}{a:>18.0f}{b:>18.0f}{(b - a) / (rows[1]['n'] - rows[0]['n']):>14.3f}")


if __name__ == "__main__":
    main()
