"""echo_cmr training throughput and model FLOPs utilisation (MFU): the plugin's loop (cached uint8 clips, bf16
autocast, channels-last-3d) in bf16 and fp32, beside the same r2plus1d_18 trained EchoNet-Dynamic's way (per-item
OpenCV decode, fp32), on one device in one run. Goals on an H100: >= 3x EchoNet's loop, >= 35% MFU in bf16.

    .venv/bin/python benchmarks/echo_train_gpu.py                 # the paper profile: 32x112x112 clips, batch 10
    .venv/bin/python benchmarks/echo_train_gpu.py --smoke         # CPU smoke run (8x16x16 clips)

MFU = achieved FLOP/s (3 x forward FLOPs per clip, counted by torch's FLOP counter, x clips/s) / the device's peak
dense FLOP/s for the dtype (--peak-tflops, or a table of known GPUs). On CPU no peak is known and MFU is not printed.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from cardio_echo_cmr import synthetic
from cardio_echo_cmr.model import HEADS, EchoVideoNet, HeadLoss, flops_per_clip
from cardio_echo_cmr.training import ClipDataset
from cardio_imaging.cine import write_video

# Dense (no sparsity) peak TFLOP/s per dtype from the vendors' data sheets.
PEAK_TFLOPS = {"H100": {"bf16": 989.0, "fp32": 67.0}, "H200": {"bf16": 989.0, "fp32": 67.0},
               "A100": {"bf16": 312.0, "fp32": 19.5}}


class EchoNetItems(Dataset):
    """EchoNet-Dynamic's loader: every item opens the AVI and decodes it with OpenCV, then samples a clip."""

    def __init__(self, paths: list[str], frames: int, period: int, seed: int = 0):
        self.paths, self.frames, self.period = paths, frames, period
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        import cv2

        cap = cv2.VideoCapture(self.paths[i])
        out = []
        while True:
            ok, f = cap.read()
            if not ok:
                break
            out.append(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY))
        cap.release()
        v = np.stack(out)
        start = int(self.rng.integers(0, max(1, len(v) - self.frames * self.period + 1)))
        idx = np.clip(start + self.period * np.arange(self.frames), 0, len(v) - 1)
        return torch.from_numpy(v[idx].astype(np.float32)), torch.zeros(len(HEADS))


def run_loop(net, loader, device, steps: int, bf16: bool, channels_last: bool) -> float:
    """Clips per second over `steps` optimizer steps after two warm-up steps."""
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    loss_fn = HeadLoss()
    net.train()
    done, n, t0 = 0, 0, None
    while done < steps + 2:
        for x, y in loader:
            if done == 2:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t0, n = time.perf_counter(), 0
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            x = x.unsqueeze(1).expand(-1, 3, -1, -1, -1)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last_3d)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = loss_fn(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
            n += len(x) if t0 is not None else 0
            if done >= steps + 2:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    assert t0 is not None  # set at the third step, and the loop runs past it
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", "--smoke", dest="tiny", action="store_true",
                    help="CPU smoke setting: 8x16x16 clips, r2plus1d_10, 3 steps")
    ap.add_argument("--videos", type=int, default=40)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--workers", type=int, default=8, help="DataLoader workers for both loops")
    ap.add_argument("--peak-tflops", type=float, default=None, help="bf16 peak dense TFLOP/s of the device")
    a = ap.parse_args()
    frames, size, period, arch = (8, 16, 2, "r2plus1d_10") if a.tiny else (32, 112, 2, "r2plus1d_18")
    steps, videos, workers = (3, 12, 0) if a.tiny else (a.steps, a.videos, a.workers)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else "CPU (no GPU lent to this run)"
    print(f"device: {name}; arch {arch}; clips {frames}x{size}x{size} at period {period}; batch {a.batch}")
    with tempfile.TemporaryDirectory() as folder:
        tmp, rng = Path(folder), np.random.default_rng(0)
        paths, npys = [], []
        for i in range(videos):
            v = synthetic.render_view(synthetic.VIEWS[i % 3], set(), rng, n_frames=frames * period + 16,
                                      height=size, width=size, reduction=0.0)
            paths.append(str(write_video(tmp / f"v{i}.avi", v, fps=30)))
            np.save(tmp / f"v{i}.npy", v)
            npys.append(str(tmp / f"v{i}.npy"))
        y = np.zeros((videos, len(HEADS)), np.float32)
        flops = flops_per_clip(frames, size, arch)
        results = {}
        for label, ds, bf16, cl in (
                ("cardio cached, bf16", ClipDataset(npys, y, frames, period, train=True), True, True),
                ("cardio cached, fp32", ClipDataset(npys, y, frames, period, train=True), False, True),
                ("EchoNet per-item OpenCV, fp32", EchoNetItems(paths, frames, period), False, False)):
            torch.manual_seed(0)
            net = EchoVideoNet(arch=arch).to(device)
            if cl:
                net = net.to(memory_format=torch.channels_last_3d)
            loader = DataLoader(ds, batch_size=a.batch, shuffle=True, num_workers=workers, drop_last=True,
                                pin_memory=device.type == "cuda", persistent_workers=workers > 0)
            results[label] = run_loop(net, loader, device, steps, bf16 and device.type == "cuda", cl)
    peak = None
    for key, table in PEAK_TFLOPS.items():
        if key in name:
            peak = table
    if a.peak_tflops:
        peak = {"bf16": a.peak_tflops, "fp32": (peak or {}).get("fp32", a.peak_tflops / 14.8)}
    base = results["EchoNet per-item OpenCV, fp32"]
    print(f"forward FLOPs per clip: {flops / 1e9:.2f} GFLOP (training step ~3x)")
    for label, cps in results.items():
        line = f"{label:32s} {cps:9.2f} clips/s  {cps / base:5.2f}x EchoNet's loop"
        if peak:
            dtype = "bf16" if "bf16" in label else "fp32"
            line += f"  MFU {100 * 3 * flops * cps / (peak[dtype] * 1e12):5.1f}% of {dtype} peak"
        print(line)
    if device.type != "cuda":
        print("no GPU: bf16 autocast is off on CPU, so the two cardio rows differ only by noise; MFU not computed")


if __name__ == "__main__":
    main()
