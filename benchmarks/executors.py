"""A plugin's default cross-validation on each executor, side by side in one run: inline (every task in one
process), local with 2 workers (a process per task, the stages before the folds built once by prepare and read
back from the cache by every other task, each task on its share of the CPUs) and, where a SLURM controller answers
(scripts/slurm-local.sh), slurm (a job per task, 1 CPU each, 2 at once). The metrics.json of every executor are
compared with inline's (they must be identical: where a fit runs never changes a result).

Usage: python benchmarks/executors.py [--plugins spect_polar perfusion_polar] [--repeats 1] [--no-slurm]
       python benchmarks/executors.py --smoke    (the toy-sized spect study: seconds, for CI)
Each run is the whole `cardio run` command, wall clock, from start to metrics.json: process starts, imports and
cache reads are inside it. The repeats alternate the executors (inline, local, slurm, inline, ...), so that a
change of load on a shared machine falls on all of them; the median of each is printed. Goal (issue 39): local
with 2 workers >= 1.7x inline on 2 cores for spect_polar's and perfusion_polar's default CV.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# each plugin's default run: its cross-validation, the final model and the report, as `cardio run` does it
DEFAULT: tuple[str, ...] = ()
SMOKE = ("spect_polar.synthetic.n_patients=30", "spect_polar.synthetic.slices=20", "spect_polar.synthetic.size=40",
         "spect_polar.phase.rings=16", "spect_polar.phase.sectors=32", "spect_polar.autoencoder.hidden=32",
         "spect_polar.autoencoder.iterations=40", "cv.folds=3", "stats.n_resamples=200")
EXECUTORS = {"inline": (), "local": ("--executor", "local", "--workers", "2"),
             "slurm": ("--executor", "slurm", "--workers", "2", "--set", "executor.slurm.cpus_per_task=1",
                       "--set", "executor.slurm.mem_gb=2", "--set", "executor.wait=true")}


def _slurm_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20).stdout
    except subprocess.TimeoutExpired:
        return False
    return any(s in out for s in ("idle", "mixed", "alloc"))


def _run(plugin: str, out: Path, cache: Path, sets: tuple[str, ...], extra: tuple[str, ...] = ()) -> float:
    env = {**os.environ, "CARDIO_CACHE": str(cache)}
    args = [a for s in sets for a in ("--set", s)]
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "cardio.cli", "run", "--plugin", plugin, "--out", str(out), *args,
                           *extra], env=env, capture_output=True, text=True, cwd=out.parent)
    if proc.returncode != 0:
        raise SystemExit(f"{plugin} {' '.join(extra) or 'inline'} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - started


def _metrics(run: Path) -> dict:
    out = json.loads((run / "metrics.json").read_text())
    out.pop("elapsed_s", None)
    return out


def bench(plugin: str, sets: tuple[str, ...], executors: list[str], repeats: int, tmp: Path) -> dict:
    """{executor: [seconds, ...]} and whether each executor's metrics equal inline's."""
    cache = tmp / "cache"
    # the synthetic cohort written into the cache before any timed run (it is the same for every executor)
    subprocess.run([sys.executable, "-m", "cardio.cli", "validate", "--plugin", plugin, "--write-synthetic",
                    *[a for s in sets for a in ("--set", s)]], env={**os.environ, "CARDIO_CACHE": str(cache)},
                   capture_output=True, text=True, check=True)
    times: dict[str, list[float]] = {e: [] for e in executors}
    same: dict[str, bool] = {}
    for r in range(repeats):
        for name in executors:
            out = tmp / f"{plugin}-{name}-{r}"
            shutil.rmtree(cache / "studies", ignore_errors=True)  # each run builds its stages once, as a new run
            times[name].append(_run(plugin, out, cache, sets, EXECUTORS[name]))
            print(f"  {plugin} {name:<6} repeat {r + 1}: {times[name][-1]:6.1f} s", flush=True)
            if name != "inline":
                same[name] = same.get(name, True) and _metrics(out) == _metrics(tmp / f"{plugin}-inline-{r}")
    return {"times": times, "same": same}


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plugins", nargs="+", default=["spect_polar", "perfusion_polar"])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--no-slurm", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="the toy-sized spect study (seconds)")
    args = ap.parse_args()
    plugins = ["spect_polar"] if args.smoke else args.plugins
    executors = ["inline", "local"] + (["slurm"] if not args.no_slurm and _slurm_up() else [])
    cpus = len(os.sched_getaffinity(0))
    print(f"{cpus} CPUs allotted; executors: {', '.join(executors)}"
          f"{'' if 'slurm' in executors else ' (no SLURM controller answers: slurm left out)'}; {_load()}")
    results = {}
    with tempfile.TemporaryDirectory(prefix="cardio-executors-") as tmp:
        for plugin in plugins:
            sets = (*DEFAULT, *(SMOKE if args.smoke else ()))
            results[plugin] = bench(plugin, sets, executors, args.repeats, Path(tmp))
    print(f"\n{'plugin':<16}" + "".join(f"{e + ' s':>10}" for e in executors)
          + "".join(f"{'inline/' + e:>14}" for e in executors[1:]) + "  metrics identical to inline")
    for plugin, res in results.items():
        med = {e: statistics.median(t) for e, t in res["times"].items()}
        print(f"{plugin:<16}" + "".join(f"{med[e]:10.1f}" for e in executors)
              + "".join(f"{med['inline'] / med[e]:13.2f}x" for e in executors[1:])
              + "  " + ", ".join(f"{e}: {'yes' if ok else 'NO'}" for e, ok in res["same"].items()))
    print(f"(medians of {args.repeats} alternating repeat(s); goal: inline/local >= 1.7x on 2 cores; {_load()})")
    return 0 if all(all(r["same"].values()) for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
