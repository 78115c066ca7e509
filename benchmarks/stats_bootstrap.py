"""Stratified bootstrap AUC: cardio against a loop of sklearn roc_auc_score and against R pROC, records and patients.

Usage: python benchmarks/stats_bootstrap.py [--n 2000] [--resamples 10000] [--loop-resamples N] [--repeats 5]
                                             [--no-proc]

Measured side by side in this one run, on the same data:
  1. auc_from_indices against a Python loop of sklearn roc_auc_score on identical resample indices (exact to 1e-12);
  2. bootstrap_ci end to end: records, patients with 1-3 records (groups=), and one record per patient under
     relabelled ids; the grouped AUCs are checked against sklearn on the expanded resamples (exact to 1e-12);
  3. R pROC ci.auc(method="bootstrap", boot.n, boot.stratified=TRUE) through Rscript: its own system.time around
     ci.auc and the wall time of the whole subprocess, beside the whole `python -c` process that reads the same
     CSV and calls bootstrap_ci (interpreter start, `import cardio_stats` and all: how a user meets it), and beside
     them the floors under it (the bare interpreter; + NumPy and the CSV; + the same resample draws and nothing
     else) with the ratio each floor would allow; skipped, with the reason, when R or pROC is missing;
  4. interval widths when every record is duplicated: the patient interval stays, the record one narrows;
  5. DeLong at n = 100,000, records and clustered.
Times are medians of --repeats runs (cardio runs before and after pROC's), wall and CPU; quote ratios, not seconds.

Measured (`--loop-resamples 1000`, 2-core VM at load 18-22, R 4 + pROC 1.18.0): whole Rscript / whole python -c
28.3 x CPU, 27.1 x wall (e8f5729: 17-18 x); ci.auc / bootstrap_ci in one process 73.6 x CPU. The floors allow
58.8 x (interpreter + NumPy + the CSV) and 40.7 x (+ the same draws, nothing else): the draws of these intervals
alone leave no room for 40 x once the AUCs are counted. tests/test_stats_bootstrap_import_set.py pins the timed
process's import set (no torch, matplotlib, pluggy, scikit-learn, pandas or SciPy; few modules beyond NumPy's).
"""
from __future__ import annotations

import argparse
import functools
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
from sklearn.metrics import roc_auc_score

from cardio_stats import auc_from_indices, bootstrap_ci, delong_ci, resample_indices
from cardio_stats.bootstrap import _auc_from_draws, _unit_blocks, patients_of
from cardio_stats.result import Estimate

T = TypeVar("T")

PROC_SCRIPT = r"""
suppressMessages(library(pROC))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
set.seed(1)
r <- roc(d$y, d$s, levels = c(0, 1), direction = "<", quiet = TRUE)
t <- system.time(ci <- ci.auc(r, method = "bootstrap", boot.n = as.integer(args[2]), boot.stratified = TRUE,
                              progress = "none"))
cat(sprintf("%.17g %.17g %.17g %.6f %.6f %s\n", ci[1], ci[2], ci[3], t[["elapsed"]],
            t[["user.self"]] + t[["sys.self"]], as.character(packageVersion("pROC"))))
"""


CARDIO_SCRIPT = """
import sys
import numpy as np
from cardio_stats import bootstrap_ci
d = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1)
e = bootstrap_ci(d[:, 0].astype(int), d[:, 1], n_resamples=int(sys.argv[2]), seed=1)
print(e.ci_low, e.estimate, e.ci_high)
"""

# The floors under that process, each a whole process too: what any bootstrap_ci with these intervals must pay.
FLOOR_SCRIPTS = {
    "interpreter (python -c pass)": "pass",
    "+ import numpy, read the CSV": """
import sys
import numpy as np
d = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1)
""",
    "+ draw the same resamples only": """
import sys
import numpy as np
from cardio_stats.bootstrap import _draw_blocks
d = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1)
y = d[:, 0].astype(np.int8)
_draw_blocks(y.size, int(sys.argv[2]), 1, y)  # bootstrap_ci's draws (stratified, seed 1), and nothing else
""",
}


