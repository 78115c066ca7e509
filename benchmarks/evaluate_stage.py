"""The evaluate stage alone, before and after a change, side by side in one run: one finished `cardio run`, then its
evaluate task run again and again (`cardio run --resume` of a copy whose evaluate is marked failed: the folds, the
final model and the prepared stages are read back, nothing is refitted), alternating the code of a base revision
and the working tree's. Every run's metrics.json, figures and report are compared with the base's (they must be
identical: the change is to the cost, never to a number or a picture).

Usage: python benchmarks/evaluate_stage.py [--plugin perfusion_polar] [--base main] [--repeats 3] [--run RUN]
       python benchmarks/evaluate_stage.py --smoke   (a toy spect run, base HEAD: about 35 s of CPU, for CI)
The base revision's src/, services/ and plugins/ (git archive) are put before the installed packages on PYTHONPATH;
the working tree's the same way, so both sides start alike. Printed per side (medians): evaluate's seconds (the task's
own, from its done marker), the process's wall, the CPU seconds of the process and every process it started (the
figure workers), and the machine's load average beside each run: the machine is shared, and the alternation puts a
change of load on both sides.

Where perfusion_polar's evaluate goes (its default run, 2 CPU cores, issue 57): 39 figures, each drawn in this
process (3 CPU s in all) and rendered in a worker process of its own, PNG at 300 dpi and SVG (18 CPU s: the PNGs
about 11, of which Pillow's encoding 4-6, the SVGs 5, a fresh process per figure the rest); their page images in
report.html (4.7 CPU s: decoding the PNGs, resizing, palette PNG and WebP); the statistics (1.5 CPU s, and 1.7 for
the subgroups); process start, imports and reading the stages back (about 8 s, a resumed evaluate's own).
--base 594005a, 3 repeats each time, every output identical: at load average 4 (other engineers' jobs on the 2
cores) CPU 37.4 -> 35.4 s and evaluate 46.9 -> 30.9 s; at load 2.5 25 minutes later CPU 36.1 -> 36.2 s and evaluate
24.0 -> 27.8 s (its pairs 27.2/27.8, 24.0/29.4, 16.7/15.0 s). No change is measurable here: the three cuts (statsmodels'
GLM and Logit imported without statsmodels.api, 0.35 s of imports; no cyclic garbage collection in a figure's worker;
the figures that need no estimate handed to the workers before the statistics) are each smaller than the load's
swing. What would be measurable changes the outputs or the design: the SVGs (5 CPU s), a worker per figure (about
2 CPU s against rendering all 39 in one process, which gave byte-identical files here), the figures' number or dpi.
echo_cmr (a 120-patient run: 1 epoch, 16-pixel clips, no final model; its default 3 folds), --base 594005a, 2
repeats at load 1.3-1.5: evaluate 34.6 -> 29.1 s (0.84x), CPU 66.5 -> 59.8 s (0.90x), every output identical: its
WMA - LGE comparison's patient bootstrap called roc_auc_score twice a resample, 2,000 resamples, most of it sklearn's
checks (a quarter of the evaluate process's own samples under py-spy); it now calls roc_curve and auc, the same
numbers, without the checks.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import metrics_diff  # scripts/metrics_diff.py: two runs' metrics.json estimate by estimate

REPO = Path(__file__).resolve().parents[1]

# --smoke: executors.py's toy spect study, figures on (they are most of evaluate's cost)
SMOKE = ("spect_polar.synthetic.n_patients=30", "spect_polar.synthetic.slices=20", "spect_polar.synthetic.size=40",
         "spect_polar.phase.rings=16", "spect_polar.phase.sectors=32", "spect_polar.autoencoder.hidden=32",
         "spect_polar.autoencoder.iterations=20", "cv.folds=2", "stats.n_resamples=100", "final_model=false",
         "explain=false")


def code_path(root: Path) -> str:
    """PYTHONPATH that imports cardio, its services and its plugins from `root` (a checkout's src/, services/*,
    plugins/*), before the installed (editable) ones."""
    parts = [root / "src", *sorted(p for p in (root / "services").iterdir() if p.is_dir()),
             *sorted(p for p in (root / "plugins").iterdir() if p.is_dir())]
    return os.pathsep.join(str(p) for p in parts)


def export(rev: str, dest: Path) -> Path:
    """The revision's src/, services/ and plugins/ written under dest (git archive: no worktree, nothing in .git)."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "src", "services", "plugins"],
                             capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def _cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def _load() -> float:
    return os.getloadavg()[0]


def as_failed_evaluate(run: Path, copy: Path) -> Path:
    """A copy of a finished run whose evaluate task is marked failed, so that --resume runs evaluate alone."""
    shutil.copytree(run, copy, symlinks=True)
    (copy / "tasks" / "evaluate" / "done.json").unlink()
    meta = json.loads((copy / "run.json").read_text())
    (copy / "run.json").write_text(json.dumps({**meta, "status": "failed"}, indent=2))
    return copy


def evaluate_once(run: Path, copy: Path, pythonpath: str, env: dict) -> dict:
    """Run the copy's evaluate task with the code on `pythonpath`: its seconds, the process's and its CPU."""
    as_failed_evaluate(run, copy)
    started, cpu, load = time.perf_counter(), _cpu(), _load()
    proc = subprocess.run([sys.executable, "-m", "cardio.cli", "run", "--resume", str(copy)], capture_output=True,
                          text=True, env={**env, "PYTHONPATH": pythonpath}, cwd=copy.parent)
    if proc.returncode != 0:
        raise SystemExit(f"evaluate of {copy} failed:\n{proc.stderr[-3000:]}")
    done = json.loads((copy / "tasks" / "evaluate" / "done.json").read_text())
    return {"evaluate": done["elapsed_s"], "wall": time.perf_counter() - started, "cpu": _cpu() - cpu,
            "load": (load + _load()) / 2}


def differences(before: Path, after: Path) -> list[str]:
    """What differs between two evaluations of one run: estimates and tests, figure files, report text (but for the
    seconds the run took, which the report states)."""
    out = []
    _, changed, largest = metrics_diff.diff(before, after)
    if changed:
        out.append(f"{changed} estimate(s)/test(s) differ, by {largest:.3g} at most")
    names = sorted({p.name for p in (before / "figures").glob("*")} | {p.name for p in (after / "figures").glob("*")})
    for name in names:
        a, b = before / "figures" / name, after / "figures" / name
        if not (a.is_file() and b.is_file() and a.read_bytes() == b.read_bytes()):
            out.append(f"figures/{name}")
    for name in ("report.md", "report.html", "report.json"):
        a, b = (before / name, after / name)
        if a.is_file() != b.is_file() or (a.is_file() and _without_seconds(a) != _without_seconds(b)):
            out.append(name)
    return out


def _without_seconds(path: Path) -> str:
    """The report without the run's seconds (the time since the run started, different on every evaluation, and
    whether they count from a resume, as every evaluation after the first does): the meta fields of report.json and
    the intro's "N fold(s), S s." or "S s since the run was last resumed." only; a plain replace of S also hit every
    other number that contains it, in one report and not the other."""
    if path.suffix == ".json":
        doc = json.loads(path.read_text())
        doc["meta"].pop("elapsed_s", None)
        doc["meta"].pop("resumed", None)
        return json.dumps(doc, sort_keys=True)
    return re.sub(r"fold\(s\), [0-9.]+ s( since the run was last resumed)?\.", "fold(s), <elapsed> s.",
                  path.read_text())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plugin", default="perfusion_polar")
    ap.add_argument("--base", default="main", help="the revision to compare the working tree with")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--run", type=Path, help="a finished run of --plugin to evaluate again (default: one is made); "
                                             "made with train.keep_checkpoints=true, else a prepare that fits (e.g. "
                                             "ecg_transfer's pretraining) fits again before each evaluate")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="config of the run made (KEY=VALUE)")
    ap.add_argument("--smoke", action="store_true", help="a toy spect run, base HEAD, one repeat")
    args = ap.parse_args()
    plugin, base = ("spect_polar", "HEAD") if args.smoke else (args.plugin, args.base)
    sets, repeats = ([*SMOKE, *args.sets], 1) if args.smoke else (args.sets, args.repeats)
    if shutil.which("git") is None or not (REPO / ".git").exists():
        print("skipped: the base revision needs git and this checkout's history")
        return 0
    env = {**os.environ, "MPLBACKEND": "Agg"}
    with tempfile.TemporaryDirectory(prefix="cardio-evaluate-") as tmp_name:
        tmp = Path(tmp_name)
        code = {"before": code_path(export(base, tmp / "base")), "after": code_path(REPO)}
        run = args.run.resolve() if args.run else tmp / "run"
        if args.run is None:
            # its checkpoints kept: a resumed prepare reads back what it fitted (ecg_transfer's pretrained network)
            # instead of fitting it again in every evaluate timed
            made = subprocess.run([sys.executable, "-m", "cardio.cli", "run", "--plugin", plugin, "--out", str(run),
                                   *[a for s in (*sets, "train.keep_checkpoints=true") for a in ("--set", s)]],
                                  capture_output=True, text=True,
                                  env={**env, "PYTHONPATH": code["after"]}, cwd=tmp)
            if made.returncode != 0:
                raise SystemExit(f"the {plugin} run failed:\n{made.stderr[-3000:]}")
        print(f"{plugin}: evaluate of {run} again, {base} ({code['before'].split(os.pathsep)[0]}) against the "
              f"working tree, {repeats} alternating repeat(s); {os.cpu_count()} CPUs, load {_load():.1f}", flush=True)
        rows: dict[str, list[dict]] = {"before": [], "after": []}
        differ: list[str] = []
        for r in range(repeats):
            for side in (("before", "after") if r % 2 == 0 else ("after", "before")):
                rows[side].append(evaluate_once(run, tmp / f"{side}-{r}", code[side], env))
                row = rows[side][-1]
                print(f"  {side:<6} repeat {r + 1}: evaluate {row['evaluate']:5.1f} s, process {row['wall']:5.1f} s, "
                      f"{row['cpu']:5.1f} s CPU; load average {row['load']:.1f}", flush=True)
            differ += [f"repeat {r + 1}: {d}" for d in differences(tmp / f"before-{r}", tmp / f"after-{r}")]
    med = {side: {k: statistics.median(row[k] for row in rs) for k in ("evaluate", "wall", "cpu", "load")}
           for side, rs in rows.items()}
    print(f"\n{'':<8}{'evaluate s':>11}{'process s':>11}{'CPU s':>8}{'load':>7}")
    for side, m in med.items():
        print(f"{side:<8}{m['evaluate']:11.1f}{m['wall']:11.1f}{m['cpu']:8.1f}{m['load']:7.1f}")
    b, a = med["before"], med["after"]
    print(f"{'after/before':<8}{a['evaluate'] / b['evaluate']:11.2f}{a['wall'] / b['wall']:11.2f}"
          f"{a['cpu'] / b['cpu']:8.2f}   (medians of {repeats}; CPU: the process and its figure workers)")
    same = "yes" if not differ else "NO: " + "; ".join(differ)
    print(f"metrics, figures and report identical to the base's: {same}")
    return 0 if not differ else 1


if __name__ == "__main__":
    raise SystemExit(main())
