"""Every plugin's default run and its `profile=paper` training step on the current device, in one run (issue 40).

    .venv/bin/python benchmarks/gpu_runs.py                       # every plugin: default runs + paper steps
    .venv/bin/python benchmarks/gpu_runs.py --smoke               # tiny configs and steps (seconds to minutes)
    .venv/bin/python benchmarks/gpu_runs.py --plugins perfusion_polar,mmode_septal_flash
    .venv/bin/python benchmarks/gpu_runs.py --no-steps --keep DIR  # default runs only, kept under DIR
    .venv/bin/python benchmarks/gpu_runs.py --no-steps --set train.deterministic=true   # cuDNN's timing off
    .venv/bin/python benchmarks/gpu_runs.py --no-runs --compile default --compile reduce-overhead

Default runs: `cardio run --plugin P` (device auto) in a subprocess, each with a cache of its own (a fresh clone's
first run: the synthetic cohort is written inside it; --keep DIR keeps runs and caches); wall time, its CPU seconds
(user + system, which load does not inflate), the load average at its end, and stage times read from the run's
run.log ("stage NAME" lines; "pretr" is ecg_transfer's prepare stage, its pretraining; "fits" from the first
fold's line to the next stage, the fold fits inline; "final" the final model's fit, between explain and evaluate);
the evaluate stage's share of the wall time. On CUDA with NVML (nvidia-ml-py) the GPU's
busy fraction (mean utilisation sampled every 0.2 s) and peak memory over the run. Checkpoints, from run.json's
`checkpoints` (the engine times every checkpoint it writes, issue 39's goal: <= 5% of a default run): how many, MB
written, seconds writing them and their share of the fits' training seconds and of the wall time; the MB their
files took on disk (the last version of each) and the run folder's MB at its end (hard links counted once), after
the finished run deleted them (train.keep_checkpoints: false).
Paper steps: the plugin's paper-profile network at its paper batch and input size, trained for a few steps through
the engine's loss and optimizer settings: samples/s, FLOPs per sample (torch's FLOP counter, x3 for forward +
backward, as benchmarks/echo_train_gpu.py counts them), MFU against the device's peak (CUDA, known GPUs), the GPU
busy fraction of the step time (the profiler's kernel time / wall time; CUDA events around the steps read ~100%
however long the GPU waits for the host, as the first H100 run of this script showed) and peak memory, in both
memory formats (train.channels_last off and on). On a CPU the GPU columns print "-". Goals on an H100: every default
run <= 60 s; GPU busy >= 80% of step time; echo MFU >= 35% in bf16. --json FILE keeps every row as it ends.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from echo_train_gpu import PEAK_TFLOPS  # the vendors' peak table, kept in one place

PLUGINS = ("perfusion_polar", "mmode_septal_flash", "spect_polar", "ecg_transfer", "echo_cmr")
# Tiny runs for --smoke: seconds of training each, every stage but explain and the final model still run (QUICK:
# each is a process that imports torch, most of its CPU at this size).
QUICK = ["cv.folds=2", "stats.n_resamples=100", "report.figures=false", "final_model=false", "explain=false"]
SMOKE = {
    "perfusion_polar": ["perfusion_polar.n_patients=48", "perfusion_polar.size=32", "perfusion_polar.step1.epochs=1",
                        "perfusion_polar.step2.epochs=1", *QUICK],
    "mmode_septal_flash": ["mmode_septal_flash.synthetic.n_patients=40", "mmode_septal_flash.synthetic.n_sf=16",
                           "mmode_septal_flash.synthetic.size=64", "mmode_septal_flash.mmode.offsets=1",
                           "mmode_septal_flash.model.input_size=32", "mmode_septal_flash.train.epochs=1", *QUICK],
    "spect_polar": ["spect_polar.synthetic.n_patients=30", "spect_polar.synthetic.slices=20",
                    "spect_polar.synthetic.size=40", "spect_polar.autoencoder.iterations=20", *QUICK],
    "ecg_transfer": ["ecg_transfer.synthetic.n_patients=30", "ecg_transfer.preprocess.max_beats_per_record=3",
                     "ecg_transfer.pretrain.records=['101','106','108','109','112']",  # pretraining, on 5 records
                     "ecg_transfer.pretrain.max_beats_per_class=20", "ecg_transfer.pretrain.max_eval_beats=100",
                     "ecg_transfer.pretrain.epochs=1", "ecg_transfer.finetune.epochs=1",
                     "ecg_transfer.baselines.threshold_cv=2", "ecg_transfer.baselines.rf.n_estimators=10", *QUICK],
    "echo_cmr": ["echo_cmr.synthetic.n_patients=40", "echo_cmr.synthetic.n_frames=20", "echo_cmr.clip.size=16",
                 "echo_cmr.clip.frames=4", "echo_cmr.train.epochs=1", "train.val_fraction=0",
                 "echo_cmr.arch=r2plus1d_10_narrow", "echo_cmr.views=[A4C,A2C]", *QUICK],
}


class GpuSampler:
    """NVML utilisation and memory of the current GPU, sampled every 0.2 s in a thread (CUDA with nvidia-ml-py)."""

    def __init__(self) -> None:
        self.util: list[float] = []
        self.peak_mb = 0.0
        self.handle = None
        if torch.cuda.is_available():
            try:
                import pynvml

                pynvml.nvmlInit()
                self.handle = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
                self.nvml = pynvml
            except Exception:  # no NVML: the GPU columns stay empty
                self.handle = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while self.handle is not None and not self.stop.wait(0.2):
            self.util.append(self.nvml.nvmlDeviceGetUtilizationRates(self.handle).gpu / 100.0)
            self.peak_mb = max(self.peak_mb, self.nvml.nvmlDeviceGetMemoryInfo(self.handle).used / 2**20)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()

    def busy(self) -> float | None:
        return sum(self.util) / len(self.util) if self.util else None


LINE = re.compile(r"^(\d\d):(\d\d):(\d\d) INFO (stage (\w+)|fold 1 of|final model: fitting|done in)")
MARKS = {"fold 1 of": "fits", "final model: fitting": "final", "done in": "end"}


def stage_times(log: str) -> dict[str, float]:
    """Seconds per stage from run.log's timestamps (1 s resolution; a run past midnight wraps once): the core's
    stages, "fits" from the first fold's line to the next stage (explain, or evaluate), "final" from the final
    model's line to evaluate. (An epoch's line is written at its end, so it cannot mark where the fits begin.)"""
    marks: list[tuple[float, str]] = []
    for line in log.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        t = int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3])
        if marks and t < marks[-1][0]:
            t += 86400
        marks.append((t, m[5] or MARKS[m[4]]))
    out: dict[str, float] = {}
    for (t0, name), (t1, _) in zip(marks, marks[1:]):
        out[name] = out.get(name, 0.0) + t1 - t0
    return out


def default_run(plugin: str, sets: list[str], root: Path) -> dict:
    """One `cardio run` of the plugin in a subprocess; wall time, stage times, GPU busy and peak memory."""
    out = root / plugin
    cmd = [sys.executable, "-m", "cardio.cli", "run", "--plugin", plugin, "--out", str(out)]
    for s in sets:
        cmd += ["--set", s]
    env = {**os.environ, "CARDIO_CACHE": str(root / "cache")}
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with GpuSampler() as gpu:
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime  # the run's CPU seconds: load-proof
    if proc.returncode != 0:
        return {"plugin": plugin, "wall": wall, "cpu": cpu, "error": proc.stderr.strip().splitlines()[-1:],
                "stderr_tail": proc.stderr[-4000:]}
    stages = stage_times((out / "run.log").read_text())
    return {"plugin": plugin, "wall": wall, "cpu": cpu, "load": os.getloadavg()[0], "stages": stages,
            "busy": gpu.busy(), "peak_mb": gpu.peak_mb or None, "evaluate_share": stages.get("evaluate", 0.0) / wall,
            "checkpoints": json.loads((out / "run.json").read_text()).get("checkpoints") or {},
            "run_mb": folder_bytes(out) / 1e6}


def folder_bytes(folder: Path) -> int:
    """Bytes of every file under `folder`, a hard-linked file once (the bundle links the fold models)."""
    seen: dict[tuple[int, int], int] = {}
    for path in folder.rglob("*"):
        st = path.lstat()
        if path.is_file() and not path.is_symlink():
            seen[(st.st_dev, st.st_ino)] = st.st_size
    return sum(seen.values())


def _paper_step(plugin: str, smoke: bool):
    """(network, one batch of inputs, targets) at the paper profile's sizes (each plugin's config.yaml `paper`
    profile; --smoke: tiny sizes), as the plugin's training feeds it."""
    if plugin == "echo_cmr":  # r2plus1d_18, batch 10, 32 frames of 112 x 112
        from cardio_echo_cmr.model import HEADS, EchoVideoNet

        b, t, s, arch = (2, 4, 16, "r2plus1d_10") if smoke else (10, 32, 112, "r2plus1d_18")
        return EchoVideoNet(arch=arch), torch.rand(b, t, s, s) * 255, torch.rand(b, len(HEADS)).round()
    if plugin == "mmode_septal_flash":  # DenseNet-121 on 256 x 256 M-modes, batch 4, two classes
        from cardio_mmode_septal_flash.model import SeptalFlashNet

        b, s = (2, 32) if smoke else (4, 256)
        return SeptalFlashNet(None), torch.rand(b, 1, s, s), torch.randint(0, 2, (b,))
    if plugin == "perfusion_polar":  # ResNet-50 on 64 x 64 polar maps (3 inputs), batch 32, 17 segment MFRs
        from cardio_perfusion_polar.model import PolarResNet

        b, s, arch = (4, 32, "resnet18") if smoke else (32, 64, "resnet50")
        return PolarResNet(arch, 17), torch.rand(b, 3, s, s), torch.rand(b, 17).round()
    if plugin == "ecg_transfer":  # ResNet-50 pretraining on 257 x 33 beat spectrograms, batch 256, 5 classes
        from cardio_ecg_transfer.resnet import SpectrogramResNet

        b, f, arch = (4, 33, "resnet18") if smoke else (256, 257, "resnet50")
        return SpectrogramResNet(arch, n_outputs=5), torch.rand(b, 1, f, 33), torch.randint(0, 5, (b,))
    if plugin == "spect_polar":  # the four-layer AE on 32 x 64 phase maps, full batch of 103 maps
        from cardio_spect_polar.autoencoder import PhaseAutoencoder

        b, n = (8, 64) if smoke else (103, 32 * 64)
        x = torch.rand(b, n)
        return PhaseAutoencoder(n, 256, 64), x, x
    raise ValueError(plugin)


