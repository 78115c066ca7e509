"""How cost grows with the cohort: each plugin's synthetic cohort at 100, 300, 1,000 and 3,000 patients, a fixed
small number of epochs, one `cardio run` process per size (so its peak memory is its own).

    .venv/bin/python benchmarks/scale.py                                    # every plugin, every size
    .venv/bin/python benchmarks/scale.py --plugins spect_polar --sizes 100 300 1000
    .venv/bin/python benchmarks/scale.py --smoke                            # spect, 20 and 40 patients
    .venv/bin/python benchmarks/scale.py --plugins mmode_septal_flash --set mmode_septal_flash.model.input_size=32

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
# --smoke checks the script (its columns, the exponents), not what a stage costs: no figures either
SMOKE = ["spect_polar.synthetic.slices=16", "spect_polar.synthetic.size=32", "spect_polar.autoencoder.iterations=10",
         "cv.folds=2", "explain=false", "stats.n_resamples=100", "report.figures=false"]
STAGES = ("load", "preprocess", "featurize", "prepare", "fits", "final", "evaluate", "report", "other")
HOOK_STAGE = {"cardio_load": "load", "cardio_preprocess": "preprocess", "cardio_featurize": "featurize",
              "cardio_prepare": "prepare"}


def _bytes(path: Path) -> int:
    files = {(s.st_dev, s.st_ino): s.st_size for s in (f.stat() for f in path.rglob("*") if f.is_file())}
    return sum(files.values())


def stage_seconds(run: Path, wall: float) -> dict[str, float]:
    """Wall seconds by stage from the run's done markers: prepare's hooks, the fits summed, final, evaluate (its
    hook) and report (the rest of the evaluate task: tables, figures, pages); other is the wall time none of them
    holds (process start, imports, the config, the run folder's bookkeeping)."""
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
        elif name == "final":
            out[name] += info["elapsed_s"]
        elif name == "evaluate":
            out["evaluate"] += info.get("hooks_s", {}).get("cardio_evaluate", 0.0)
            out["report"] += info["elapsed_s"] - info.get("hooks_s", {}).get("cardio_evaluate", 0.0)
    out["other"] = max(wall - sum(out.values()), 0.0)
    return out


def one(plugin: str, n: int, extra: list[str], root: Path, limit_s: float | None = None) -> dict:
    """One `cardio run` in its own process at n patients: stage seconds, CPU, peak RSS, cache and folder bytes, and
    the machine's mean 1-minute load sampled while it ran. Past `limit_s` the run is stopped and its row
    keeps the stages it finished, marked `stopped` (a size too slow is measured, not skipped)."""
    key, sets = PLUGINS[plugin]
    out, cache = root / f"{plugin}-{n}", root / f"cache-{plugin}-{n}"
    args = [sys.executable, "-m", "cardio.cli", "run", "--plugin", plugin, "--out", str(out)]
    for s in [f"{key}={n}", *sets, *extra, f"cache_dir={cache}"]:
        args += ["--set", s]
    loads, t0 = [os.getloadavg()[0]], time.perf_counter()
    err = root / f"{plugin}-{n}.log"  # a file, not a pipe: a long run's log would fill a pipe nobody reads yet
    with err.open("w") as log:
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log)
    stopped = False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if limit_s is not None and time.perf_counter() - t0 > limit_s and not stopped:
            proc.terminate()  # cardio stops cleanly on SIGTERM; what it finished stays in tasks/
            stopped = True
        time.sleep(0.5)
        loads.append(os.getloadavg()[0])
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0 and not stopped:
        raise SystemExit(f"{plugin} at {n} patients failed:\n{err.read_text()[-2000:]}")
    return {"plugin": plugin, "n": n, "wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
            "rss_mb": usage.ru_maxrss / 1024, "cache_mb": _bytes(cache) / 1e6, "folder_mb": _bytes(out) / 1e6,
            "machine_load": float(np.mean(loads)), "stopped": stopped, **stage_seconds(out, wall)}


