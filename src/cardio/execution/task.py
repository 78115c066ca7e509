"""One task of a run in this process: its markers (running, done, failed, cancelled), its share of the CPUs and
what it does once the stages before the folds are at hand. The run's dispatch (cardio.execution.run) and the
executors that start tasks elsewhere (cardio_cluster.executors) both stand on it, so neither imports the other
back."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

import cardio
from cardio import engine
from cardio.context import RunContext, new_context
from cardio.study import fits, tasks
from cardio.study.evaluate import evaluate
from cardio.study.record import close_log, run_config, run_logger
from cardio.study.stages import Study, open_study, shared


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
        tasks.write_final(Path(ctx.out_dir), fits.final_model(study, stages, cfg, ctx))
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


def warm_up(spec: TaskSpec) -> None:
    """What a local worker's first task would import, done while the run's process still runs prepare: the plugin
    and its libraries, and torch._dynamo, which torch.optim imports when it builds the first optimizer (1.8 s)."""
    open_study(spec.plugin, spec.register)
    import torch._dynamo  # noqa: F401


_kept: dict[str, tasks.Study] = {}  # this process's stages before the folds, by run directory


def run_task(spec: TaskSpec) -> str:
    """Run one task of a run in this process (the local and slurm executors call this); its name when done. A
    process that runs several tasks of a run reads the stages before the folds once, as the inline executor has
    them once."""
    first = not _kept
    # the process's start and imports (slurm: its wait in the queue too), for its first task
    waited = time.time() - spec.submitted if spec.submitted and first else None
    startup_cpu = time.process_time()
    study = open_study(spec.plugin, spec.register)
    tasks.time_hooks(study.pm)
    run_dir = Path(spec.run_dir)
    cfg = run_config(study.info, run_dir)
    ctx = new_context(cfg, run_dir, run_logger(tasks.task_dir(run_dir, spec.name) / "task.log", True))
    ctx.log.info("cardio %s, plugin %s, task %s, device %s, %d CPU thread(s)", cardio.__version__, spec.plugin,
                 spec.name, ctx.device, share_threads(spec.threads))
    try:
        with task_markers(run_dir, spec.name, cfg, ctx) as seconds:
            if waited is not None:
                seconds.update(start_s=waited, start_cpu_s=startup_cpu)
            before = time.perf_counter()
            if spec.run_dir in _kept:
                ctx.log.info("stages before the folds: as this process read them for its earlier task")
            stages = _kept.get(spec.run_dir) or shared(study, cfg, ctx, spec.name)
            _kept[spec.run_dir] = stages
            seconds["stages_s"] = time.perf_counter() - before
            stage_task(study, stages, spec.name, cfg, ctx)
    finally:
        close_log()
    return spec.name