def paper_step(plugin: str, smoke: bool, device: torch.device, steps: int, channels_last: bool = False,
               compile_mode: str | None = None) -> dict:
    """Samples/s of the engine's training step (bf16 autocast on CUDA, the engine's AdamW, fused; grad clip; the
    engine's kernel choice, cudnn.benchmark on CUDA; channels-last if asked, as train.channels_last) on one repeated
    batch, FLOPs per sample, MFU, the GPU busy fraction of the step time and peak memory.

    GPU busy is the kernels' own time (the profiler's CUDA activity) over the wall time of as many steps again,
    profiled apart from the timed ones (samples/s and MFU come from steps without the profiler's tracing): a gap in
    which the GPU waits for the host to launch the next kernel counts as idle. (CUDA events around each step count
    those gaps as busy, and read ~100% for a step that the host bounds.)"""
    from torch.utils.flop_counter import FlopCounterMode

    from cardio import engine
    from cardio.engine.device import autocast, memory_format

    torch.manual_seed(0)
    engine.set_determinism(None, device)  # as a run: the fastest kernels on CUDA (cudnn.benchmark)
    net, x, y = _paper_step(plugin, smoke)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net.eval()(x[:1])
    flops = 3.0 * counter.get_total_flops()  # forward + backward (twice the forward), per sample
    net, x, y = net.to(device).train(), x.to(device), y.to(device)
    cuda = device.type == "cuda"
    fmt = memory_format(x.ndim) if channels_last and cuda else None
    if fmt is not None:
        net, x = net.to(memory_format=fmt), x.contiguous(memory_format=fmt)
    loss_fn = torch.nn.MSELoss() if plugin == "spect_polar" else engine.masked_loss
    opt = engine.make_optimizer(net.parameters(), {"optimizer": "adamw", "lr": 1e-4, "weight_decay": 0.01})
    # train.compile: the engine compiles the network's forward (inductor's default mode); "reduce-overhead" adds
    # CUDA graphs, which replay a step's launches at once (a small network's step is bound by the host's launches)
    mode = None if compile_mode in (None, "default") else compile_mode
    model = net if compile_mode is None else torch.compile(net, mode=mode)

    def step():
        opt.zero_grad(set_to_none=True)
        with autocast(device, True):
            out = model(x)
        loss_fn(out.float(), y).backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()

    def timed(n: int) -> float:
        """Seconds of n steps, their GPU work included."""
        start = time.perf_counter()
        for _ in range(n):
            step()
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - start

    warmup_s = timed(3)  # cuDNN's algorithm timing, the allocator, compilation and graph capture
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    rate = steps * len(x) / timed(steps)  # uninstrumented: the profiler's tracing slows the host's launches
    row = {"plugin": plugin, "channels_last": fmt is not None, "compile": compile_mode, "samples_s": rate,
           "gflop_sample": flops / 1e9, "mfu": None, "busy": None, "peak_mb": None, "warmup_s": warmup_s}
    if cuda:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            profiled_s = timed(steps)
        # the kernels' own entries (an operator's entry repeats its kernels' time)
        kernel_us = sum(e.self_device_time_total for e in prof.key_averages()
                        if e.device_type == torch.autograd.DeviceType.CUDA)
        row["busy"] = kernel_us / 1e6 / profiled_s
        row["peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
        name = torch.cuda.get_device_name(device)
        peak = next((v["bf16"] for k, v in PEAK_TFLOPS.items() if k in name), None)
        row["mfu"] = rate * flops / (peak * 1e12) if peak else None
    return row


def _fmt(v, spec: str) -> str:
    width = re.match(r"\d*", spec)
    assert width is not None  # \d* matches every string, if only its empty start
    return "-".rjust(int(width[0] or 0)) if v is None else format(v, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugins", default=None, help="comma-separated plugins (default: all five; with --smoke "
                        "spect_polar's run, seconds: one run takes every path of this script, and the tests run "
                        "every plugin's default run; the paper steps of all five)")
    parser.add_argument("--smoke", action="store_true", help="tiny configs and steps (seconds to minutes)")
    parser.add_argument("--steps", type=int, default=None, help="training steps timed per paper step")
    parser.add_argument("--no-runs", action="store_true", help="paper steps only")
    parser.add_argument("--no-steps", action="store_true", help="default runs only")
    parser.add_argument("--keep", type=Path, default=None,
                        help="write the runs (and their cache) under this folder and keep them, e.g. for "
                             "benchmarks/report_pages.py; default: a temporary folder, removed")
    parser.add_argument("--json", type=Path, default=None, help="write every row here as it ends")
    parser.add_argument("--compile", action="append", default=[], choices=("default", "reduce-overhead"),
                        help="paper steps: also time the step under torch.compile in this mode (repeatable)")
    parser.add_argument("--set", action="append", default=[], dest="sets",
                        help="a setting for every default run, e.g. train.deterministic=true (cuDNN's algorithm "
                             "timing off) or train.channels_last=true")
    args = parser.parse_args()
    chosen = args.plugins or ("spect_polar" if args.smoke else ",".join(PLUGINS))
    plugins = [p for p in chosen.split(",") if p]
    from cardio import engine

    device = engine.resolve_device("auto")
    print(f"device: {engine.device_name(device)}", flush=True)
    rows: dict[str, list] = {"runs": [], "steps": []}

    def keep(kind: str, row: dict) -> None:  # each row as it ends: a run cut short by a time limit keeps the rest
        rows[kind].append(row)
        if args.json:
            args.json.write_text(json.dumps({"device": engine.device_name(device), **rows}, indent=1, default=str))

    runs = rows["runs"]
    if not args.no_runs:
        print("\ndefault runs" + (" (smoke configs)" if args.smoke else ""))
        print(RUN_HEADER, flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            root = args.keep or Path(tmp)
            for p in plugins:
                keep("runs", default_run(p, [*(SMOKE[p] if args.smoke else []), *args.sets], root))
                print(run_line(runs[-1]), flush=True)
    print("\ncheckpoints" + (" (smoke configs)" if args.smoke else ""))
    print(f"{'plugin':20} {'written':>7} {'MB written':>10} {'ckpt s':>7} {'fit s':>7} {'% of fit':>8} "
          f"{'% of wall':>9} {'ckpt MB on disk':>15} {'run MB at end':>13}")
    for r in runs:
        c = r.get("checkpoints")
        if not c:
            continue
        print(f"{r['plugin']:20} {int(c['written']):7d} {c['bytes'] / 1e6:10.1f} {c['seconds']:7.2f} {c['fit_s']:7.0f} "
              f"{100 * c['seconds'] / max(c['fit_s'], 1e-9):7.2f}% {100 * c['seconds'] / r['wall']:8.2f}% "
              f"{c['disk_bytes'] / 1e6:15.1f} {r['run_mb']:13.1f}")
    if args.no_steps:
        return
    print("\npaper-profile training step" + (" (smoke sizes)" if args.smoke else ""))
    print(f"{'plugin':34} {'samples/s':>10} {'GFLOP/sample':>13} {'MFU':>6} {'GPU busy':>9} {'peak MB':>8} "
          f"{'warm-up s':>9}", flush=True)
    # a step is cheap: all five, each in both memory formats on CUDA (train.channels_last is off until one wins),
    # and compiled too where --compile names a mode
    variants = [(last, None) for last in ((False, True) if device.type == "cuda" else (False,))]
    variants += [(False, mode) for mode in args.compile]
    for p in [p for p in (args.plugins or ",".join(PLUGINS)).split(",") if p]:
        for last, mode in variants:
            r = paper_step(p, args.smoke, device, args.steps or (1 if args.smoke else 20), channels_last=last,
                           compile_mode=mode)
            keep("steps", r)
            label = p + (" (channels-last)" if r["channels_last"] else "") + (f" (compile {mode})" if mode else "")
            print(f"{label:34} {r['samples_s']:10.1f} {r['gflop_sample']:13.2f} {_fmt(r['mfu'], '6.1%')} "
                  f"{_fmt(r['busy'], '9.0%')} {_fmt(r['peak_mb'], '8.0f')} {r['warmup_s']:9.1f}", flush=True)


STAGES = ("load", "preprocess", "featurize", "prepare", "fits", "explain", "final", "evaluate")
RUN_HEADER = (f"{'plugin':20} {'wall s':>8} {'CPU s':>7} {'loadavg':>7} {'load':>6} {'prep':>6} {'feat':>6} "
              f"{'pretr':>6} {'fits':>6} {'explain':>8} {'final':>6} {'eval':>6} {'eval %':>7} {'GPU busy':>9} "
              f"{'peak MB':>8} {'run MB':>7}")


def run_line(r: dict) -> str:
    """One default run's row of the table."""
    if "error" in r:
        return f"{r['plugin']:20} {r['wall']:8.1f} failed: {r['error']}"
    cols = [r["stages"].get(k) for k in STAGES]
    return (f"{r['plugin']:20} {r['wall']:8.1f} {r['cpu']:7.0f} {r['load']:7.1f} "
            + " ".join(_fmt(c, "8.0f" if k == "explain" else "6.0f") for k, c in zip(STAGES, cols))
            + f" {100 * r['evaluate_share']:6.1f}% {_fmt(r['busy'], '9.0%')} {_fmt(r['peak_mb'], '8.0f')} "
            f"{r['run_mb']:7.1f}")


if __name__ == "__main__":
    main()