def exponent(rows: list[dict], column: str) -> float:
    """Slope of log(column) on log(patients) over the sizes >= 300 (all sizes when fewer than two are)."""
    rows = [r for r in rows if not r.get("stopped")]  # a stopped run's columns are partial
    big = [r for r in rows if r["n"] >= 300]
    use = big if len(big) >= 2 else rows
    x = np.log([r["n"] for r in use])
    y = np.log([max(r[column], 1e-3) for r in use])
    return float(np.polyfit(x, y, 1)[0]) if len(use) >= 2 else float("nan")


COLUMNS = ("wall", "cpu", *STAGES, "rss_mb", "cache_mb", "folder_mb")


def table(rows: list[dict]) -> list[str]:
    lines = ["| plugin | patients | machine load | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 3) + "|"]
    for r in rows:
        n = f"{r['n']} (stopped)" if r.get("stopped") else str(r["n"])
        lines.append(f"| {r['plugin']} | {n} | {r['machine_load']:.1f} | " + " | ".join(f"{r[c]:.1f}" for c in COLUMNS)
                     + " |")
    for plugin in dict.fromkeys(r["plugin"] for r in rows):
        mine = [r for r in rows if r["plugin"] == plugin]
        lines.append(f"| {plugin} | exponent | | " + " | ".join(f"{exponent(mine, c):.2f}" for c in COLUMNS) + " |")
    return lines


def logged_rows(log: Path, root: Path | None) -> list[dict]:
    """The rows a run of this script printed (its `row` lines), their stages read again from the run folders under
    `root` where they are kept: a long protocol run in pieces, or stopped, gives its table."""
    rows = [json.loads(line[4:]) for line in log.read_text().splitlines() if line.startswith("row {")]
    for r in rows:
        r.setdefault("machine_load", float("nan"))
        folder = root / f"{r['plugin']}-{r['n']}" if root else None
        if folder and folder.is_dir():
            r.update(stage_seconds(folder, r["wall"]))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plugins", default=",".join(PLUGINS))
    ap.add_argument("--sizes", type=int, nargs="+", default=SIZES)
    ap.add_argument("--out", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    ap.add_argument("--limit", type=float, default=None, help="stop a run past this many seconds; its row is marked "
                    "stopped, with the stages it finished (default: no limit)")
    ap.add_argument("--smoke", action="store_true", help="spect_polar at 20 and 40 patients, tiny")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="a config key for every run, after the fixed epochs (e.g. a smaller network input where "
                    "the default's fits would take hours on a CPU: the stages but the fits stay the default's)")
    ap.add_argument("--from-log", type=Path, default=None, help="print the table of the rows this script logged "
                    "(with --out: their stages read again from the runs kept there), running nothing")
    args = ap.parse_args()
    if args.from_log:
        print("\n".join(table(logged_rows(args.from_log, args.out))))
        return
    plugins, sizes, extra = (["spect_polar"], [20, 40], [*SMOKE, *args.sets]) if args.smoke else \
        (args.plugins.split(","), args.sizes, args.sets)
    with tempfile.TemporaryDirectory(prefix="cardio-scale-") as tmp:
        root = args.out or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        rows = []
        for plugin in plugins:
            for n in sizes:
                rows.append(one(plugin, n, extra, root, args.limit))
                stopped = " (stopped at the limit)" if rows[-1]["stopped"] else ""
                print(f"{plugin} at {n} patients: {rows[-1]['wall']:.0f} s{stopped}, "
                      f"peak RSS {rows[-1]['rss_mb']:.0f} MB", flush=True)
                print("row " + json.dumps(rows[-1]), flush=True)  # a long protocol stopped early keeps its rows
    print(f"{os.cpu_count()} CPUs; seconds, MB; exponents from the sizes >= 300 where two or more are")
    print("\n".join(table(rows)))


if __name__ == "__main__":
    main()
