"""cardio sweep on the toy plugin: a 2x2 grid x 2 seeds as eight normal runs, the summary's rows taken from each
run's metrics.json and the optimism sentence; the same command again runs only what is not finished; local with
2 workers writes the same summary as inline."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from cardio.data import CardioError
from cardio_cluster import sweep
from cardio_testing.harness import invoke

QUICK = ("--set", "train.epochs=1", "--set", "cv.folds=2", "--set", "report.figures=false", "--set",
         "final_model=false", "--set", "stats.n_resamples=100", "--set", "explain=false")
GRID = ("--grid", "model.hidden=8,16", "train.lr=0.001,0.01")  # two keys after one --grid, as the README writes


def _sweep(*args: str) -> str:
    result = invoke("sweep", "--plugin", "toy", *QUICK, *args)
    assert result.exit_code == 0, result.stderr[-3000:]
    return result.stderr


@pytest.fixture(scope="module")
def grid_sweep(toy_env) -> Path:
    _sweep(*GRID, "--seeds", "0", "1", "--out", "grid")
    return toy_env / "grid"


def _done_times(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.glob("*/seed*/tasks/*/done.json")}


def test_a_grid_by_seeds_is_eight_runs_and_every_estimate_in_the_summary(grid_sweep):
    runs = sorted(p.parent for p in grid_sweep.glob("*/seed*/run.json"))
    assert [str(p.relative_to(grid_sweep)) for p in runs] == sorted(
        f"model.hidden={h},train.lr={lr}/seed{s}" for h in (8, 16) for lr in ("0.001", "0.01") for s in (0, 1))
    assert all(json.loads((r / "run.json").read_text())["status"] == "finished" for r in runs)
    table = pd.read_csv(grid_sweep / "summary.csv", dtype={"seed": str})
    per_run = table[table["seed"] != "mean"]
    for run in runs:  # each run's pooled estimates, every one, with its interval, as its metrics.json has them
        pooled = [e for e in json.loads((run / "metrics.json").read_text())["estimates"]
                  if e["fold"] == "pooled" and e["subgroup"] is None]
        mine = per_run[per_run["run"] == str(run.relative_to(grid_sweep))]
        assert len(mine) == len(pooled) > 5
        for e, (_, row) in zip(pooled, mine.iterrows()):
            assert (row["metric"], row["method"], row["model"]) == (e["metric"], e["method"], e["model"])
            assert row["estimate"] == e["estimate"] and row["ci_low"] == pytest.approx(
                    float("nan") if e["ci_low"] is None else e["ci_low"], nan_ok=True)  # no interval: an empty cell
    means = table[table["seed"] == "mean"]
    assert len(means) == 4 * len(per_run) // 8 and set(means["n_seeds"]) == {2}
    auc = per_run[(per_run["metric"] == "auc") & (per_run["method"] == "delong")]
    by_setting = auc.groupby("setting")["estimate"].mean()
    mean_rows = means[(means["metric"] == "auc") & (means["method"] == "delong")].set_index("setting")["estimate"]
    assert mean_rows.to_dict() == pytest.approx(by_setting.to_dict())
    text = (grid_sweep / "summary.md").read_text()
    assert sweep.OPTIMISM in text and "pooled auc (delong) of model `mlp`, task `label`" in text
    assert f"Best setting: `{by_setting.idxmax()}`" in text


def test_the_same_command_again_runs_only_what_is_not_finished(grid_sweep, toy_env):
    copy = toy_env / "again"
    shutil.copytree(grid_sweep, copy)
    before, summary = _done_times(copy), (copy / "summary.csv").read_bytes()
    gone = "model.hidden=16,train.lr=0.01/seed1"
    shutil.rmtree(copy / gone)  # never run
    partial = copy / "model.hidden=8,train.lr=0.01/seed0"  # stopped before its evaluate step
    shutil.rmtree(partial / "tasks" / "evaluate")
    (partial / "metrics.json").unlink()
    meta = json.loads((partial / "run.json").read_text())
    (partial / "run.json").write_text(json.dumps({**meta, "status": "interrupted"}))
    err = _sweep(*GRID, "--seeds", "0", "1", "--out", "again")
    assert "6 run(s) finished, 2 to run" in err
    after = _done_times(copy)
    changed = {k for k in before if after.get(k) != before[k]}
    # the partial run refits nothing: inline rebuilds its stages before the folds (prepare) and evaluates
    assert changed == {f"{gone}/tasks/{t}/done.json" for t in ("prepare", "fit-fold0", "fit-fold1", "evaluate")} | {
        f"model.hidden=8,train.lr=0.01/seed0/tasks/{t}/done.json" for t in ("prepare", "evaluate")}
    assert (copy / "summary.csv").read_bytes() == summary
    no_inner = invoke("sweep", "--plugin", "toy", *QUICK, *GRID, "--seeds", "0", "1", "--out", "again", "--nested")
    assert no_inner.exit_code == 2 and "--set cv.inner_folds=3" in no_inner.stderr, no_inner.stderr[-2000:]
    other = invoke("sweep", "--plugin", "toy", *QUICK, "--set", "train.batch_size=8", *GRID, "--seeds", "0", "1",
                   "--out", "again")
    # another --set: not this sweep's folder (its sweep.json says so), refused before any run is looked at
    assert other.exit_code == 2 and "is not this sweep's folder" in other.stderr


def test_local_with_two_workers_writes_the_summary_inline_writes(toy_env):
    grid = ("--grid", "model.hidden=8,16", "--seeds", "0")
    _sweep(*grid, "--out", "inline")
    _sweep(*grid, "--out", "local", "--executor", "local", "--workers", "2")
    for name in ("summary.csv", "summary.md"):
        assert (toy_env / "local" / name).read_bytes() == (toy_env / "inline" / name).read_bytes()
    # one process per run, in the job folder this command made (executors.job_folder)
    assert len(list((toy_env / "local" / "submitit").glob("*/*/*_result.pkl"))) == 2


def test_a_killed_local_run_is_known_well_within_submitits_wait(toy_env):
    """kill -9 of a sweep's run process (local executor): the sweep stops, naming the run, in a small part of the
    15 s submitit waits for the result file of a job that ended without one (executors.start_local sets it aside
    for a sweep's runs as for a run's tasks)."""
    submitit = pytest.importorskip("submitit")
    wait = submitit.core.core.Job._results_timeout_s
    slow = ("--set", "data.n_patients=400", "--set", "model.hidden=256", "--set", "train.epochs=200",
            "--set", "train.patience=0", "--set", "train.batch_size=16")
    proc = subprocess.Popen([sys.executable, "-m", "cardio.cli", "sweep", "--plugin", "toy", *QUICK, *slow,
                             "--grid", "train.lr=0.001", "--out", "killed", "--executor", "local", "--workers", "1"],
                            cwd=toy_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    running = toy_env / "killed" / "train.lr=0.001" / "seed0" / "tasks" / "fit-fold0" / "running.json"
    deadline = time.monotonic() + 300
    while not running.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    os.kill(json.loads(running.read_text())["pid"], signal.SIGKILL)  # the run's process, mid-fit
    killed = time.monotonic()
    _, err = proc.communicate(timeout=300)
    known = time.monotonic() - killed
    assert proc.returncode == 2 and "run(s) failed" in err and "seed0" in err, err[-2000:]
    assert known < wait / 3, f"the sweep took {known:.1f} s to know its run was lost (submitit waits {wait} s)"


def test_the_grid_as_written():
    assert sweep.parse_grid(["subgroups=[sex,site],[]", "train.lr=1e-3, 3e-4"]) == [
        ("subgroups", ["[sex,site]", "[]"]), ("train.lr", ["1e-3", "3e-4"])]
    for bad, says in ((["train.lr"], "KEY=V1,V2"), (["a=1", "a=2"], "twice"), (["seed=1,2"], "--seeds"),
                      ([], "at least one")):
        with pytest.raises(CardioError, match=says):
            sweep.parse_grid(bad)
    assert sweep.setting_name([("subgroups", "[sex,site]"), ("x", "a/b")]) == "subgroups=_sex_site_,x=a_b"


def test_nested_cv_of_choosing_the_best_on_a_null_setting(toy_env):
    """Labels independent of the features (data.signal=0): the recipe's nested estimate is chance, its CI covers
    0.5; each outer fold's choice is the setting best on that fold's inner folds, recomputed here by scikit-learn."""
    from sklearn.metrics import roc_auc_score

    from cardio.study import tasks

    _sweep(*GRID, "--seeds", "0", "--out", "null", "--set", "data.signal=0", "--set", "cv.inner_folds=2",
           "--nested")
    root = toy_env / "null"
    nested = pd.read_csv(root / "nested.csv")
    assert len(nested) == 1 and nested["ci_low"][0] < 0.5 < nested["ci_high"][0]
    settings = [f"model.hidden={h},train.lr={lr}" for h in (8, 16) for lr in ("0.001", "0.01")]  # grid order
    parts = []
    for fold in ("fold0", "fold1"):
        inner = {s: tasks.read_predictions(root / s / "seed0", f"fit-{fold}", b"", None, file=tasks.INNER).table
                 for s in settings}
        assert all(set(t["inner_fold"]) == {f"{fold}-inner0", f"{fold}-inner1"} for t in inner.values())
        best = max(settings, key=lambda s: (roc_auc_score(inner[s]["y_true"], inner[s]["y_score"]),
                                            -settings.index(s)))  # a tie goes to the first in grid order
        assert f"{fold}: {best}" in nested["chosen"][0]
        outer = pd.read_csv(root / best / "seed0" / "predictions.csv")
        parts.append(outer[outer["fold"] == fold])
    pooled = pd.concat(parts)
    assert nested["estimate"][0] == pytest.approx(roc_auc_score(pooled["y_true"], pooled["y_score"]))
    text = (root / "summary.md").read_text()
    assert "## Nested CV of the choose-the-best recipe" in text and sweep.OPTIMISM in text


FAKE = {"sbatch": "#!/bin/sh\n# keeps the script it is given and answers as sbatch does\ncp \"$1\" \"{dir}/array.sh\"\n"
                  "echo 'Submitted batch job 4242'\n",
        "squeue": "#!/bin/sh\n# lists the array while {dir}/queued exists\n[ -e \"{dir}/queued\" ] && echo 4242_0\n"
                  "exit 0\n",
        "srun": "#!/bin/sh\nexit 1\n"}


def test_slurm_gets_one_array_of_whole_runs_and_a_rerun_waits_for_it(toy_env, monkeypatch):
    """submitit's sbatch script (a fake sbatch keeps it): one array of the 2 runs, capped, with the signal; while
    squeue lists the array, the same command submits nothing again."""
    pytest.importorskip("submitit")
    folder = toy_env / "fake_slurm"
    folder.mkdir()
    for tool, text in FAKE.items():
        (folder / tool).write_text(text.format(dir=folder))
        (folder / tool).chmod(0o700)
    monkeypatch.setenv("PATH", f"{folder}:{Path(shutil.which('sh') or '/bin/sh').parent}")
    args = ("--grid", "model.hidden=8,16", "--out", "slurm", "--executor", "slurm", "--workers", "1", "--set",
            "executor.signal=USR1")
    result = invoke("sweep", "--plugin", "toy", *QUICK, *args)
    assert result.exit_code == 0 and "submitted" in result.stdout, result.stderr[-2000:]
    script = (folder / "array.sh").read_text()
    assert "#SBATCH --array=0-1%1" in script and "#SBATCH --signal=USR1@120" in script
    assert "--dependency" not in script
    assert json.loads((toy_env / "slurm" / "sweep.json").read_text())["slurm_array"] == "4242"
    (folder / "queued").touch()
    again = invoke("sweep", "--plugin", "toy", *QUICK, *args)
    assert again.exit_code == 2 and "4242 is still queued or running" in again.stderr, again.stderr[-2000:]
