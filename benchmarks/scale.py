"""How cost grows with the cohort: each plugin's synthetic cohort at 100, 300, 1,000 and 3,000 patients, a fixed
small number of epochs, one `cardio run` process per size (so its peak memory is its own).

    .venv/bin/python benchmarks/scale.py                                    # every plugin, every size
    .venv/bin/python benchmarks/scale.py --plugins spect_polar --sizes 100 300 1000
    .venv/bin/python benchmarks/scale.py --smoke                            # spect, 20 and 40 patients

Per plugin and size it prints wall and CPU seconds by stage (from the tasks' done markers: load, which writes the
synthetic cohort on a fresh cache, preprocess, featurize, prepare, the fits, the final model, evaluate), peak RSS
of the run's process (wait4's ru_maxrss), the cache's bytes and the run folder's, and the machine's load average
while it ran; then the growth exponent of each column, the slope of log(cost) on log(patients) over the sizes from
300 up (over all sizes where fewer than two are that large). An exponent near 1 is linear; above 1.1 a stage
grows faster than the cohort.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# each plugin's cohort-size key, and settings that keep a fit's epochs fixed and small (the fits' cost per epoch is
# what must grow linearly; the report's figures and the explanation are kept: they are stages too)
PLUGINS: dict[str, tuple[str, list[str]]] = {
    "spect_polar": ("spect_polar.synthetic.n_patients", ["spect_polar.autoencoder.iterations=50"]),
    "perfusion_polar": ("perfusion_polar.n_patients", ["perfusion_polar.step1.epochs=1",
                                                       "perfusion_polar.step2.epochs=1"]),
    "ecg_transfer": ("ecg_transfer.synthetic.n_patients", ["ecg_transfer.finetune.epochs=1",
                                                           "ecg_transfer.pretrain.epochs=1"]),
    "mmode_septal_flash": ("mmode_septal_flash.synthetic.n_patients", ["mmode_septal_flash.train.epochs=1"]),
    "echo_cmr": ("echo_cmr.synthetic.n_patients", ["echo_cmr.train.epochs=1"]),
}
SIZES = [100, 300, 1000, 3000]
SMOKE = ["spect_polar.synthetic.slices=16", "spect_polar.synthetic.size=32", "spect_polar.autoencoder.iterations=10",
         "cv.folds=2", "explain=false", "stats.n_resamples=100"]
STAGES = ("load", "preprocess", "featurize", "prepare", "fits", "final", "evaluate")
HOOK_STAGE = {"cardio_load": "load", "cardio_preprocess": "preprocess", "cardio_featurize": "featurize",
              "cardio_prepare": "prepare"}


def _bytes(path: Path) -> int:
    files = {(s.st_dev, s.st_ino): s.st_size for s in (f.stat() for f in path.rglob("*") if f.is_file())}
    return sum(files.values())


def stage_seconds(run: Path) -> dict[str, float]:
    """Wall seconds by stage from the run's done markers: prepare's hooks, the fits summed, final and evaluate."""
    out = dict.fromkeys(STAGES, 0.0)
    for done in sorted((run / "tasks").glob("*/done.json")):
        name, info = done.parent.name, json.loads(done.read_text())
        if name == "prepare":
            for hook, seconds in info.get("hooks_s", {}).items():
                stage = HOOK_STAGE.get(hook)
                if stage:
                    out[stage] += seconds
        elif name.startswith("fit-"):
            out["fits"] += info["elapsed_s"]
        elif name in ("final", "evaluate"):
            out[name] += info["elapsed_s"]
    return out


def one(plugin: str, n: int, extra: list[str], root: Path) -> dict:
    """One `cardio run` in its own process at n patients: stage seconds, CPU, peak RSS, cache and folder bytes."""
    key, sets = PLUGINS[plugin]
    out, cache = root / f"{plugin}-{n}", root / f"cache-{plugin}-{n}"
    args = [sys.executable, "-m", "cardio.cli", "run", "--plugin", plugin, "--out", str(out)]
    for s in [f"{key}={n}", *sets, *extra, f"cache_dir={cache}"]:
        args += ["--set", s]
    load0, t0 = os.getloadavg()[0], time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{plugin} at {n} patients failed:\n{proc.stderr.read()[-2000:] if proc.stderr else ''}")
    return {"plugin": plugin, "n": n, "wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
            "rss_mb": usage.ru_maxrss / 1024, "cache_mb": _bytes(cache) / 1e6, "folder_mb": _bytes(out) / 1e6,
            "load": (load0 + os.getloadavg()[0]) / 2, **stage_seconds(out)}


def exponent(rows: list[dict], column: str) -> float:
    """Slope of log(column) on log(patients) over the sizes >= 300 (all sizes when fewer than two are)."""
    big = [r for r in rows if r["n"] >= 300]
    use = big if len(big) >= 2 else rows
    x = np.log([r["n"] for r in use])
    y = np.log([max(r[column], 1e-3) for r in use])
    return float(np.polyfit(x, y, 1)[0]) if len(use) >= 2 else float("nan")


COLUMNS = ("wall", "cpu", *STAGES, "rss_mb", "cache_mb", "folder_mb")


def table(rows: list[dict]) -> list[str]:
    lines = ["| plugin | patients | machine load | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 3) + "|"]
    for r in rows:
        lines.append(f"| {r['plugin']} | {r['n']} | {r['load']:.1f} | " + " | ".join(f"{r[c]:.1f}" for c in COLUMNS)
                     + " |")
    for plugin in dict.fromkeys(r["plugin"] for r in rows):
        mine = [r for r in rows if r["plugin"] == plugin]
        lines.append(f"| {plugin} | exponent | | " + " | ".join(f"{exponent(mine, c):.2f}" for c in COLUMNS) + " |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plugins", default=",".join(PLUGINS))
    ap.add_argument("--sizes", type=int, nargs="+", default=SIZES)
    ap.add_argument("--out", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    ap.add_argument("--smoke", action="store_true", help="spect_polar at 20 and 40 patients, tiny")
    args = ap.parse_args()
    plugins, sizes, extra = (["spect_polar"], [20, 40], SMOKE) if args.smoke else \
        (args.plugins.split(","), args.sizes, [])
    with tempfile.TemporaryDirectory(prefix="cardio-scale-") as tmp:
        root = args.out or Path(tmp)
        rows = []
        for plugin in plugins:
            for n in sizes:
                rows.append(one(plugin, n, extra, root))
                print(f"{plugin} at {n} patients: {rows[-1]['wall']:.0f} s, peak RSS {rows[-1]['rss_mb']:.0f} MB",
                      flush=True)
    print(f"{os.cpu_count()} CPUs; seconds, MB; exponents from the sizes >= 300 where two or more are")
    print("\n".join(table(rows)))


if __name__ == "__main__":
    main()