def _child(cmd: list[str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """A subprocess with its wall time and its CPU time (user + system, steadier on a shared machine)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    w0 = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True)
    wall, after = time.perf_counter() - w0, resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, run


def _timed(fn: Callable[[], T]) -> tuple[float, float, T]:
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w0, time.process_time() - c0, out


def _proc(y: np.ndarray, score: np.ndarray, n_resamples: int, repeats: int) -> dict | str:
    """pROC's bootstrap CI and times, or the reason it was skipped."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        return "Rscript is not on PATH"
    check = subprocess.run([rscript, "-e", "library(pROC)"], capture_output=True, text=True)
    if check.returncode != 0:
        return f"R has no pROC ({check.stderr.strip().splitlines()[-1] if check.stderr.strip() else 'library failed'})"
    with tempfile.TemporaryDirectory() as tmp:
        data, script = Path(tmp) / "d.csv", Path(tmp) / "proc.R"
        np.savetxt(data, np.column_stack([y, score]), delimiter=",", header="y,s", comments="", fmt=["%d", "%.17g"])
        script.write_text(PROC_SCRIPT)
        wall, process_cpu, run = _child([rscript, str(script), str(data), str(n_resamples)])
        python = _python_process(data, n_resamples, CARDIO_SCRIPT, repeats)
        floors = {name: _python_process(data, n_resamples, code, repeats) for name, code in FLOOR_SCRIPTS.items()}
    if run.returncode != 0:
        return f"Rscript failed: {run.stderr.strip()[-300:]}"
    lo, auc, hi, elapsed, cpu, version = run.stdout.split()
    return {"lo": float(lo), "auc": float(auc), "hi": float(hi), "ci_auc_wall": float(elapsed),
            "ci_auc_cpu": float(cpu), "process_wall": wall, "version": version, "process_cpu": process_cpu,
            "python_process": python, "floors": floors, "repeats": repeats}


def _python_process(data: Path, n_resamples: int, code: str, repeats: int) -> tuple[float, float]:
    """Median wall and CPU time of a whole `python -c` process (by default: reads the CSV, calls bootstrap_ci)."""
    cmd = [sys.executable, "-c", code, str(data), str(n_resamples)]
    # one run first with Python's default bytecode caching, as on a user's machine after the first import: a shell
    # with PYTHONDONTWRITEBYTECODE set would otherwise compile cardio's modules again in every run (~10 ms each)
    caching = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(cmd, capture_output=True, env=caching)
    runs = [_child(cmd) for _ in range(repeats)]
    if runs[0][2].returncode != 0:
        raise SystemExit(f"python -c bootstrap_ci failed: {runs[0][2].stderr[-500:]}")
    return float(np.median([w for w, _, _ in runs])), float(np.median([c for _, c, _ in runs]))


def _patients(n: int, rng: np.random.Generator) -> np.ndarray:
    """Patient ids for n records, 1-3 records a patient, records of a patient scattered over the table."""
    ids = np.repeat(np.arange(n), rng.integers(1, 4, n))[:n]
    return rng.permutation(ids)


def _mostly_single(n: int, rng: np.random.Generator) -> np.ndarray:
    """Patient ids for n records where a tenth of the records join another patient: the grouped path's worst
    case (almost as many patients as records, yet not one record each)."""
    ids = np.arange(n)
    moved = rng.choice(n, n // 10, replace=False)
    ids[moved] = ids[(moved + 1) % n]
    return rng.permutation(ids)


def _against_sklearn_loop(y: np.ndarray, score: np.ndarray,
                          args: argparse.Namespace) -> tuple[np.ndarray, float, float, bool]:
    """auc_from_indices against a loop of sklearn roc_auc_score on identical indices; (AUCs, loop s, diff, ok)."""
    t_draw, _, drawn = _timed(lambda: resample_indices(y.size, args.resamples, seed=1, strata=y))
    idx = np.asarray(drawn)  # without groups every resample has n records: one array
    t_fast, _, fast = _timed(lambda: auc_from_indices(y, score, idx))
    n_loop = args.loop_resamples or args.resamples
    t_slow, _, slow = _timed(lambda: np.array([roc_auc_score(y[i], score[i]) for i in idx[:n_loop]]))
    max_diff = float(np.max(np.abs(fast[:n_loop] - slow)))
    print(f"stratified bootstrap AUC, n = {args.n} ({int(y.sum())} positive), {args.resamples} resamples")
    print(f"  drawing the resample indices:              {t_draw:8.3f} s")
    print(f"  vectorized auc_from_indices:               {t_fast:8.3f} s")
    print(f"  Python loop, sklearn roc_auc_score:        {t_slow:8.3f} s  ({n_loop} resamples)")
    print(f"  speed-up (per resample):                   {(t_slow / n_loop) / (t_fast / args.resamples):8.1f} x")
    print(f"  max |vectorized - sklearn|:                {max_diff:.2e}  (must be < 1e-12)")
    return fast, t_slow / n_loop * args.resamples, max_diff, max_diff < 1e-12


def _end_to_end(y: np.ndarray, score: np.ndarray, cases: dict,
                args: argparse.Namespace) -> tuple[dict, dict, dict | str]:
    """bootstrap_ci for every case, interleaved and repeated, pROC run halfway: (median times, estimates, pROC)."""
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in cases}
    ests: dict[str, Estimate] = {}

    def run_cardio(repeats: int) -> None:
        for _ in range(repeats):
            for name, g in cases.items():
                w, c, ests[name] = _timed(functools.partial(bootstrap_ci, y, score, n_resamples=args.resamples,
                                                            seed=1, groups=g))
                times[name].append((w, c))

    run_cardio(max(1, args.repeats // 2))
    proc: dict | str = "--no-proc" if args.no_proc else _proc(y, score, args.resamples, args.repeats)
    run_cardio(args.repeats - max(1, args.repeats // 2))
    med = {k: (float(np.median([w for w, _ in v])), float(np.median([c for _, c in v]))) for k, v in times.items()}
    return med, ests, proc


def _grouped_exactness(y: np.ndarray, score: np.ndarray, groups: np.ndarray, n_check: int) -> float:
    """Largest gap between the grouped vectorized AUCs and sklearn on the expanded resamples."""
    patients = patients_of(groups, y.size)
    grouped_auc = _auc_from_draws(y, score, _unit_blocks(y.size, n_check, 1, y, patients), patients)
    expanded = resample_indices(y.size, n_check, 1, strata=y, groups=groups)
    return float(np.max(np.abs(grouped_auc - [roc_auc_score(y[i], score[i]) for i in expanded])))


def _print_end_to_end(med: dict, ests: dict, loop_total: float, grouped_diff: float, n_check: int,
                      repeats: int) -> None:
    est, same = ests["records"], ests["one record each, relabelled"]
    print(f"bootstrap_ci end to end (draw + AUC + CI), median of {repeats}, wall / CPU:")
    for name, (w, c) in med.items():
        e = ests[name]
        print(f"  {name:30s} {w:7.3f} s / {c:7.3f} s   AUC {e.estimate:.4f} [{e.ci_low:.4f}, {e.ci_high:.4f}]"
              + (f"  ({e.extra['n_groups']} patients)" if name.startswith("patients") else ""))
    for name in ("patients (1-3 records)", "patients (90% one record)"):
        print(f"  grouped / ungrouped, {name:25s} {med[name][0] / med['records'][0]:.2f} x wall, "
              f"{med[name][1] / med['records'][1]:.2f} x CPU  (goal <= 1.5 x)")
    print(f"  relabelled singletons / ungrouped:         "
          f"{med['one record each, relabelled'][0] / med['records'][0]:.2f} x wall (same interval: "
          f"{(same.ci_low, same.ci_high) == (est.ci_low, est.ci_high)})")
    print(f"  max |grouped AUC - sklearn on expanded|:   {grouped_diff:.2e}  ({n_check} resamples, must be < 1e-12)")
    print(f"  vs the sklearn loop:                       {loop_total / med['records'][0]:.1f} x")


def _print_proc(proc: dict | str, med: dict, n_resamples: int) -> None:
    if isinstance(proc, str):
        print(f"R pROC: skipped: {proc}")
        return
    print(f"R pROC {proc['version']} ci.auc(method='bootstrap', boot.n={n_resamples}, boot.stratified=TRUE):")
    print(f"  ci.auc (system.time inside R):             {proc['ci_auc_wall']:7.3f} s wall / "
          f"{proc['ci_auc_cpu']:7.3f} s CPU   median {proc['auc']:.4f} [{proc['lo']:.4f}, {proc['hi']:.4f}]")
    (py_wall, py_cpu), r_cpu = proc["python_process"], proc["process_cpu"]
    print(f"  whole Rscript subprocess:                  {proc['process_wall']:7.3f} s wall / {r_cpu:7.3f} s CPU")
    print(f"  whole python -c process (bootstrap_ci):    {py_wall:7.3f} s wall / {py_cpu:7.3f} s CPU "
          f"(median of {proc['repeats']})")
    print(f"  whole process / whole process, Rscript / python: {proc['process_wall'] / py_wall:.1f} x wall, "
          f"{r_cpu / py_cpu:.1f} x CPU  (goal >= 40 x)")
    print(f"  floors, whole python -c processes (median of {proc['repeats']}), and the most Rscript / python could "
          "be above each:")
    for name, (w, c) in proc["floors"].items():
        print(f"    {name:32s} {w:7.3f} s wall / {c:7.3f} s CPU   ceiling {proc['process_wall'] / w:6.1f} x wall, "
              f"{r_cpu / c:6.1f} x CPU")
    for name in ("records", "patients (1-3 records)"):
        w, c = med[name]
        print(f"  pROC / cardio {name:24s} {proc['ci_auc_wall'] / w:6.1f} x wall (ci.auc), "
              f"{proc['ci_auc_cpu'] / c:6.1f} x CPU, {proc['process_wall'] / w:6.1f} x Rscript process / in-process")


def _duplicated(y: np.ndarray, score: np.ndarray, est, n_resamples: int) -> None:
    """Widths when every record is duplicated: the patient interval stays, the record one narrows by ~sqrt(2)."""
    def width(e) -> float:
        return e.ci_high - e.ci_low

    y2, s2, ids2 = np.repeat(y, 2), np.repeat(score, 2), np.repeat(np.arange(y.size), 2)
    base = width(est)
    dup_patients = width(bootstrap_ci(y2, s2, n_resamples=n_resamples, seed=1, groups=ids2))
    dup_records = width(bootstrap_ci(y2, s2, n_resamples=n_resamples, seed=1))
    print("every record duplicated (each patient now has 2 identical records):")
    print(f"  width original {base:.4f}, patients {dup_patients:.4f} ({dup_patients / base:.3f} x), "
          f"records {dup_records:.4f} (original / records = {base / dup_records:.3f}, sqrt(2) = 1.414)")


def _delong(rng: np.random.Generator, n: int) -> None:
    big_y = (rng.random(n) < 0.3).astype(int)
    big_s = rng.normal(size=n) + 0.5 * big_y
    big_g = _patients(n, rng)
    delong_ci(big_y[:1000], big_s[:1000])  # warm-up
    t_delong, _, d = _timed(lambda: delong_ci(big_y, big_s))
    t_clustered, _, dc = _timed(lambda: delong_ci(big_y, big_s, groups=big_g))
    print(f"DeLong CI at n = {n}: {t_delong:.3f} s (AUC {d.estimate:.4f} [{d.ci_low:.4f}, {d.ci_high:.4f}])")
    print(f"  clustered, {dc.extra['n_groups']} patients: {t_clustered:.3f} s ([{dc.ci_low:.4f}, {dc.ci_high:.4f}])")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--resamples", type=int, default=10_000)
    ap.add_argument("--loop-resamples", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--delong-n", type=int, default=100_000)
    ap.add_argument("--no-proc", action="store_true", help="skip R pROC")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: checks the script runs")
    args = ap.parse_args()
    if args.smoke:
        args.n, args.resamples, args.loop_resamples, args.repeats, args.delong_n = 200, 200, 20, 2, 2000
    rng = np.random.default_rng(0)
    y = (rng.random(args.n) < 0.3).astype(int)
    score = np.round(rng.normal(size=args.n) + 0.8 * y, 2)  # rounded: ties, the harder case
    groups = _patients(args.n, rng)
    cases = {"records": None, "patients (1-3 records)": groups,
             "patients (90% one record)": _mostly_single(args.n, rng),
             "one record each, relabelled": rng.permutation(args.n).astype(str)}  # ids in no particular order

    fast, loop_total, _, ok = _against_sklearn_loop(y, score, args)
    med, ests, proc = _end_to_end(y, score, cases, args)
    est, same = ests["records"], ests["one record each, relabelled"]
    assert est.ci_low == float(np.percentile(fast, 2.5)) and est.ci_high == float(np.percentile(fast, 97.5))
    n_check = min(300, args.resamples)
    grouped_diff = _grouped_exactness(y, score, groups, n_check)
    ok &= (same.ci_low, same.ci_high) == (est.ci_low, est.ci_high) and grouped_diff < 1e-12
    _print_end_to_end(med, ests, loop_total, grouped_diff, n_check, args.repeats)
    _print_proc(proc, med, args.resamples)
    _duplicated(y, score, est, args.resamples)
    _delong(rng, args.delong_n)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
