"""Phase-map autoencoder training speed with 1 CPU thread vs the default thread count, side by side.

Usage: python benchmarks/spect_ae_threads.py [--rows 82] [--pixels 2048] [--hidden 256] [--steps 200] [--batch 16]

Backs `train.cpu_threads: 1` in the spect_polar config (the core's key; before, the AE's own cpu_threads): the
AE's matrices are small, so on a CPU intra-op threads mostly add synchronisation. Runs the same optimizer steps
(AdamW, MSE, the plugin's PhaseAutoencoder) first with torch's default thread count, then with one thread, and prints
ms per step and the ratio. Results depend on the machine and on its load; run on an idle machine.
"""
from __future__ import annotations

import argparse
import time

import torch

from cardio_spect_polar.autoencoder import PhaseAutoencoder


def steps_per_second(threads: int, rows: int, pixels: int, hidden: int, steps: int, batch: int) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = PhaseAutoencoder(pixels, hidden, 64)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    x = torch.rand(rows, pixels)
    loss_fn = torch.nn.MSELoss()

    def step(i: int) -> None:
        b = x[(i * batch) % rows:(i * batch) % rows + batch]
        opt.zero_grad(set_to_none=True)
        loss_fn(model(b), b).backward()
        opt.step()

    for i in range(10):  # warm-up
        step(i)
    t0 = time.perf_counter()
    for i in range(steps):
        step(i)
    return steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=82)
    ap.add_argument("--pixels", type=int, default=2048)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: checks the script runs")
    args = ap.parse_args()
    if args.smoke:
        args.rows, args.pixels, args.hidden, args.steps = 16, 256, 32, 5
    default = torch.get_num_threads()
    fast = {}
    for threads in (default, 1):
        fast[threads] = steps_per_second(threads, args.rows, args.pixels, args.hidden, args.steps, args.batch)
        print(f"threads={threads:2d}: {1000.0 / fast[threads]:8.2f} ms/step")
    torch.set_num_threads(default)
    print(f"speed-up of 1 thread over {default}: {fast[1] / fast[default]:.2f}x "
          f"({args.rows} rows, {args.pixels} pixels, hidden {args.hidden}, batch {args.batch})")


if __name__ == "__main__":
    main()
