"""A real SLURM (scripts/slurm-local.sh starts one on this machine; .ci/run does it in CI): a run submitted as a
job array, and one array task stopped mid-fit by scancel (cancelled; `cardio run --resume` finishes it) or by the
preemption signal (requeued; it finishes by itself), each to the metrics and predictions of an inline run. A
SIGKILLed task (no marker of its end) is tests/core/test_executors.py's, on the local executor."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("submitit")


# Two folds of 8 epochs of a narrow MLP. What keeps fold 1 mid-fit until the signal is there is the toy's hold
# ($CARDIO_TOY_HOLD: every fit waits at its second epoch while the file exists), not the fit's length: these tests
# once fitted 60 epochs of a wide one, and on a faster CPU under CI's load fold 1 ended before scancel's SIGTERM
# reached it (cancelled after its last epoch, so no checkpoint to resume from). The toy's steps sleep a little
# ($CARDIO_TOY_STEP_S) so the six epochs after the hold outlast the signal's delivery too. Neither changes a number:
# the toy's slow layer has no parameters, and the inline reference runs without them.
SLOW = ["--set", "cv.folds=2", "--set", "data.n_patients=400", "--set", "data.n_features=64", "--set",
        "model.hidden=32", "--set", "train.epochs=8", "--set", "train.batch_size=16", "--set", "final_model=false",
        "--set", "report.figures=false", "--set", "stats.n_resamples=200", "--set", "train.cpu_threads=1"]
HOLD_AFTER_SIGNAL_S = 3.0  # how long fold 1 stays held after scancel returns: the signal's delivery is asynchronous


def _cli(tmp_path: Path, toy_site: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(toy_site), os.environ.get("PYTHONPATH", "")]),
           "CARDIO_CACHE": str(tmp_path.parent / "cache"), **(env or {})}  # one cache for the module: one pseudonym
    # key, as inline's
    return subprocess.Popen([sys.executable, "-m", "cardio.cli", *args], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _metrics(run: Path) -> dict:
    out = json.loads((run / "metrics.json").read_text())
    out.pop("elapsed_s")
    out.pop("resumed")  # scancel's run is resumed, the inline one is not
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


# one slurmctld for the machine and squeue read by job name: these tests run one at a time, on one xdist worker
# (pyproject's --dist loadscope keeps a module on one)
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


def _status(tmp_path: Path, toy_site: Path) -> tuple[str, dict[str, str]]:
    """`cardio status r`: its first line, and each task's line by name"""
    out, err = _cli(tmp_path, toy_site, "status", "r").communicate()
    assert out, err
    lines = out.splitlines()
    return lines[0], {line.split()[0]: line for line in lines[1:]}


def _submit_and_signal(tmp_path: Path, toy_site: Path, *scancel: str) -> tuple[list[str], str]:
    """Submit the run with every fit held at its second epoch, `scancel [options] JOB` to fold 1's array task, then
    let the fits go: (the run command, the job signalled)."""
    command = ["run", "--plugin", "toy", "--out", "r", *SLOW, *SLURM]
    hold = tmp_path / "hold"
    hold.touch()
    # sbatch exports the submitting environment: the array tasks see the hold and the slow steps
    proc = _cli(tmp_path, toy_site, *command, env={"CARDIO_TOY_HOLD": str(hold), "CARDIO_TOY_STEP_S": "0.02"})
    run = tmp_path / "r"

    def fold1_held():
        """fold 1 past its first epoch, held in its second (its only checkpoint will be the one the signal asks
        for: they are 60 s apart by default)"""
        log, running = run / "tasks" / "fit-fold1" / "task.log", run / "tasks" / "fit-fold1" / "running.json"
        return log.exists() and "fold1-mlp epoch 1/" in log.read_text() and running.exists() and running
    try:
        job = json.loads(_wait(fold1_held, 600, 0.2).read_text())["job"]
        assert "_" in job  # an array task: <array job>_<index>
        subprocess.run(["scancel", *scancel, job], check=True, timeout=30)
        time.sleep(HOLD_AFTER_SIGNAL_S)
    finally:
        hold.unlink()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0 and "cardio status" in err, err[-2000:]
    return command, job


@pytest.fixture(scope="module")
def inline_run(toy_site, tmp_path_factory) -> Path:
    """The same study inline: what every SLURM run below must give, byte for byte."""
    where = tmp_path_factory.mktemp("inline")
    proc = _cli(where, toy_site, "run", "--plugin", "toy", "--out", "inline", *SLOW)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    return where / "inline"


def _same_as_inline(run: Path, inline: Path) -> None:
    assert _metrics(run) == _metrics(inline)
    assert (run / "predictions.csv").read_bytes() == (inline / "predictions.csv").read_bytes()


def test_scancel_marks_the_task_cancelled_and_resume_finishes_it(toy_site, tmp_path, inline_run):
    """scancel (SIGTERM) mid-fit: the task stops as cancelled, evaluate says why it did not run, and `cardio run
    --resume` runs the two from fold 1's last checkpoint to the inline run's metrics."""
    _, job = _submit_and_signal(tmp_path, toy_site)
    run = tmp_path / "r"
    _wait(lambda: _settled(run), 300, 1)
    head, rows = _status(tmp_path, toy_site)
    print("\n".join([head, *rows.values()]))  # the sequence the note quotes (pytest -s shows it)
    assert rows["fit-fold0"].split()[1] == "done" and rows["fit-fold1"].split()[1] == "cancelled", rows
    assert f"stopped by SIGTERM (job {job})" in rows["fit-fold1"]
    assert rows["evaluate"].split(None, 2)[1:] == ["missing", "not run: fit-fold1 cancelled"], rows
    assert "stopped: fit-fold1 cancelled" in head and "--resume" in head, head

    again = _cli(tmp_path, toy_site, "run", "--resume", "r", *SLURM[:2])
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0 and "2 of 4 task(s) to run (fit-fold1, evaluate)" in err, err[-2000:]
    _wait(lambda: _settled(run) and (run / "metrics.json").exists(), 600, 1)
    head, rows = _status(tmp_path, toy_site)
    print("\n".join([head, *rows.values()]))
    assert head.endswith(": finished") and all(r.split()[1] == "done" for r in rows.values()), rows
    assert "fold1-mlp: resuming after epoch" in (run / "tasks" / "fit-fold1" / "task.log").read_text()
    _same_as_inline(run, inline_run)


def test_a_requeued_task_says_so_and_resumes_by_itself(toy_site, tmp_path, inline_run):
    """The preemption signal (executor.signal, USR2) mid-fit: submitit requeues the job, `cardio status` says
    requeued, and the job starts again by itself from the checkpoint, to the inline run's metrics."""
    _submit_and_signal(tmp_path, toy_site, "--signal=USR2")
    run = tmp_path / "r"

    def requeued():
        """fit-fold1 requeued in cardio status"""
        head, rows = _status(tmp_path, toy_site)
        return (head, rows) if rows["fit-fold1"].split()[1] == "requeued" else None
    head, rows = _wait(requeued, 120, 0.5)
    print("\n".join([head, *rows.values()]))
    assert "stopped by USR2 and requeued" in rows["fit-fold1"]
    _wait(lambda: _settled(run) and (run / "metrics.json").exists(), 600, 1)
    log = (run / "tasks" / "fit-fold1" / "task.log").read_text()
    assert "fold1-mlp: resuming after epoch" in log, log[-2000:]
    _same_as_inline(run, inline_run)
