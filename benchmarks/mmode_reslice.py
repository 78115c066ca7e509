"""Virtual M-mode speed: VTK's vtkImageReslice against the batched torch grid_sample path, on the same sequences.

Both make the x11 M-modes (500 x 500, one per septal offset) of every sequence of the synthetic
cohort (the plugin's generator, default config). VTK reslices one line at a time, as the paper
does (the volume is imported once per sequence); the fast path samples every line of a batch of
same-sized sequences in one grid_sample call. Printed: the maximum absolute difference (goal: at
most one grey level), the times and their ratio (goal: >= 10x on the CPU; on a GPU when one is
present, its own line). Each CPU comparison gives both libraries the same number of threads (torch's
intra-op threads, VTK's SMP and multi-threader). The script starts one competing process (a Python
loop that keeps a core busy) before it measures, as a shared node or a loaded CI machine has; cardio
is imported first, so OpenMP's passive wait policy holds (threads that spin while they wait for the
busy core would make 2 threads slower than 1). --no-load measures on an idle machine instead.

    python benchmarks/mmode_reslice.py                 # 48 sequences, x11 lines, batches of 16, 1 and 2 threads
    python benchmarks/mmode_reslice.py --n 143 --batch 32 --threads 2
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

# isort: off
import cardio  # noqa: F401  (first: it sets OpenMP's passive wait policy before torch and VTK load)
# isort: on
import numpy as np
import torch

SPIN = "import time\nend = time.time() + 900\nwhile time.time() < end:\n    pass\n"


def cohort(n: int, size: int):
    """n synthetic sequences cut to a common frame count (so that batches stack), their lines and cycles."""
    from cardio_mmode_septal_flash.geometry import mmode_line
    from cardio_mmode_septal_flash.settings import MMode, Synthetic
    from cardio_mmode_septal_flash.synthetic import synthesize

    mcfg = MMode()
    items = list(synthesize(Synthetic(n_patients=n, n_sf=n // 3, size=size)))
    t = min(len(frames) for _, frames, _ in items)
    frames = np.stack([f[:t] for _, f, _ in items])
    k = mcfg.offsets
    lines = [[mmode_line(p, size, "right", mcfg.length, mcfg.rv_share, o) for o in range(-k, k + 1)]
             for _, _, p in items]
    cycles = [(r["cycle_start"], min(r["cycle_end"], t - 1)) for r, _, _ in items]
    return frames, lines, cycles


def run_vtk(frames, lines, cycles, size):
    from cardio_mmode_septal_flash.mmode import mmodes_vtk

    return np.stack([mmodes_vtk(f, ls, t0, t1, size=size) for f, ls, (t0, t1) in zip(frames, lines, cycles)])


def run_torch(frames, lines, cycles, size, batch, device):
    from cardio_mmode_septal_flash.mmode import mmodes_torch

    vol = torch.as_tensor(frames).to(device)  # on the device once, as a batched pipeline keeps it
    out = [mmodes_torch(vol[i:i + batch], lines[i:i + batch], cycles[i:i + batch], size, device)
           for i in range(0, len(frames), batch)]
    if device != "cpu":
        torch.cuda.synchronize()
    return np.concatenate(out)


def timed(fn, repeats: int):
    """The best wall time and the best CPU time (this process's, every thread) of `repeats` calls, and the output.
    On a loaded machine the wall time also counts the waits for a core; the CPU time counts the work alone."""
    best, cpu, out = float("inf"), float("inf"), None
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        best, cpu = min(best, time.perf_counter() - t), min(cpu, time.process_time() - c)
    return best, cpu, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=48, help="sequences")
    ap.add_argument("--frame-size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16, help="sequences per grid_sample call")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="CPU threads given to each library")
    ap.add_argument("--no-load", action="store_true", help="no competing process")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: checks the script runs")
    args = ap.parse_args()
    if args.smoke:
        args.n, args.frame_size, args.batch, args.repeats = 3, 64, 3, 1
    size = (500, 500)
    frames, lines, cycles = cohort(args.n, args.frame_size)
    n_lines = sum(len(ls) for ls in lines)
    print(f"{args.n} sequences of {frames.shape[1]} frames x {frames.shape[2]} x {frames.shape[3]} px, "
          f"{n_lines} M-modes of {size[0]} x {size[1]}; torch {torch.__version__}; best of {args.repeats}")
    spin = None if args.no_load else subprocess.Popen([sys.executable, "-c", SPIN])
    print("one competing process keeps a core busy" if spin else "no competing process",
          f"(OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')})")
    try:
        measure(frames, lines, cycles, size, n_lines, args)
    finally:
        if spin:
            spin.kill()


def measure(frames, lines, cycles, size, n_lines, args) -> None:
    from vtkmodules.vtkCommonCore import vtkMultiThreader, vtkSMPTools

    for threads in args.threads:
        torch.set_num_threads(threads)
        vtkMultiThreader.SetGlobalMaximumNumberOfThreads(threads)
        vtkSMPTools.Initialize(threads)
        run_torch(frames[:2], lines[:2], cycles[:2], size, args.batch, "cpu")  # warm-up
        t_vtk, c_vtk, ref = timed(lambda: run_vtk(frames, lines, cycles, size), args.repeats)
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() and threads == args.threads[-1] else [])
        for device in devices:
            if device != "cpu":
                run_torch(frames[:2], lines[:2], cycles[:2], size, args.batch, device)
            t_fast, c_fast, out = timed(lambda: run_torch(frames, lines, cycles, size, args.batch, device),
                                        args.repeats)
            diff = int(np.abs(out.astype(np.int16) - ref.astype(np.int16)).max())
            share = float((out != ref).mean())
            cpu = f"; CPU {1e3 * c_vtk / n_lines:.2f} vs {1e3 * c_fast / n_lines:.2f} ms/M-mode, ratio " \
                  f"{c_vtk / c_fast:.1f}x" if device == "cpu" else ""
            print(f"{device:>4}, {threads} thread(s): wall vtkImageReslice {t_vtk:.3f} s ({1e3 * t_vtk / n_lines:.2f} "
                  f"ms/M-mode), torch grid_sample {t_fast:.3f} s ({1e3 * t_fast / n_lines:.2f} ms/M-mode): ratio "
                  f"{t_vtk / t_fast:.1f}x{cpu}; max |diff| {diff} grey level(s), {100 * share:.3f}% of pixels "
                  f"differ (goal: <= 1, wall ratio >= 10x); load average {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
