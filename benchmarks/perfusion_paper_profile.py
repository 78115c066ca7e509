"""perfusion_polar's paper profile on a CPU: seconds per training epoch, measured side by side, and the run it implies.

Times one optimizer epoch (forward, backward, AdamW step; batch 32) of PolarResNet for the default
(ResNet-18, 32 x 32 maps) and the paper profile (ResNet-50, 64 x 64 maps) on the same machine in one
run, prints their ratio, and extrapolates the paper profile's full run (766 fitting patients of the
851/93 holdout after val_fraction 0.1; joint + rest + stress + MFR models; two steps of at most 30
epochs each) as an upper bound.

    .venv/bin/python benchmarks/perfusion_paper_profile.py [--maps 128] [--threads 2]
"""
from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from cardio_perfusion_polar.model import PolarResNet


def epoch_seconds(arch: str, size: int, n_maps: int, batch: int = 32, repeats: int = 2) -> float:
    """Best of `repeats` epochs over n_maps random maps, seconds per map."""
    torch.manual_seed(0)
    net = PolarResNet(arch, 17).train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    x, y = torch.rand(n_maps, 3, size, size), torch.rand(n_maps, 17)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(0, n_maps, batch):
            opt.zero_grad()
            nn.functional.mse_loss(net(x[i:i + batch]), y[i:i + batch]).backward()
            opt.step()
        best = min(best, time.perf_counter() - t0)
    return best / n_maps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--maps", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: checks the script runs")
    a = ap.parse_args()
    if a.smoke:
        a.maps, a.threads = 2, 1
    repeats = 1 if a.smoke else 2
    torch.set_num_threads(a.threads)
    default = epoch_seconds("resnet18", 32, a.maps, repeats=repeats)
    paper = epoch_seconds("resnet50", 64, a.maps, repeats=repeats)
    fit, models, steps, epochs = 766, 4, 2, 30
    print(f"threads {a.threads}, {a.maps} maps, batch 32")
    print(f"default (resnet18, 32x32): {default * 1000:.1f} ms per map per epoch")
    print(f"paper   (resnet50, 64x64): {paper * 1000:.1f} ms per map per epoch")
    print(f"ratio paper / default: {paper / default:.1f}x")
    per_epoch = paper * fit
    total = per_epoch * models * steps * epochs
    print(f"paper profile: {per_epoch:.0f} s per epoch over {fit} maps; at most {models} models x {steps} steps x "
          f"{epochs} epochs = {total / 3600:.1f} h of training (validation passes and early stopping not counted)")


if __name__ == "__main__":
    main()
