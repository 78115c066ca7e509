"""The dispatch of a run: its config and folder, torchrun's process group, and its tasks (prepare, a fit per fold,
the final model, evaluate), run in this process or handed to an executor. What a task does is the study's
(cardio.study: the stages, the fits, evaluation); the run's folder and status are its RunRecord."""
from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

import torch

import cardio
from cardio import engine, services
from cardio.context import default_cache_dir, new_context, run_device
from cardio.data import CardioError, folders
from cardio.data.pseudonyms import key_id, pseudonym_key, run_key
from cardio.execution.task import TaskSpec, share_threads, stage_task, task_markers
from cardio.study import fits, tasks
from cardio.study.evaluate import duration, evaluate
from cardio.study.record import RunRecord, provenance, read_run_json, run_config, run_logger
from cardio.study.stages import Study, open_study, shared

# the executors the cluster service adds (services/cluster, through cardio.services), named when it is missing
CLUSTER = ("local", "slurm")


def run_study(plugin: str, config_file: str | None = None, sets: tuple[str, ...] = (), device: str | None = None,
              out: str | None = None, resume: str | None = None, seed: int | None = None,
              register: Iterable[object] = (), executor: str | None = None, workers: int | None = None) -> Path:
    """Run one study end to end and return its run directory.

    The run is a list of tasks (cardio.study.tasks): prepare, a fit per fold, the final model, evaluate. The
    executor (config `executor.name`, or `executor` here) runs them in this process (inline), in a process
    each (local) or as SLURM jobs (slurm); a task with a done marker is never run again. `register` adds
    plugin objects (modules, classes with hookimpls) in process: tests run a plugin without installing it.
    """
    study = open_study(plugin, register)
    cfg, run_dir = _resolve_run(study, config_file, sets, device, out, resume, seed)
    cfg = _with_executor(cfg, executor, workers)
    engine.check_settings(cfg)
    dev, rank, world = run_device(cfg["device"], distributed=True)
    if world > 1 and cfg["executor"]["name"] != "inline":
        raise CardioError(f"--executor {cfg['executor']['name']} runs each fit in a process of its own; under "
                          "torchrun use the inline executor")
    if run_dir is None:
        # the name of the key its pseudonyms are made with: a resume or `cardio fuse` checks that it holds that key
        record, new = _new_record(plugin, out, cfg, rank, world), provenance(
            study, dev, world_size=world, pseudonym_key=key_id(pseudonym_key(default_cache_dir(cfg))))
    else:  # rank 0 holds the run's folder for the run's life: one writer per run folder
        record, new = RunRecord.resume(run_dir) if rank == 0 else RunRecord(run_dir, writes=False), {}
        try:
            meta = read_run_json(run_dir)
            finished = meta.get("status") == "finished"  # under the lock: it may have just ended
            if not finished:  # the folds done so far are read back through the run's key, not a new one
                run_key(default_cache_dir(cfg), meta.get("pseudonym_key"), run_dir)
        except BaseException:
            record.release()
            raise
        if finished:
            record.release()
            print(f"cardio: {run_dir} is a finished run; nothing to resume, nothing written", file=sys.stderr)
            return run_dir
    with record.running(cfg if new else None, **new, executor=cfg["executor"]["name"]):
        if world > 1:
            torch.distributed.barrier()
        spec = TaskSpec(plugin, str(record.path.absolute()), "", tuple(register))
        finished = _execute(study, spec, cfg, record.path, dev, rank, world)
        record.end = None if finished else "submitted"  # finished: the evaluate task wrote it
    return record.path


def _new_record(plugin: str, out: str | None, cfg: dict, rank: int, world: int) -> RunRecord:
    """A new run's folder, claimed (made and locked) by rank 0 for every rank; what this command put into it is
    removed again when the run stops on its input or config before any fold."""
    record = RunRecord.new(plugin, out, cfg, discard_new=True) if rank == 0 else None
    box = [str(record.path) if record else None]
    if world > 1:
        torch.distributed.broadcast_object_list(box, src=0)
    return record or RunRecord(Path(str(box[0])), writes=False)


# What --set may say beside --resume: where the run's tasks run and which cache they read, never what they compute.
RESUME_KEYS = ("cache_dir", "executor")


