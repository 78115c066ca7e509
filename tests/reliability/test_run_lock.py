"""Round five (issue 58), one writer per run folder: the process of a run holds an OS lock (flock) on its folder for
the run's life, so a second run, the same command again or a `--resume` of the live run is refused in one line
naming the holder's pid and host, and the holder goes on undisturbed (cases 6, 7, 8). The kernel drops the lock
when its process dies: a run killed with SIGKILL is resumed at once."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from cardio_testing.harness import check_refused

FAST = ["--set", "train.epochs=1", "--set", "cv.folds=2", "--set", "explain=false", "--set", "report.figures=false"]


def _held_run(tmp_path: Path, toy_site: Path, *args: str) -> subprocess.Popen:
    """`cardio run ...` in a process of its own, held at its load (the toy plugin waits while the pause file
    exists) until the test removes tmp_path/pause: a live run, its folder made and claimed."""
    pause = tmp_path / "pause"
    pause.touch()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(toy_site), os.environ.get("PYTHONPATH", "")]),
           "CARDIO_CACHE": str(tmp_path / "cache"), "CARDIO_TOY_PAUSE": str(pause)}
    proc = subprocess.Popen([sys.executable, "-m", "cardio.cli", "run", *args], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for _ in range(1200):
        if (tmp_path / f"pause.{proc.pid}").exists():
            return proc
        if proc.poll() is not None:
            raise AssertionError(proc.communicate()[1][-3000:])
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("the held run never reached its load")


def _holder(proc: subprocess.Popen) -> str:
    return f"is in use by cardio pid {proc.pid} on host {socket.gethostname()}"


def _finish(tmp_path: Path, proc: subprocess.Popen) -> None:
    (tmp_path / "pause").unlink()
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]


def test_two_runs_with_different_seeds_into_one_out(cardio_cli, cardio_subprocess, tmp_path, monkeypatch):
    """Case 6: both exited 0 and the folder ended "finished" with config.yaml of seed 1 beside metrics.json of
    seed 0. Here the second starts in the first's window between its look at --out and its first write."""
    from cardio.study import record

    second: list[subprocess.CompletedProcess] = []
    look = record.check_key_free

    def meanwhile(path, cfg):  # the first has chosen its folder and written nothing yet
        second.append(cardio_subprocess("run", "--plugin", "toy", "--out", "r", *FAST, "--seed", "1"))
        look(path, cfg)

    monkeypatch.setattr(record, "check_key_free", meanwhile)
    first = cardio_cli("run", "--plugin", "toy", "--out", "r", *FAST, "--seed", "0")
    assert first.returncode == 0, first.stderr[-3000:]
    check_refused(second[0], f"output directory r is in use by cardio pid {os.getpid()} on host "
                             f"{socket.gethostname()}")
    assert "seed: 0" in (tmp_path / "r" / "config.yaml").read_text()
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["seed"] == 0
    assert not (tmp_path / "r" / ".cardio.lock").exists()  # the lock goes with the run's end


def test_the_same_command_beside_a_live_run(cardio_cli, toy_site, tmp_path):
    """Case 7: two identical runs into one new --out both exited 0, every task fitted twice in one folder (the
    second took the live first for a run to continue)."""
    live = _held_run(tmp_path, toy_site, "--plugin", "toy", "--out", "r", *FAST)
    try:
        check_refused(cardio_cli("run", "--plugin", "toy", "--out", "r", *FAST), f"directory r {_holder(live)}")
    finally:
        _finish(tmp_path, live)
    assert json.loads((tmp_path / "r" / "run.json").read_text())["status"] == "finished"
    assert (tmp_path / "r" / "run.log").read_text().count("stage evaluate") == 1


def test_resume_of_a_live_run_is_refused_and_of_a_killed_one_accepted(cardio_cli, toy_site, tmp_path):
    """Case 8: `--resume` of a live run was accepted (the live run then died: "model bundle ... lacks
    folds/fold0/params.json"), and a second `--resume` beside the first too."""
    live = _held_run(tmp_path, toy_site, "--plugin", "toy", "--out", "r", *FAST)
    try:
        for _ in range(2):
            check_refused(cardio_cli("run", "--resume", "r"), f"run directory r {_holder(live)}")
        check_refused(cardio_cli("report", "r"), f"run directory r {_holder(live)}")
    finally:
        live.send_signal(signal.SIGKILL)
        live.communicate()
    (tmp_path / "pause").unlink()
    assert json.loads((tmp_path / "r" / "run.json").read_text())["status"] == "running"  # killed: no end written
    res = cardio_cli("run", "--resume", "r")  # the kernel dropped the dead process's lock
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads((tmp_path / "r" / "run.json").read_text())["status"] == "finished"
