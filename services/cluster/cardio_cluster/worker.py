"""One task of a run in a process the executors started (a local worker, a SLURM job): the kernel's task
(cardio.execution.task: its markers, its CPU share, what it does) on the stages before the folds, read once per
process."""
from __future__ import annotations

import time
from pathlib import Path

import cardio
from cardio.context import new_context
from cardio.data.pseudonyms import run_key
from cardio.execution.task import TaskSpec, share_threads, stage_task, task_markers
from cardio.study import tasks
from cardio.study.record import close_log, read_run_json, run_config, run_logger
from cardio.study.stages import open_study, shared


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
    cardio.freeze_at_exit()  # this process is a worker or a job of cardio's
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
            # a job on a node whose cache holds another key would write its fold under it, and evaluate, hours
            # later, would find patients of no record: the task stops now, naming both keys
            run_key(ctx.cache_dir, read_run_json(run_dir).get("pseudonym_key"), run_dir)
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
