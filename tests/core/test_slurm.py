"""A real SLURM (scripts/slurm-local.sh starts one on this machine): a run submitted as a job array, one array
task killed mid-fit, and the same command again finishes it with the metrics of an inline run."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("submitit")


# the fits of tests/core/test_executors.py's killed-task test: two folds of 150 epochs, a checkpoint each epoch
SLOW = ["--set", "cv.folds=2", "--set", "data.n_patients=400", "--set", "data.n_features=64", "--set",
        "model.hidden=256", "--set", "train.epochs=150", "--set", "train.batch_size=16", "--set", "final_model=false",
        "--set", "report.figures=false", "--set", "stats.n_resamples=200", "--set", "train.cpu_threads=1"]


def _cli(tmp_path: Path, toy_site: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(toy_site), os.environ.get("PYTHONPATH", "")]),
           "CARDIO_CACHE": str(tmp_path / "cache")}
    return subprocess.Popen([sys.executable, "-m", "cardio.cli", *args], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _metrics(run: Path) -> dict:
    out = json.loads((run / "metrics.json").read_text())
    out.pop("elapsed_s")
    return out


def _sinfo() -> str | None:
    """Why there is no SLURM to submit to, or None when sinfo answers with a node up."""
    if shutil.which("sinfo") is None:
        return "no sinfo on PATH (scripts/slurm-local.sh installs and starts a single-node SLURM)"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 20 s"
    if out.returncode != 0 or not any(s in out.stdout for s in ("idle", "mixed", "alloc")):
        return f"sinfo answers no node up: {(out.stderr or out.stdout).strip()[:200]}"
    return None


pytestmark = pytest.mark.skipif(_sinfo() is not None, reason=str(_sinfo()))

# one CPU and 1 GB per task, so two array tasks run at once on a 2-CPU node
SLURM = ["--executor", "slurm", "--workers", "2", "--set", "executor.slurm.cpus_per_task=1",
         "--set", "executor.slurm.mem_gb=1", "--set", "executor.timeout_min=30"]


def _wait(what, seconds: float, step: float = 0.5):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = what()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"waited {seconds} s for {what.__doc__}")


def _settled(run: Path) -> bool:
    """every job of the run has left the queue"""
    out = subprocess.run(["squeue", "-h", "-o", "%j"], capture_output=True, text=True).stdout
    return "cardio-toy" not in out


def test_job_array_with_a_killed_task_finishes_on_the_same_command(toy_site, tmp_path):
    command = ["run", "--plugin", "toy", "--out", "r", *SLOW, *SLURM]
    proc = _cli(tmp_path, toy_site, *command)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0 and "cardio status" in err, err[-2000:]
    run = tmp_path / "r"

    def fold1_fitting():
        """fold 1's first checkpoint"""
        return (run / "checkpoints" / "fold1-mlp.pt").exists() and (run / "tasks" / "fit-fold1" / "running.json")
    running = _wait(fold1_fitting, 600)
    marker = json.loads(running.read_text())
    assert "_" in marker["job"]  # an array task: <array job>_<index>
    # SIGKILL to the array task's process mid-fit, as a node failure would (scancel's SIGTERM lets a short fit
    # finish within its grace time, and its --signal=KILL did not reach the step's process here)
    os.kill(marker["pid"], signal.SIGKILL)
    _wait(lambda: _settled(run), 600, 2)
    states = dict(line.split()[:2] for line in
                  _cli(tmp_path, toy_site, "status", "r").communicate()[0].splitlines()[1:])
    assert states["fit-fold0"] == "done" and states["fit-fold1"] == "failed" and states["evaluate"] != "done", states

    again = _cli(tmp_path, toy_site, *command)
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0 and "2 of 4 task(s) to run (fit-fold1, evaluate)" in err, err[-2000:]
    _wait(lambda: json.loads((run / "run.json").read_text()).get("status") == "finished" or _settled(run), 900, 2)
    assert (run / "metrics.json").exists(), _cli(tmp_path, toy_site, "status", "r").communicate()[0]
    assert "fold1-mlp: resuming after epoch" in (run / "tasks" / "fit-fold1" / "task.log").read_text()
    inline = _cli(tmp_path, toy_site, "run", "--plugin", "toy", "--out", "inline", *SLOW)
    _, err = inline.communicate(timeout=600)
    assert inline.returncode == 0, err[-2000:]
    assert _metrics(run) == _metrics(tmp_path / "inline")
    assert (run / "predictions.csv").read_bytes() == (tmp_path / "inline" / "predictions.csv").read_bytes()