def _resolve_run(study: Study, config_file: str | None, sets: tuple[str, ...], device: str | None,
                 out: str | None, resume: str | None, seed: int | None) -> tuple[dict, Path | None]:
    """(config, run directory to continue or None). `--resume RUN` continues RUN with its own config; so does the
    same command again on the --out folder of a run that stopped before its end (its tasks without a done marker).
    Either way the executor and the cache are the user's (this command's), never the run folder's."""
    if resume:
        run_dir = folders.output_path(resume, "--resume")
        if config_file or seed is not None or any(_key(s) not in RESUME_KEYS for s in sets):
            raise CardioError("--resume continues a run with its own config; drop --config, --seed and --set (--set "
                              "cache_dir=... and --set executor.<key>=... are the exceptions: where it runs)")
        previous = read_run_json(run_dir)
        if previous.get("kind") == "predict":
            raise CardioError(f"{run_dir} is a prediction (cardio predict), not a run: it has no tasks to continue; "
                              "predict again into a new --out")
        if previous["plugin"] != study.plugin:
            raise CardioError(f"{run_dir} is a run of plugin {previous['plugin']!r}, not {study.plugin!r}")
        return _users_own(run_config(study.info, run_dir), study.config(None, sets), run_dir), run_dir
    extra = (*sets, *((f"seed={seed}",) if seed is not None else ()), *((f"device={device}",) if device else ()))
    cfg = study.config(config_file, extra)
    path = folders.output_path(out) if out else None
    if path is not None and (path / "run.json").exists() and (path / "config.yaml").exists():
        meta = read_run_json(path)
        if meta["plugin"] == study.plugin and meta.get("kind") != "predict" and meta.get("status") != "finished" \
                and tasks.config_hash(run_config(study.info, path)) == tasks.config_hash(cfg):
            # the same command again: its missing tasks, on this command's executor
            return {**run_config(study.info, path), "executor": cfg["executor"]}, path
    return cfg, None


def _key(item: str) -> str:
    return item.partition("=")[0].strip().split(".")[0]


def _users_own(cfg: dict, user: dict, run_dir: Path) -> dict:
    """A resumed run's config with the user's executor section (this command's --executor, --workers and --set
    executor.*), and its cache only where the user names it: a run folder handed over by someone else must not
    choose which processes run its tasks or which cache (whose stages every task reads back) they use."""
    if cfg.get("cache_dir") != user.get("cache_dir"):
        mine = user.get("cache_dir")
        if cfg.get("cache_dir") is None:
            raise CardioError(f"{run_dir} was made with the default cache (CARDIO_CACHE, or ~/.cache/cardio), not "
                              f"{mine}: drop --set cache_dir (its pseudonym key named the run's patients)")
        raise CardioError(f"{run_dir / 'config.yaml'} sets cache_dir: {cfg['cache_dir']}; a resumed run takes its "
                          "cache from your command, never from the run folder: resume with --set "
                          f"cache_dir={cfg['cache_dir']} if that cache is yours" +
                          (f" (you named {mine})" if mine else ""))
    return {**cfg, "executor": user["executor"]}


def _with_executor(cfg: dict, executor: str | None, workers: int | None) -> dict:
    """--executor and --workers over the config's executor section (where a fit runs never changes a result)."""
    out = {**cfg, "executor": dict(cfg["executor"])}
    if executor:
        out["executor"]["name"] = executor
    if workers is not None:
        out["executor"]["workers"] = workers
    name, names = out["executor"]["name"], ("inline", *services.executors())
    if name not in names:
        missing = (f" ({name} comes with the cluster service, cardio-crt-cluster: in cardio's checkout, "
                   f"{cardio.pip_install('-e services/cluster')})" if name in CLUSTER else "")
        raise CardioError(f"config key executor.name is {name!r}; use {', '.join(names)}{missing}")
    if not isinstance(out["executor"]["workers"], int) or out["executor"]["workers"] < 1:
        raise CardioError(f"config key executor.workers must be an integer >= 1, got {out['executor']['workers']!r}")
    return out


def _execute(study: Study, spec: TaskSpec, cfg: dict, run_dir: Path, dev: torch.device, rank: int,
             world: int) -> bool:
    """Run or submit the tasks without a done marker; True when the run is finished here."""
    if cfg["executor"]["name"] == "inline":
        _run_inline(study, cfg, run_dir, dev, rank, world)
        return True
    log = run_logger(run_dir / "run.log", True)
    todo = tasks.pending(run_dir, cfg)
    log.info("cardio %s, plugin %s, executor %s: %d of %d task(s) to run (%s), run %s", cardio.__version__,
             spec.plugin, cfg["executor"]["name"], len(todo), len(tasks.task_names(cfg)), ", ".join(todo), run_dir)
    submit = services.executors()[cfg["executor"]["name"]]
    return submit(spec, cfg, run_dir, todo, log, _here(study, cfg, run_dir, dev, log))


