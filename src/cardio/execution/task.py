"""One task of a run in this process: its markers (running, done, failed, cancelled), its share of the CPUs and
what it does once the stages before the folds are at hand. The run's dispatch (cardio.execution.run) and the
executors that start tasks elsewhere (the cluster service's cardio_cluster.worker) both stand on it, so neither
imports the other back."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from cardio import engine
from cardio.context import RunContext
from cardio.study import fits, tasks
from cardio.study.evaluate import evaluate
from cardio.study.stages import Study


@dataclass(frozen=True)
class TaskSpec:
    """What a process needs to run one task of a run: the run directory holds everything else. The local and
    slurm executors pickle it: it stays at cardio.execution.task.TaskSpec."""

    plugin: str
    run_dir: str
    name: str
    register: tuple = ()
    threads: int = 0  # torch CPU threads the executor gives the task; 0: the CPUs allotted to its process
    submitted: float = 0.0  # time.time() when the executor handed the task over (0: unknown)


def share_threads(threads: int) -> int:
    """Set this process's torch threads for a task: the executor's share of the CPUs (allotted / tasks at once),
    or with 0 all allotted (train.cpu_threads still wins around each fit); the count set."""
    engine.default_threads()
    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def stage_task(study: Study, stages: tasks.Study, name: str, cfg: dict, ctx: RunContext,
                ready: Callable[[], None] | None = None) -> None:
    """What task `name` does once the stages before the folds are at hand (prepare: nothing more)."""
    if name.startswith("fit-"):
        fits.fit_fold(study, stages, [f"fit-{f.name}" for f in stages.folds].index(name), cfg, ctx, "")
    elif name == "final":
        tasks.write_json(ctx.out_dir, "final", tasks.FINAL, {"fitted": fits.final_model(study, stages, cfg, ctx)})
    elif name == "evaluate":
        evaluate(study, stages, cfg, ctx, ready)


@contextmanager
def task_markers(run_dir: Path, name: str, cfg: dict, ctx: RunContext) -> Iterator[dict[str, float]]:
    """A task's markers (rank 0): running while it runs, then done with the config's hash and its seconds (wall,
    CPU, each hook's, and those the block adds to the dict it is given), or failed."""
    started, cpu_started, hooks_before = time.perf_counter(), time.process_time(), tasks.hook_seconds()
    seconds: dict[str, float] = {}
    if ctx.is_main:
        tasks.mark_running(run_dir, name)
    try:
        with engine.checkpoint_use() as use:
            yield seconds
    except BaseException as e:
        if ctx.is_main:
            _mark_stopped(run_dir, name, e)
        raise
    if ctx.is_main:
        tasks.mark_done(run_dir, name, cfg, started, cpu_started, hooks_before, asdict(use), **seconds)
        if use.written:
            ctx.log.info("task %s: %d checkpoint(s), %.1f MB; training waited %.1f s for them (%.1f%% of %.0f s of "
                         "training), the writer's thread wrote for %.1f s beside it", name, use.written,
                         use.bytes / 1e6, use.seconds, 100 * use.seconds / max(use.fit_s, 1e-9), use.fit_s,
                         use.background_s)
        if name not in ("prepare", "evaluate") and not cfg["train"]["keep_checkpoints"]:
            # its fits never resume again; prepare's stay until the run's end (an inline resume builds it again)
            tasks.remove_checkpoints(run_dir, [name], spare=["prepare"])


def _mark_stopped(run_dir: Path, name: str, error: BaseException) -> None:
    """failed, or cancelled when a signal stopped the task (its checkpoint written by the engine); nothing when
    submitit requeued its job (the requeued marker says so, and the job starts again by itself)."""
    if isinstance(error, (SystemExit, tasks.Cancelled)) and tasks.requeued_here() == name:
        return
    signame = tasks.stopped_by() or ("SIGINT" if isinstance(error, KeyboardInterrupt) else None)
    if isinstance(error, (tasks.Cancelled, KeyboardInterrupt)) or signame:
        tasks.mark_cancelled(run_dir, name, signame or "a signal")
        return
    tasks.mark_failed(run_dir, name, error)
