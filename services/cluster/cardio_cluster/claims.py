"""The local executor's hold on a run's tasks: its workers pull a phase's tasks from one list, and a claim file in a
task's folder (`<run>/tasks/<name>/claim`, the worker's pid, made with O_EXCL) gives each task to exactly one of
them. Only the local executor pulls (inline runs every task in its own process, SLURM gives each its job), so the
claims are the cluster service's; the markers they read (done, running, failed, cancelled) are the kernel's
(cardio.study.tasks)."""
from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from cardio.study import tasks


def pull_order(names: Sequence[str], final_early: bool = False) -> list[str]:
    """The order in which the local executor's workers take a phase's tasks: the last fold first (it also
    explains, about 1.7 times a fit's work), then the others as given. Whichever worker is free takes the next one,
    so the longest task starts first and the shorter ones fill in around it. `final_early` (CPU slots): the final
    model second, so that evaluate, which spreads its refits and figures over the same cores, runs after the last
    fold alone rather than beside the final model's fit; on GPUs the final model stays last, and evaluate's CPU
    work overlaps its fit."""
    fits = [m for m in names if m.startswith("fit-")]
    first = fits[-1:] if fits else []
    if final_early and "final" in names:
        first.append("final")
    return first + [m for m in names if m not in first]


CLAIM = "claim"  # a task's folder: the pid of the local worker that took it


def claim(run_dir: Path, name: str) -> bool:
    """Take task `name` for this process; False when it is done or another worker took it. Atomic (O_EXCL): of
    the local executor's workers pulling from one list, exactly one gets each task. The run's own process clears
    the claims (unclaim), at a phase's start and for the task of a lost worker."""
    if tasks.is_done(run_dir, name):
        return False
    folder = tasks.task_dir(run_dir, name)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(folder / CLAIM, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(str(os.getpid()))
    return True


def claimed_by(run_dir: Path, name: str) -> int | None:
    """The pid that claimed task `name`, None when none did."""
    try:
        return int((tasks.task_dir(run_dir, name) / CLAIM).read_text() or 0) or None
    except (OSError, ValueError):
        return None


def orphaned(run_dir: Path, names: Sequence[str]) -> tuple[str, str] | None:
    """(name, why) of the first of `names` claimed by a process that is gone without a marker of the task's end (a
    lost local worker's task, `lost`'s why), None when there is none."""
    for name in names:
        pid = claimed_by(run_dir, name)
        why = lost(run_dir, name) if pid is not None and not tasks.alive(pid) else None
        if why:
            return name, why
    return None


def lost(run_dir: Path, name: str) -> str | None:
    """Why a task's process ended without a marker of its end (killed by a signal it cannot catch: kill -9, the
    OOM killer), or None when it wrote one (done, failed, cancelled, requeued)."""
    folder = tasks.task_dir(run_dir, name)
    try:
        if any(tasks.read_marker(folder / f"{k}.json") is not None
               for k in ("done", "failed", "cancelled", "requeued")):
            return None
        running = tasks.read_marker(folder / "running.json")
    except tasks.DamagedMarker:
        return None
    if running is None:
        return "its process ended before the task started"
    return f"process {running.get('pid')} on {running.get('host')} ended without an error: killed?"


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return -1.0


def unclaim(run_dir: Path, names: Sequence[str]) -> None:
    for name in names:
        (tasks.task_dir(run_dir, name) / CLAIM).unlink(missing_ok=True)


def held(run_dir: Path, name: str) -> bool:
    """Whether task `name` is claimed by a process that is still alive and at it (a worker of this run, the run's
    own process, or a worker of an earlier attempt whose run's process was killed: it finishes its task, then takes
    no more). A task that failed or was cancelled is nobody's: the run's process lives on after its own failed."""
    pid = claimed_by(run_dir, name)
    folder = tasks.task_dir(run_dir, name)
    ended = any((folder / f"{k}.json").exists() for k in ("failed", "cancelled"))
    return pid is not None and tasks.alive(pid) and not ended


def started(run_dir: Path, name: str) -> bool:
    """Whether a process has started task `name` and not finished it: its running marker (a lost worker's stays)."""
    return (tasks.task_dir(run_dir, name) / "running.json").exists()


def wait_for(run_dir: Path, name: str, owner: int, since: float, poll_s: float = 0.05) -> bool:
    """Wait until task `name` is done (True); False as soon as it failed or was cancelled after `since` (an earlier
    attempt's marker is not this one's), or process `owner`, which runs it, is gone. A local worker starts while
    the run's process still runs prepare."""
    folder = tasks.task_dir(run_dir, name)
    while not tasks.is_done(run_dir, name):
        if any(_mtime(folder / f"{k}.json") >= since for k in ("failed", "cancelled")) or not tasks.alive(owner):
            return False
        time.sleep(poll_s)
    return True
