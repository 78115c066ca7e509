"""Where a run's memory grows with the cohort: a plugin's run at two cohort sizes, one process per size, with the
resident memory after every hook (the first call of each, and the last fit's) and its peak so far, and the growth
per patient between the sizes, stage by stage.

    .venv/bin/python benchmarks/stage_memory.py --plugin ecg_transfer --sizes 60 240 \\
        --set ecg_transfer.pretrain.enabled=false --set ecg_transfer.finetune.epochs=1

Each size is an in-process `cardio run` (cardio_testing.harness.run_plugin, the inline executor) with an add-on whose
hook wrappers read the process's resident memory (/proc/self/statm), its anonymous and file-backed parts
(/proc/self/status) and its peak (ru_maxrss) after each hook; with --trim, after malloc_trim (what is held); with
--trace, tracemalloc's largest allocation sites still held after each hook (NumPy's arrays are traced, torch's
tensors are not) are printed for the larger size. Growth per patient: (larger - smaller) / (patients apart).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import PLUGINS  # each plugin's cohort-size key

HOOKS = ("cardio_load", "cardio_preprocess", "cardio_featurize", "cardio_prepare", "cardio_train", "cardio_predict",
         "cardio_explain", "cardio_export_model", "cardio_evaluate")


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _rss_parts_mb() -> dict[str, float]:
    """The resident memory's parts (/proc/self/status): anonymous (the heap, torch's tensors), file-backed
    (mapped files: libraries, memory-mapped cache arrays; page cache the kernel can drop) and shared memory."""
    parts = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("RssAnon", "RssFile", "RssShmem"):
                parts[key[3:].lower()] = int(value.split()[0]) / 1024
    return parts


def _trim() -> None:
    """Diagnostic (--trim): collect garbage and hand malloc's free pages back to the system, by the engine's own
    release_freed (glibc's malloc_trim; nothing where there is none)."""
    import gc

    from cardio.engine.device import release_freed

    gc.collect()
    release_freed()


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Recorder:
    """Hook wrappers noting memory after each hook: the first call's, and for the fits and predictions the last's."""

    __name__ = "stage_memory"

    def __init__(self, trace: bool, trim: bool = False) -> None:
        self.rows: dict[str, dict] = {}
        self.trace = trace
        self.trim = trim
        self.sites: dict[str, list] = {}
        self.calls: dict[str, int] = {}

    def note(self, hook: str) -> None:
        n = self.calls[hook] = self.calls.get(hook, 0) + 1
        name = hook if n == 1 else f"{hook} (last)"
        if self.trim:
            _trim()
        self.rows[name] = {"rss": _rss_mb(), "peak": _peak_mb(), **_rss_parts_mb()}
        if self.trace:
            import tracemalloc

            top = tracemalloc.take_snapshot().statistics("lineno")[:6]
            self.sites[name] = [(str(s.traceback[0]), s.size / 2**20) for s in top]


def _wrapper(hook: str):
    from cardio import hookimpl

    def wrap(self, **kwargs):
        out = yield
        self.note(hook)
        return out

    wrap.__name__ = hook
    return hookimpl(wrapper=True)(wrap)


for _hook in HOOKS:
    setattr(Recorder, _hook, _wrapper(_hook))


def child(plugin: str, n: int, sets: list[str], trace: bool, until_featurize: bool, trim: bool = False) -> dict:
    from cardio_testing.harness import run_plugin

    if trace:
        import tracemalloc

        tracemalloc.start()
    key = PLUGINS[plugin][0]
    recorder = Recorder(trace, trim)
    with tempfile.TemporaryDirectory(prefix="stage-memory-") as tmp:
        if until_featurize:  # the stages before the folds only: load, preprocess, the checks, featurize
            from cardio.study.stages import open_study
            from cardio_testing.harness import context, plugin_config

            study = open_study(plugin, [recorder])
            cfg = plugin_config(plugin, [f"{key}={n}", *sets, f"cache_dir={Path(tmp) / 'cache'}"])
            ctx = context(Path(tmp) / "run", cache_dir=Path(tmp) / "cache")
            study.featurize(study.cohort(cfg, ctx), cfg, ctx)
        else:
            run_plugin(plugin, Path(tmp) / "run", sets=[f"{key}={n}", *sets], cache_dir=Path(tmp) / "cache",
                       register=[recorder])
    return {"n": n, "rows": recorder.rows, "sites": recorder.sites, "end_peak": _peak_mb()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plugin", choices=list(PLUGINS), help="required but with --smoke")
    ap.add_argument("--sizes", type=int, nargs=2, default=[60, 240])
    ap.add_argument("--set", dest="sets", action="append", default=[], help="a config key=value (repeat)")
    ap.add_argument("--trace", action="store_true", help="tracemalloc's largest sites held after each hook")
    ap.add_argument("--trim", action="store_true", help="a diagnostic: before each reading, collect garbage and "
                    "return malloc's free pages to the system (what stays is held, not the allocator's high water)")
    ap.add_argument("--until-featurize", action="store_true", help="only the stages before the folds")
    ap.add_argument("--smoke", action="store_true", help="perfusion_polar's stages before the folds at two tiny "
                    "sizes: checks the script runs")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.smoke:
        args.plugin, args.sizes, args.until_featurize = args.plugin or "perfusion_polar", [20, 30], True
    if args.plugin is None:
        ap.error("--plugin is required")
    if args.child is not None:
        row = child(args.plugin, args.child, args.sets, args.trace, args.until_featurize, args.trim)
        print("row " + json.dumps(row), flush=True)
        return
    rows = []
    for n in args.sizes:
        cmd = [sys.executable, __file__, "--plugin", args.plugin, "--child", str(n),
               *(a for s in args.sets for a in ("--set", s)), *(["--trace"] if args.trace else []),
               *(["--trim"] if args.trim else []),
               *(["--until-featurize"] if args.until_featurize else [])]
        done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
        if done.returncode:
            raise SystemExit(f"{n} patients failed:\n{done.stderr[-3000:]}")
        rows += [json.loads(line[4:]) for line in done.stdout.splitlines() if line.startswith("row {")]
        print(f"{n} patients: peak {rows[-1]['end_peak']:.0f} MB", flush=True)
    a, b = rows
    apart = b["n"] - a["n"]
    print(f"{args.plugin}, load {os.getloadavg()[0]:.1f}; MB after each hook: resident (its anonymous part: heap "
          "and tensors; the rest is mostly file-backed pages), and the peak so far" + (" (after malloc_trim)" if
                                                                                       args.trim else ""))
    print(f"| after | resident {a['n']} | resident {b['n']} | KB a patient | anonymous {a['n']} | anonymous {b['n']} "
          f"| KB a patient | file {b['n']} | peak {a['n']} | peak {b['n']} | KB a patient |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in b["rows"]:
        if name not in a["rows"]:
            continue
        ra, rb = a["rows"][name], b["rows"][name]
        print(f"| {name} | {ra['rss']:.0f} | {rb['rss']:.0f} | {(rb['rss'] - ra['rss']) * 1024 / apart:.0f} "
              f"| {ra['anon']:.0f} | {rb['anon']:.0f} | {(rb['anon'] - ra['anon']) * 1024 / apart:.0f} "
              f"| {rb['file']:.0f} | {ra['peak']:.0f} | {rb['peak']:.0f} "
              f"| {(rb['peak'] - ra['peak']) * 1024 / apart:.0f} |")
    print(f"| end of run | | | | | | | | {a['end_peak']:.0f} | {b['end_peak']:.0f} | "
          f"{(b['end_peak'] - a['end_peak']) * 1024 / apart:.0f} |")
    for name, sites in b["sites"].items():
        print(f"{name} ({b['n']} patients), largest sites held (MB): "
              + "; ".join(f"{where} {mb:.1f}" for where, mb in sites))


if __name__ == "__main__":
    main()
