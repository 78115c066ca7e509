"""What mmode_septal_flash holds per patient: peak RSS after each of its stages (featurize, one fit of both variants,
prediction) at two cohort sizes, one process per size, and the growth per patient between them.

    .venv/bin/python benchmarks/mmode_memory.py --sizes 100 400            # the defaults' images, one epoch
    /other/checkout/.venv/bin/python benchmarks/mmode_memory.py ...         # the same script against other code

Each size runs in a child process on the synthetic cohort (written once into --cache), with the plugin's own
featurize, train (its engine fit: one epoch over every training line, the validation lines scored) and predict, at
the defaults' 11 lines a record, 128 x 128 inputs and 500 x 500 M-modes; a two-layer network stands in for the
DenseNet-121 (tiny_network; --densenet fits the real one) so that a size takes minutes on a busy CPU. The peak RSS is
the child's ru_maxrss after each stage (a peak so far: it never falls); per patient is the difference between the two
sizes over the difference in patients, which cancels the interpreter, torch and the network.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def tiny_network(training) -> None:
    """The plugin's DenseNet-121 replaced by a two-layer network in this process: the data path (featurize, the
    batches of every fit, validation and prediction) is the plugin's own, the network's memory is the same at every
    cohort size either way, and the fits take seconds instead of an hour on a busy CPU."""
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self, weights: str | None = None) -> None:
            super().__init__()
            self.source = "tiny (benchmark)"
            self.net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, stride=4), torch.nn.ReLU(),
                                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

    training.SeptalFlashNet = Tiny


def child(n: int, input_size: int, cache: Path, threads: int, tiny: bool) -> dict:
    """Featurize, fit and predict at n patients in this process; peak RSS (MB) after each stage."""
    import numpy as np
    import torch

    from cardio_mmode_septal_flash import cohort as cohort_mod
    from cardio_mmode_septal_flash import preprocess, training
    from cardio_mmode_septal_flash.settings import SeptalFlashSettings
    from cardio_testing.harness import context, plugin_config

    torch.set_num_threads(threads)
    if tiny:
        tiny_network(training)
    sets = [f"mmode_septal_flash.synthetic.n_patients={n}", f"mmode_septal_flash.synthetic.n_sf={n * 55 // 143}",
            f"mmode_septal_flash.model.input_size={input_size}", "mmode_septal_flash.train.epochs=1",
            "mmode_septal_flash.train.batch_size=32", f"cache_dir={cache}"]
    cfg = plugin_config("mmode_septal_flash", sets)
    out: dict = {"n": n, "imports": _peak_mb()}
    with tempfile.TemporaryDirectory(prefix="mmode-memory-") as tmp:
        ctx = context(tmp, cache_dir=cache)
        cohort = cohort_mod.load(cfg, ctx)
        out["load"] = _peak_mb()
        t0 = time.perf_counter()
        features = preprocess.featurize(cohort, SeptalFlashSettings.of(cfg), ctx)
        out["featurize_s"], out["featurize"] = time.perf_counter() - t0, _peak_mb()
        rows = np.random.default_rng(0).permutation(len(features))
        fit, val, test = np.split(rows, [int(0.64 * n), int(0.8 * n)])
        t0 = time.perf_counter()
        model = training.train(features, np.sort(fit), np.sort(val), cfg, ctx)
        out["fit_s"], out["fit"] = time.perf_counter() - t0, _peak_mb()
        predictions = training.predict(model, features, np.sort(test), ctx)
        out["predict"] = _peak_mb()
        out["p_sum"] = float(np.nansum(predictions.table["y_score"]))
        s = SeptalFlashSettings.of(cfg)
        lines = 2 * s.mmode.offsets + 1
        out["held_kb_at_128"] = (len(s.model.variants) * lines * 128 * 128 + s.mmode.size[0] * s.mmode.size[1]) / 1024
    return out


STAGES = ("imports", "load", "featurize", "fit", "predict")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 400], help="two sizes (one: its row only)")
    ap.add_argument("--input-size", type=int, default=128)
    ap.add_argument("--densenet", action="store_true", help="fit the plugin's DenseNet-121 (default: a two-layer "
                    "network in its place, the same data path)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=None, help="cache of the synthetic cohorts (default: a temporary "
                    "folder; name one to write each cohort once over several calls)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes and inputs: checks the script runs")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.smoke:
        args.sizes, args.input_size, args.threads = [12, 16], 32, 1
    if args.child is not None:
        row = child(args.child, args.input_size, args.cache, args.threads, not args.densenet)
        print("row " + json.dumps(row), flush=True)
        return
    with tempfile.TemporaryDirectory(prefix="mmode-memory-cache-") as tmp:
        cache = args.cache or Path(tmp)
        rows = []
        for n in args.sizes:
            cmd = [sys.executable, __file__, "--child", str(n), "--input-size", str(args.input_size), "--threads",
                   str(args.threads), "--cache", str(cache), *(["--densenet"] if args.densenet else [])]
            done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
            if done.returncode:
                raise SystemExit(f"{n} patients failed:\n{done.stderr[-3000:]}")
            rows += [json.loads(line[4:]) for line in done.stdout.splitlines() if line.startswith("row {")]
            print(f"{n} patients: " + ", ".join(f"{k} {rows[-1][k]:.0f} MB" for k in STAGES)
                  + f"; featurize {rows[-1]['featurize_s']:.0f} s, fit {rows[-1]['fit_s']:.0f} s", flush=True)
    if len(rows) < 2:
        return
    a, b = rows[0], rows[-1]
    print(f"load {os.getloadavg()[0]:.1f}; input {args.input_size} x {args.input_size}; peak RSS (MB) after each stage")
    print("| stage | " + " | ".join(f"{r['n']} patients" for r in rows) + " | per patient |")
    print("| --- | --- | --- | --- |")
    for k in STAGES[1:]:
        per = (b[k] - a[k]) * 1024 / (b["n"] - a["n"])
        print(f"| {k} | {a[k]:.0f} | {b[k]:.0f} | {per:.0f} KB |")
    print(f"the cohort's network inputs and figure M-modes at 128 x 128: {a['held_kb_at_128']:.0f} KB a patient")


if __name__ == "__main__":
    main()