def _here(study: Study, cfg: dict, run_dir: Path, dev: torch.device, log) -> Callable[..., None]:
    """Runs a task in this process (the local executor's prepare, evaluate and, on the CPU, the fits it claims),
    logging to run.log; the stages before the folds are built (prepare) or read back from the cache (a resumed run)
    once, and kept for the others. `threads`: the task's share of the CPUs (0: all allotted)."""
    ctx = new_context(cfg, run_dir, log, device=dev)
    tasks.time_hooks(study.pm)
    kept: list[tasks.Study] = []

    def run(name: str, ready: Callable[[], None] | None = None, threads: int = 0) -> None:
        log.info("task %s here, in the run's process, %d CPU thread(s)", name, share_threads(threads))
        with task_markers(run_dir, name, cfg, ctx) as seconds:
            before = time.perf_counter()
            if not kept:
                kept.append(shared(study, cfg, ctx, name))
            seconds["stages_s"] = time.perf_counter() - before
            stage_task(study, kept[0], name, cfg, ctx, ready)
        if dev.type == "cuda":  # the fits' processes get the GPU memory a prepare on the GPU cached here
            torch.cuda.empty_cache()

    return run


def run_status(run_dir: Path, register: Iterable[object] = ()) -> tuple[str, list[tuple[str, str, str]]]:
    """(run.json's status, [(task, done | running | failed | missing, detail)]) for `cardio status`."""
    meta = read_run_json(run_dir)
    cfg = run_config(open_study(meta["plugin"], register).info, run_dir)
    folder = run_dir / tasks.TASKS
    status = str(meta.get("status"))
    if folder.exists() and not folder.is_dir():
        then = "the run finished, and its results beside it stand" if status == "finished" else \
            f"`cardio run --resume {run_dir}` then runs every task again"
        raise CardioError(f"{folder} is a file, not the run's task folder: move it away ({then})")
    rows = _explained([(n, *tasks.state(run_dir, n, cfg)) for n in tasks.task_names(cfg)], run_dir, status)
    states = {s for _, s, _ in rows}
    stopped = [f"{n} {s}" for n, s, _ in rows if s in ("cancelled", "failed")]
    if status in ("submitted", "running") and stopped and not states & {"running", "requeued"}:
        status += f", stopped: {', '.join(stopped)} (`cardio run --resume {run_dir}` continues it)"
    elif status == "interrupted":
        status += f" ({meta.get('error') or 'stopped by a signal'}; `cardio run --resume {run_dir}` continues it)"
    return status, rows


def _explained(rows: list[tuple[str, str, str]], run_dir: Path, status: str) -> list[tuple[str, str, str]]:
    """What to do with a damaged marker; why a task after a cancelled or failed one did not run."""
    out: list[tuple[str, str, str]] = []
    stopped: str | None = None
    for phase in tasks.phases([n for n, _, _ in rows]):
        blocker = stopped
        for name, state, detail in (r for r in rows if r[0] in phase):
            if state == "damaged":
                detail += ("; the run finished, so its results stand: delete the file to silence this" if
                           status == "finished" else f"; delete it, and `cardio run --resume {run_dir}` runs "
                           f"{name} again")
            elif state == "missing" and blocker:
                detail = f"not run: {blocker}"
            elif state in ("cancelled", "failed") and stopped is None:
                stopped = f"{name} {state}"
            out.append((name, state, detail))
    return out


def _run_inline(study: Study, cfg: dict, run_dir: Path, dev: torch.device, rank: int, world: int) -> None:
    """Every task in this process, in order, on one build of the stages before the folds."""
    log = run_logger(run_dir / "run.log", rank == 0)
    ctx = new_context(cfg, run_dir, log, device=dev, rank=rank, world_size=world)
    tasks.time_hooks(study.pm)
    threads = engine.default_threads()
    log.info("cardio %s, plugin %s, device %s, %d process(es), %d CPU thread(s), run %s", cardio.__version__,
             study.plugin, dev, world, threads, run_dir)
    with task_markers(run_dir, "prepare", cfg, ctx) as seconds:
        seconds["start_cpu_s"] = time.process_time()  # this process's imports, config and provenance
        stages = study.build(cfg, ctx)
    started = time.perf_counter()
    todo = [i for i, f in enumerate(stages.folds) if tasks.state(run_dir, f"fit-{f.name}", cfg)[0] != "done"]
    for n, i in enumerate(todo):
        left = "" if n == 0 else f", about {duration((time.perf_counter() - started) / n * (len(todo) - n))} left"
        with task_markers(run_dir, f"fit-{stages.folds[i].name}", cfg, ctx):
            fits.fit_fold(study, stages, i, cfg, ctx, left)
    if "final" in tasks.task_names(cfg) and tasks.state(run_dir, "final", cfg)[0] != "done":
        with task_markers(run_dir, "final", cfg, ctx):
            fitted = fits.final_model(study, stages, cfg, ctx)
            if ctx.is_main:
                tasks.write_json(run_dir, "final", tasks.FINAL, {"fitted": fitted})
    if world > 1:  # every rank trained; rank 0 alone evaluates and writes
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
        if rank != 0:
            return
        ctx = replace(ctx, world_size=1)
    with task_markers(run_dir, "evaluate", cfg, ctx):
        evaluate(study, stages, cfg, ctx)


