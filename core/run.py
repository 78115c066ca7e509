"""The orchestrator: runs the stages in order, owns the folds and the run directory, resumes."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

import cardio
from cardio import bundle, checks, engine, ensemble, leakage, plugins, report, tasks
from cardio import config as config_mod
from cardio.cache import write_text_atomic
from cardio.context import RunContext
from cardio.data import (
    CardioError,
    Cohort,
    Features,
    ModelState,
    PluginInfo,
    Predictions,
    Section,
    inner_split,
    make_folds,
)


def default_cache_dir(config: dict) -> Path:
    if config.get("cache_dir"):
        return Path(config["cache_dir"]).expanduser()
    return Path(os.environ.get("CARDIO_CACHE", Path.home() / ".cache" / "cardio"))


def _logger(log_file: Path | None, is_main: bool) -> logging.Logger:
    log = logging.getLogger("cardio.run")
    log.handlers.clear()
    log.setLevel(logging.INFO)
    log.propagate = False
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(fmt)
    stream.setLevel(logging.INFO if is_main else logging.WARNING)
    log.addHandler(stream)
    if log_file is not None and is_main:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(log_file)
        fh.setFormatter(fmt)
        log.addHandler(fh)
    # Library warnings become log lines (stderr and run.log) instead of raw text between them.
    logging.captureWarnings(True)
    py_warnings = logging.getLogger("py.warnings")
    py_warnings.handlers[:] = list(log.handlers)
    py_warnings.propagate = False
    py_warnings.filters[:] = [_first_line]
    return log


def _first_line(record: logging.LogRecord) -> bool:
    """A captured warning as one log line (Python appends the offending source line)."""
    record.msg, record.args = " ".join(str(record.getMessage()).splitlines()[:1]).strip(), ()
    return True


def _close_log() -> None:
    """Release run.log (a failed in-process run must not keep it open)."""
    for name in ("cardio.run", "py.warnings"):
        logger = logging.getLogger(name)
        for handler in logger.handlers:
            if isinstance(handler, logging.FileHandler):
                handler.close()
        logger.handlers[:] = [h for h in logger.handlers if not isinstance(h, logging.FileHandler)]
    logging.captureWarnings(False)


def _new_run_dir(plugin: str, out: str | None) -> Path:
    if out:
        path = Path(out)
        if path.exists() and any(path.iterdir()):
            if (path / "run.json").exists() and read_run_json(path).get("status") in ("failed", "interrupted"):
                raise CardioError(f"output directory {path} holds a run that stopped before its end; continue it "
                                  f"with --resume {path}, or choose another --out")
            raise CardioError(f"output directory {path} already holds files; a previous run is never overwritten")
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path("runs") / f"{plugin}-{stamp}"
        n = 1
        while path.exists():
            path = Path("runs") / f"{plugin}-{stamp}-{n}"
            n += 1
    return path


def read_run_json(run_dir: Path) -> dict:
    """A run's run.json; a missing, damaged or foreign one is one line naming it."""
    path = run_dir / "run.json"
    if not path.exists():
        raise CardioError(f"{run_dir} is not a cardio run directory (no run.json)")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CardioError(f"{path} is not valid JSON (damaged, or not written by cardio)") from None
    if not isinstance(meta, dict) or "plugin" not in meta:
        raise CardioError(f"{path} does not describe a cardio run (no plugin named)")
    return meta


def _update_run_json(run_dir: Path, **fields: Any) -> None:
    """Merge fields into run.json (rank 0 only; written atomically)."""
    meta = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
    write_text_atomic(run_dir / "run.json", json.dumps({**meta, **fields}, indent=2, default=str))


def _record_end(run_dir: Path, **fields: Any) -> None:
    """The run's final status, even on a full disk: atomically if possible, else over the old file in place (its
    blocks are free to reuse); never an error that would hide the one that ended the run."""
    try:
        _update_run_json(run_dir, **fields)
    except (CardioError, OSError):
        path = run_dir / "run.json"
        try:
            meta = json.loads(path.read_text())
            with open(path, "r+") as f:
                f.truncate(0)
                f.write(json.dumps({**meta, **fields}, default=str))
        except (OSError, ValueError):
            pass


def _discard_if_empty(run_dir: Path, created: bool) -> bool:
    """Remove a run folder this command made when the run stopped before any fold: nothing to resume there."""
    if not created or any((run_dir / "checkpoints").glob("*")) or (run_dir / "predictions.csv").exists() \
            or any((run_dir / tasks.TASKS).glob("*/done.json")):
        return False
    import shutil

    shutil.rmtree(run_dir, ignore_errors=True)
    return True


def _versions(plugin: str, loaded: plugins.Loaded) -> dict:
    out = {"cardio": cardio.__version__, plugin: loaded.versions.get(plugin, "?"), "python": sys.version.split()[0]}
    for dist in ("torch", "torchvision", "numpy", "scipy", "pandas", "scikit-learn", "statsmodels", "pluggy"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


def _git_commit() -> str | None:
    """The commit of the project checkout cardio runs from, when it is one."""
    root = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _broadcast(value: Any, world: int) -> Any:
    if world <= 1:
        return value
    box = [value]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def _expect(value: Any, kind: type | tuple[type, ...], hook: str, plugin: str) -> Any:
    """A hook's result of the wrong type stops the run here, naming the plugin and the hook."""
    if not isinstance(value, kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise CardioError(f"plugin {plugin!r}: {hook} returned {type(value).__name__}, expected {names}")
    return value


def run_study(plugin: str, config_file: str | None = None, sets: tuple[str, ...] = (), device: str | None = None,
              out: str | None = None, resume: str | None = None, seed: int | None = None,
              register: Iterable[object] = (), executor: str | None = None, workers: int | None = None) -> Path:
    """Run one study end to end and return its run directory.

    The run is a list of tasks (cardio.tasks): prepare, a fit per fold, the final model, evaluate. The
    executor (config `executor.name`, or `executor` here) runs them in this process (inline), in a process
    each (local) or as SLURM jobs (slurm); a task with a done marker is never run again. `register` adds
    plugin objects (modules, classes with hookimpls) in process: tests run a plugin without installing it.
    """
    loaded = plugins.get_plugin_manager(register)
    pm = plugins.select(loaded, plugin)
    info = plugins.info(pm, plugin)
    cfg, run_dir = _resolve_run(info, plugin, config_file, sets, device, out, resume, seed)
    if run_dir is not None and read_run_json(run_dir).get("status") == "finished":
        print(f"cardio: {run_dir} is a finished run; nothing to resume, nothing written", file=sys.stderr)
        return run_dir
    cfg = _with_executor(cfg, executor, workers)
    engine.check_settings(cfg)
    dev = engine.resolve_device(cfg["device"])
    rank, world = engine.init_distributed(dev)
    if world > 1 and cfg["executor"]["name"] != "inline":
        raise CardioError(f"--executor {cfg['executor']['name']} runs each fit in a process of its own; under "
                          "torchrun use the inline executor")
    if dev.type == "cuda" and world > 1:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
        torch.cuda.set_device(dev)
    continuing = run_dir is not None
    created = not continuing and not (out and Path(out).exists())
    if run_dir is None:
        run_dir = _new_run_dir(plugin, out) if rank == 0 else None
        if run_dir is not None:  # rank 0
            _check_key_free(run_dir, cfg)
        run_dir = Path(_broadcast(str(run_dir) if run_dir else None, world))
    if rank == 0:
        _start_run_dir(run_dir, cfg, plugin, loaded, dev, world, write_config=not continuing)
    if world > 1:
        torch.distributed.barrier()
    spec = TaskSpec(plugin, str(run_dir.absolute()), "", tuple(register))
    try:
        finished = _execute(pm, spec, loaded, cfg, run_dir, dev, rank, world)
    except BaseException as e:
        _close_log()
        if rank == 0:
            status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
            why = str(e).splitlines()[0] if str(e) else type(e).__name__
            if isinstance(e, CardioError) and _discard_if_empty(run_dir, created):
                raise  # stopped on its input or config before any fold: no half-made run is left behind
            _record_end(run_dir, status=status, ended=time.strftime("%Y-%m-%dT%H:%M:%S"),
                        error=f"{type(e).__name__}: {why}")
        raise
    _close_log()
    if rank == 0 and not finished:
        _update_run_json(run_dir, status="submitted")
    return run_dir


def _resolve_run(info: PluginInfo, plugin: str, config_file: str | None, sets: tuple[str, ...], device: str | None,
                 out: str | None, resume: str | None, seed: int | None) -> tuple[dict, Path | None]:
    """(config, run directory to continue or None). `--resume RUN` continues RUN with its own config; so does the
    same command again on the --out folder of a run that stopped before its end (its tasks without a done marker)."""
    if resume:
        if config_file or sets or seed is not None:
            raise CardioError("--resume continues a run with its own config; drop --config, --set and --seed")
        run_dir = Path(resume)
        previous = read_run_json(run_dir)
        if previous["plugin"] != plugin:
            raise CardioError(f"{run_dir} is a run of plugin {previous['plugin']!r}, not {plugin!r}")
        return run_config(info, run_dir), run_dir
    extra = (*sets, *((f"seed={seed}",) if seed is not None else ()), *((f"device={device}",) if device else ()))
    cfg = config_mod.resolve(info.default_config, config_file, extra, info.moved_keys)
    if out and (Path(out) / "run.json").exists() and (Path(out) / "config.yaml").exists():
        meta = read_run_json(Path(out))
        if meta["plugin"] == plugin and meta.get("status") != "finished" and \
                tasks.config_hash(run_config(info, Path(out))) == tasks.config_hash(cfg):
            return run_config(info, Path(out)), Path(out)  # the same command again: its missing tasks
    return cfg, None


def run_config(info: PluginInfo, run_dir: Path) -> dict:
    """A run's config.yaml over the current defaults, checked as a new run's (an edited one is one line)."""
    cfg = config_mod.load_yaml(run_dir / "config.yaml")
    try:
        return config_mod.validate(config_mod.merge(config_mod.resolve(info.default_config), cfg))
    except CardioError as e:
        raise CardioError(f"{run_dir / 'config.yaml'}: {e}") from None


def _with_executor(cfg: dict, executor: str | None, workers: int | None) -> dict:
    """--executor and --workers over the config's executor section (where a fit runs never changes a result)."""
    out = {**cfg, "executor": dict(cfg["executor"])}
    if executor:
        out["executor"]["name"] = executor
    if workers is not None:
        out["executor"]["workers"] = workers
    if out["executor"]["name"] not in EXECUTORS:
        raise CardioError(f"config key executor.name is {out['executor']['name']!r}; use {', '.join(EXECUTORS)}")
    if not isinstance(out["executor"]["workers"], int) or out["executor"]["workers"] < 1:
        raise CardioError(f"config key executor.workers must be an integer >= 1, got {out['executor']['workers']!r}")
    return out


def _start_run_dir(run_dir: Path, cfg: dict, plugin: str, loaded: plugins.Loaded, dev, world: int,
                   write_config: bool) -> None:
    for sub in ("", "figures", "checkpoints"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    if write_config:
        write_text_atomic(run_dir / "config.yaml", config_mod.dump(cfg))
        _update_run_json(run_dir, plugin=plugin, plugin_version=loaded.versions.get(plugin, "?"),
                         cardio_version=cardio.__version__, world_size=world, device=str(dev),
                         device_name=engine.device_name(dev), versions=_versions(plugin, loaded),
                         git_commit=_git_commit())
    _update_run_json(run_dir, status="running", started=time.strftime("%Y-%m-%dT%H:%M:%S"), ended=None,
                     error=None, executor=cfg["executor"]["name"])


@dataclass(frozen=True)
class TaskSpec:
    """What a process needs to run one task of a run: the run directory holds everything else."""

    plugin: str
    run_dir: str
    name: str
    register: tuple = ()
    threads: int = 0  # torch CPU threads the executor gives the task; 0: the CPUs allotted to its process


EXECUTORS = ("inline", "local", "slurm")


def _execute(pm, spec: TaskSpec, loaded: plugins.Loaded, cfg: dict, run_dir: Path, dev, rank: int,
             world: int) -> bool:
    """Run or submit the tasks without a done marker; True when the run is finished here."""
    if cfg["executor"]["name"] == "inline":
        _run_inline(pm, spec.plugin, loaded, cfg, run_dir, dev, rank, world)
        return True
    from cardio import executors

    log = _logger(run_dir / "run.log", True)
    todo = tasks.pending(run_dir, cfg)
    log.info("cardio %s, plugin %s, executor %s: %d of %d task(s) to run (%s), run %s", cardio.__version__,
             spec.plugin, cfg["executor"]["name"], len(todo), len(tasks.task_names(cfg)), ", ".join(todo), run_dir)
    return executors.submit(spec, cfg, run_dir, todo, log)


def run_status(run_dir: Path, register: Iterable[object] = ()) -> tuple[str, list[tuple[str, str, str]]]:
    """(run.json's status, [(task, done | running | failed | missing, detail)]) for `cardio status`."""
    meta = read_run_json(run_dir)
    pm = plugins.select(plugins.get_plugin_manager(register), meta["plugin"])
    cfg = run_config(plugins.info(pm, meta["plugin"]), run_dir)
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


def _context(cfg: dict, run_dir: Path, dev, rank: int, world: int, log: logging.Logger) -> RunContext:
    ctx = RunContext(device=dev, seed=int(cfg["seed"]), out_dir=run_dir, cache_dir=default_cache_dir(cfg), log=log,
                     rank=rank, world_size=world)
    ctx.cache_dir.mkdir(parents=True, exist_ok=True)
    return ctx


def _run_inline(pm, plugin: str, loaded: plugins.Loaded, cfg: dict, run_dir: Path, dev, rank: int,
                world: int) -> None:
    """Every task in this process, in order, on one build of the stages before the folds."""
    log = _logger(run_dir / "run.log", rank == 0)
    ctx = _context(cfg, run_dir, dev, rank, world, log)
    threads = engine.default_threads()
    log.info("cardio %s, plugin %s, device %s, %d process(es), %d CPU thread(s), run %s", cardio.__version__, plugin,
             dev, world, threads, run_dir)
    with _task(run_dir, "prepare", cfg, ctx):
        study = build_study(pm, plugin, cfg, ctx)
    started = time.perf_counter()
    todo = [i for i, f in enumerate(study.folds) if tasks.state(run_dir, f"fit-{f.name}", cfg)[0] != "done"]
    for n, i in enumerate(todo):
        left = "" if n == 0 else f", about {_duration((time.perf_counter() - started) / n * (len(todo) - n))} left"
        with _task(run_dir, f"fit-{study.folds[i].name}", cfg, ctx):
            _fit_fold(pm, plugin, study, i, cfg, ctx, left)
    if "final" in tasks.task_names(cfg) and tasks.state(run_dir, "final", cfg)[0] != "done":
        with _task(run_dir, "final", cfg, ctx):
            fitted = _final_model(pm, plugin, loaded, study, cfg, ctx)
            if ctx.is_main:
                tasks.write_final(run_dir, fitted)
    if world > 1:  # every rank trained; rank 0 alone evaluates and writes
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
        if rank != 0:
            return
        ctx = replace(ctx, world_size=1)
    with _task(run_dir, "evaluate", cfg, ctx):
        _evaluate(pm, plugin, loaded, study, cfg, ctx)


@contextmanager
def _task(run_dir: Path, name: str, cfg: dict, ctx: RunContext) -> Iterator[None]:
    """A task's markers (rank 0): running while it runs, then done with the config's hash, or failed."""
    started = time.perf_counter()
    if ctx.is_main:
        tasks.mark_running(run_dir, name)
    try:
        yield
    except BaseException as e:
        if ctx.is_main:
            _mark_stopped(run_dir, name, e)
        raise
    if ctx.is_main:
        tasks.mark_done(run_dir, name, cfg, started)


def _mark_stopped(run_dir: Path, name: str, error: BaseException) -> None:
    """failed, or cancelled when a signal stopped the task (its checkpoint written by the engine); nothing when
    submitit requeued its job (the requeued marker says so, and the job starts again by itself)."""
    if isinstance(error, (SystemExit, tasks.Cancelled)) and tasks.requeued_here() == name:
        return
    signame = tasks.stopped_by()
    if isinstance(error, tasks.Cancelled) or signame:
        tasks.mark_cancelled(run_dir, name, signame or "a signal")
        return
    tasks.mark_failed(run_dir, name, error)


def run_task(spec: TaskSpec) -> str:
    """Run one task of a run in this process (the local and slurm executors call this); its name when done."""
    loaded = plugins.get_plugin_manager(spec.register)
    pm = plugins.select(loaded, spec.plugin)
    run_dir = Path(spec.run_dir)
    cfg = run_config(plugins.info(pm, spec.plugin), run_dir)
    log = _logger(tasks.task_dir(run_dir, spec.name) / "task.log", True)
    ctx = _context(cfg, run_dir, engine.resolve_device(cfg["device"]), 0, 1, log)
    engine.default_threads()
    if spec.threads:  # the executor's share of the CPUs: allotted / tasks at once (train.cpu_threads still wins)
        torch.set_num_threads(spec.threads)
    log.info("cardio %s, plugin %s, task %s, device %s, %d CPU thread(s)", cardio.__version__, spec.plugin,
             spec.name, ctx.device, torch.get_num_threads())
    try:
        with _task(run_dir, spec.name, cfg, ctx):
            study = shared_study(pm, spec.plugin, loaded, cfg, ctx, spec.name)
            if spec.name.startswith("fit-"):
                names = [f"fit-{f.name}" for f in study.folds]
                _fit_fold(pm, spec.plugin, study, names.index(spec.name), cfg, ctx, "")
            elif spec.name == "final":
                tasks.write_final(run_dir, _final_model(pm, spec.plugin, loaded, study, cfg, ctx))
            elif spec.name == "evaluate":
                _evaluate(pm, spec.plugin, loaded, study, cfg, ctx)
    finally:
        _close_log()
    return spec.name


STUDY_VERSION = 1  # bump when tasks.Study changes shape


def shared_study(pm, plugin: str, loaded: plugins.Loaded, cfg: dict, ctx: RunContext, task: str) -> tasks.Study:
    """The stages before the folds, built once per run: the prepare task loads the cohort, builds them and keeps
    them in the cache under the run's config and cohort fingerprint (the key noted in tasks/prepare/); every later
    task, in whichever process or job, reads them back without calling a plugin hook (a missing entry is built
    again, from a cohort that must still have the same fingerprint)."""
    key = None if task == "prepare" else tasks.read_study_key(ctx.out_dir)
    cohort = None
    if key is None:
        cohort = _load(pm, plugin, cfg, ctx)
        key = {"plugin": plugin, "plugin_version": loaded.versions.get(plugin, "?"), "cardio": cardio.__version__,
               "config": tasks.config_hash(cfg), "cohort": tasks.cohort_fingerprint(cohort)}
    built: list[tasks.Study] = []

    def build(tmp: Path) -> None:
        here = cohort if cohort is not None else _load(pm, plugin, cfg, ctx)
        if cohort is None and tasks.cohort_fingerprint(here) != key["cohort"]:
            raise CardioError(f"the cohort changed on disk since this run's prepare task read it ({ctx.out_dir}/tasks/"
                              "prepare): its folds would mix two cohorts; start a new run")
        built.append(build_study(pm, plugin, cfg, ctx, here))
        tasks.write_study(tmp, built[0])

    try:
        path = ctx.cache.get("studies", key, build, suffix=".pkl", version=STUDY_VERSION)
    except tasks.NotKept as e:  # an object of a plugin's that not even cloudpickle holds: each task builds its own
        ctx.log.warning("the stages before the folds cannot be kept for the other tasks (%s); each builds them", e)
        path = None
    if task == "prepare":
        tasks.write_study_key(ctx.out_dir, key)
    if built:
        return built[0]
    assert path is not None
    try:
        study = tasks.read_study(path)
    except Exception as e:  # written by other versions of a plugin's classes: build it here
        ctx.log.warning("cache entry %s cannot be read back (%s); building the stages before the folds here", path,
                        type(e).__name__)
        return build_study(pm, plugin, cfg, ctx)
    ctx.log.info("stages before the folds read from the cache (%s, built once for the run by prepare): %s",
                 path.name, checks.summary(study.cohort))
    return study


def _load(pm, plugin: str, cfg: dict, ctx: RunContext) -> Cohort:
    engine.seed_everything(ctx.seed)
    ctx.log.info("stage load")
    return _expect(pm.hook.cardio_load(config=cfg, ctx=ctx), Cohort, "cardio_load", plugin)


def build_study(pm, plugin: str, cfg: dict, ctx: RunContext, cohort: Cohort | None = None) -> tasks.Study:
    """load -> preprocess -> checks -> featurize -> prepare -> folds: what every task starts from."""
    hooks = pm.hook
    log = ctx.log
    engine.seed_everything(ctx.seed)
    if cohort is None:
        log.info("stage load")
        cohort = _expect(hooks.cardio_load(config=cfg, ctx=ctx), Cohort, "cardio_load", plugin)
    log.info("stage preprocess (%d records)", len(cohort))
    loaded_outcomes = cohort.outcomes
    cohort = _expect(hooks.cardio_preprocess(cohort=cohort, config=cfg, ctx=ctx) or cohort, Cohort,
                     "cardio_preprocess", plugin)
    cohort.outcomes = tuple(dict.fromkeys([*loaded_outcomes, *cohort.outcomes]))  # a rebuilt Cohort keeps them
    problems = checks.cohort_problems(cohort, cfg)
    if problems:
        raise CardioError(f"the cohort does not fit the study: {'; '.join(problems)} (cardio validate lists them)")
    log.info("cohort: %s", checks.summary(cohort))
    leakage.check_config(cfg, cohort)
    null_control = bool(cfg["cohort"]["permute_labels"])
    if null_control:
        cohort = leakage.permute_outcomes(cohort, ctx.seed)
        log.warning("null control: %s and %d outcome column(s) permuted across patients (cohort.permute_labels)",
                    cohort.label, len(cohort.outcomes))
    log.info("stage featurize")
    features = _expect(hooks.cardio_featurize(cohort=cohort, config=cfg, ctx=ctx), Features, "cardio_featurize", plugin)
    leak_flags = leakage.flag_features(features, cohort, log)
    prepared = None
    if hooks.cardio_prepare.get_hookimpls():
        log.info("stage prepare")
        prepared = hooks.cardio_prepare(features=features, config=cfg, ctx=ctx)
        if ctx.world_size > 1:  # every rank has the prepared result (and rank 0 its files) before the folds
            torch.distributed.barrier()
    label = features.label if features.label in features.table.columns else None
    folds = make_folds(features.table, cfg["cv"], label, ctx.seed)
    if [f.name for f in folds] != tasks.fold_names(cfg["cv"]):
        raise CardioError(f"cv: the split made folds {[f.name for f in folds]}, the run's tasks name "
                          f"{tasks.fold_names(cfg['cv'])}")
    return tasks.Study(cohort, features, prepared, folds, leak_flags, null_control)


def _fit_fold(pm, plugin: str, study: tasks.Study, i: int, cfg: dict, ctx: RunContext, left: str) -> None:
    """Fold i's task: train, predict its test rows, and, for the last fold, explain; written to tasks/fit-<fold>/.
    With cv.inner_folds, the fold's inner folds are fitted after it and their predictions kept beside."""
    features, fold = study.features, study.folds[i]
    ctx.log.info("fold %d of %d (%s): %d train rows, %d test rows%s", i + 1, len(study.folds), fold.name,
                 len(features.trainable(fold.train)), len(fold.test), left)
    if len(features.trainable(fold.train)) < len(fold.train):
        ctx.log.info("fold %s: %d training row(s) have no target value and are left out of training",
                     fold.name, len(fold.train) - len(features.trainable(fold.train)))
    model, pred = _fit_predict(pm, plugin, features, fold, study.prepared, cfg, ctx)
    name = f"fit-{fold.name}"
    inner = [_fit_predict(pm, plugin, features, f, study.prepared, cfg, ctx, f"inner fit {j + 1} of "
                          f"{len(fold.inner)}")[1].table.assign(inner_fold=f.name) for j, f in enumerate(fold.inner)]
    if not ctx.is_main:
        return
    ensemble.keep_fold_model(pm, plugin, model, fold.name, cfg, ctx, study.null_control)
    facts = pm.hook.cardio_describe_model(model=model, config=cfg)
    if facts is not None:
        tasks.write_model_facts(ctx.out_dir, name, _expect(facts, dict, "cardio_describe_model", plugin))
    if inner:
        tasks.write_predictions(ctx.out_dir, name, Predictions(pd.concat(inner, ignore_index=True).assign(
            fold=fold.name, repeat=fold.repeat)), ctx.pseudonym_key, tasks.INNER)
    tasks.write_predictions(ctx.out_dir, name, Predictions(pred.table.assign(fold=fold.name, repeat=fold.repeat)),
                            ctx.pseudonym_key)
    if cfg.get("explain", True) and i == len(study.folds) - 1:
        ctx.log.info("stage explain (fold %s)", fold.name)
        result = pm.hook.cardio_explain(model=model, features=features, index=fold.test, config=cfg,
                                        ctx=ctx.for_fit(fold.name))
        tasks.write_sections(ctx.out_dir, name, _as_sections(result, "cardio_explain", plugin))


def _fit_predict(pm, plugin: str, features: Features, fold, prepared: Any, cfg: dict, ctx: RunContext,
                 what: str = "") -> tuple[Any, Predictions]:
    """One fit on a fold's trainable rows (its context's fold tags its checkpoints) and its predictions on the
    test rows."""
    engine.seed_everything(ctx.seed)  # the fold's model does not depend on which fits ran before it here
    if what:
        ctx.log.info("%s: %s, %d train rows, %d test rows", fold.name, what, len(features.trainable(fold.train)),
                     len(fold.test))
    fit_ctx = ctx.for_fit(fold.name)
    model = _train(pm, plugin, features, features.trainable(fold.train), features.trainable(fold.val), prepared,
                   cfg, fit_ctx)
    pred = _expect(pm.hook.cardio_predict(model=model, features=features, test_index=fold.test, config=cfg,
                                          ctx=fit_ctx), Predictions, "cardio_predict", plugin)
    return model, pred


def _train(pm, plugin: str, features: Features, train: np.ndarray, val: np.ndarray, prepared: Any, cfg: dict,
           ctx: RunContext) -> Any:
    """cardio_train on the rows to fit and the validation rows the core chose: the protocol's own (holdout,
    predefined), else `train.val_fraction` of the training patients (inner_split), else none."""
    fraction = float(cfg["train"]["val_fraction"])
    if not len(val) and fraction > 0:
        train, val = inner_split(features.table, train, fraction=fraction, seed=ctx.seed, label=features.label)
    model = pm.hook.cardio_train(features=features, train_index=train, val_index=val, prepared=prepared,
                                 config=cfg, ctx=ctx)
    if model is None:
        raise CardioError(f"plugin {plugin!r}: cardio_train returned None, expected a model")
    return model


def _evaluate(pm, plugin: str, loaded: plugins.Loaded, study: tasks.Study, cfg: dict, ctx: RunContext) -> None:
    """The evaluate task: every fold's predictions from its task folder, the report's sections, the run's files."""
    from cardio.figures import parallel_saves
    from cardio.stats import StatsError

    run_dir = ctx.out_dir
    ensemble.attach_fold_models(run_dir, [f.name for f in study.folds], ctx.log)
    names = [f"fit-{f.name}" for f in study.folds]
    parts = [tasks.read_predictions(run_dir, n, ctx.pseudonym_key, study.features.table).table for n in names]
    predictions = Predictions(pd.concat(parts, ignore_index=True))
    predictions = at_level(predictions, study.cohort)
    report.write_predictions(run_dir, predictions, ctx.pseudonym_key)  # kept even if evaluation fails
    engine.seed_everything(ctx.seed)
    try:
        facts = {f.name: tasks.read_model_facts(run_dir, f"fit-{f.name}") or {} for f in study.folds}
        with parallel_saves():  # figures render on the allotted CPUs; every file is written before the report
            sections = _evaluate_sections(pm, study.features, study.prepared, labelled(predictions), study.cohort,
                                          cfg, ctx, facts) + tasks.read_sections(run_dir, names[-1])
    except StatsError as e:
        raise CardioError(f"evaluation failed: {e} (predictions are saved in {run_dir / 'predictions.csv'})") from None
    meta = {"plugin": plugin, "plugin_version": loaded.versions.get(plugin, "?"), "cardio_version": cardio.__version__,
            "seed": ctx.seed, "device": str(ctx.device), "world_size": read_run_json(run_dir).get("world_size", 1),
            "n_records": int(len(study.cohort)), "n_patients": int(study.cohort.table["patient_id"].nunique()),
            "cv": cfg["cv"], "folds": [{"name": f.name, "n_train": int(len(f.train)), "n_test": int(len(f.test)),
                                        "n_val": int(len(f.val))} for f in study.folds],
            "elapsed_s": _elapsed(run_dir), "null_control": study.null_control,
            "probable_leaks": study.leak_flags, "final_model": tasks.read_final(run_dir)}
    report.write_run(run_dir, meta, predictions, sections, ctx.pseudonym_key)
    _keep_key(run_dir, predictions, cfg, ctx.pseudonym_key)
    _update_run_json(run_dir, status="finished", ended=time.strftime("%Y-%m-%dT%H:%M:%S"))
    if not study.null_control:
        checks.record_timing(ctx.cache_dir, plugin, len(study.cohort), checks.fits_of(cfg), meta["elapsed_s"],
                             engine.device_name(ctx.device))
    ctx.log.info("done in %s: %s", _duration(meta["elapsed_s"]), run_dir / "report.md")


def _elapsed(run_dir: Path) -> float:
    """Seconds since this run (or its latest continuation) started, from run.json."""
    started = read_run_json(run_dir).get("started")
    try:
        return round(time.time() - time.mktime(time.strptime(str(started), "%Y-%m-%dT%H:%M:%S")), 1)
    except (TypeError, ValueError):
        return 0.0


def _final_model(pm, plugin: str, loaded: plugins.Loaded, study: tasks.Study, cfg: dict,
                 ctx: RunContext) -> dict | None:
    """Fit once on every row and export the model bundle (<run>/model/); what was fitted, or None when skipped."""
    features, cohort = study.features, study.cohort
    if not cfg["final_model"]:
        return None
    why = bundle.support(pm, plugin) or ("the null control's labels are permuted" if study.null_control else None)
    if why:
        ctx.log.info("final model not fitted: %s", why)
        return None
    every = features.trainable(np.arange(len(features)))  # rows with a target: the folds' rule
    ctx.log.info("final model: fitting on all %d rows (%d patients)", len(every),
                 features.table["patient_id"].nunique())
    engine.seed_everything(ctx.seed)
    fit_ctx = ctx.for_fit("final")  # its checkpoints and history are tagged final-<name>
    model = _train(pm, plugin, features, every, every[:0], study.prepared, cfg, fit_ctx)
    state = _expect(pm.hook.cardio_export_model(model=model, config=cfg, ctx=fit_ctx), ModelState,
                    "cardio_export_model", plugin)
    fitted = {"n_rows": int(len(every)), "n_patients": int(features.table["patient_id"].iloc[every].nunique()),
              "n_records": int(len(cohort)), "label": cohort.label, "bundle": "model"}
    if ctx.is_main:
        import secrets

        salt = secrets.token_hex(16)
        meta = {"plugin": plugin, "plugin_version": loaded.versions.get(plugin, "?"),
                "cardio_version": cardio.__version__, "versions": _versions(plugin, loaded), "seed": ctx.seed,
                "git_commit": _git_commit(), "run": ctx.out_dir.name, **fitted,
                "training_fingerprints": {"salt": salt, **bundle.fingerprints(features, salt, cohort)}}
        path = bundle.write(ctx.out_dir, state, cfg, meta)
        ctx.log.info("final model exported: %s (cardio predict --model %s --cohort PATH)", path, ctx.out_dir)
    return fitted


def _about_model(plugin: str, info: dict, run_dir: Path, cfg: dict, meta: dict, n_labelled: int, shared: dict,
                 external: bool) -> Section:
    """The first section of a prediction's report: which model, trained where and when, applied to which cohort."""
    run = (f"{plugin} run `{info.get('run') or run_dir.name}` (plugin {info.get('plugin_version')}, cardio "
           f"{info.get('cardio_version')}, exported {info.get('created')})")
    which = (f"The final model of {run}, fitted on all {info.get('n_patients')} patients of its cohort after "
             "cross-validation," if meta["ensemble"] == "final" else
             f"The mean of the {len(meta['fold_models'])} fold models of {run} (each fitted on its outer fold's "
             "training patients during cross-validation; `--ensemble folds`, compared with the final model below)")
    trained = (f"{which} was applied unchanged to the cohort in `{Path(cfg['cohort']['dir']).name}`: "
               f"{meta['n_patients']} patients, {n_labelled} labelled prediction rows. Every estimate below is on "
               "this cohort alone; nothing was refitted or recalibrated on it, and the thresholds are those chosen "
               "when the model was trained.")
    if external:
        return Section("External validation", trained + " None of its records matches a training record, by id or "
                       "by content (its features' bytes, or the bytes of any file it names: salted fingerprints kept "
                       "in the model bundle).", part="summary")
    return Section("Not an external validation: the cohort overlaps the training cohort",
                   f"**{max(shared['same_id'], shared['same_content'])} of {shared['records']} records** of this "
                   f"cohort are records the model was trained on ({shared['same_id']} by id, "
                   f"{shared['same_content']} by content). Estimates on training records are optimistic: they say "
                   "nothing about new patients. " + trained, part="summary")


def _check_key_free(out_dir: Path, cfg: dict) -> None:
    """Before anything is written: a key file that report.keep_key would replace stops the command."""
    path = bundle.key_path(out_dir)
    if (cfg.get("report") or {}).get("keep_key") and path.exists():
        raise CardioError(f"{path} already exists; a pseudonym key is never replaced (move it, or choose another "
                          "--out)")


def _keep_key(out_dir: Path, predictions: Predictions, cfg: dict, key: bytes) -> None:
    """report.keep_key: the pseudonym key beside the run, owner-only; named on stderr, never in the run's files."""
    if not (cfg.get("report") or {}).get("keep_key"):
        return
    path = bundle.write_key(out_dir, predictions.table, key=key)
    print(f"cardio: pseudonym key written to {path} (mode 0600; keep it apart from the run)", file=sys.stderr)


def labelled(predictions: Predictions) -> Predictions:
    """The rows whose target is known: every metric of a task is computed on its own non-missing rows."""
    table = predictions.table
    return Predictions(table[np.isfinite(table["y_true"].to_numpy(dtype=float))])


def at_level(predictions: Predictions, cohort: Cohort) -> Predictions:
    """Record scores aggregated to the level the plugin predicts at (Cohort.level, by Cohort.aggregate).

    One row per model, task and study (or patient); unchanged when every study has one record. Records of one
    study (patient) whose labels differ are an error naming them: one label cannot stand for them (a plugin whose
    records carry their own targets declares level=record and is evaluated per record, its intervals clustered).
    """
    if cohort.level == "record" or "study_id" not in cohort.table.columns:
        return predictions
    from cardio.stats import aggregate_scores

    column = "study_id" if cohort.level == "study" else "patient_id"
    ids = dict(zip(cohort.table["record_id"].astype(str), cohort.table[column].astype(str)))
    table = predictions.table
    level_id = table["record_id"].map(ids).fillna(table["record_id"])
    if not level_id.duplicated().any() and level_id.equals(table["record_id"]):
        return predictions
    keys = [c for c in ("model", "task", "kind", "fold", "repeat") if c in table.columns]
    table = table.assign(record_id=level_id)
    group = table[[*keys, "record_id"]].astype(str).agg("|".join, axis=1)
    labels = table.groupby([*keys, "record_id"], dropna=False)["y_true"].nunique()  # missing labels not counted
    if (labels > 1).any():
        units = sorted(set(labels[labels > 1].index.get_level_values("record_id")))
        tasks = sorted(set(labels[labels > 1].index.get_level_values("task").astype(str))) if "task" in keys else []
        raise CardioError(f"the records of {len(units)} {cohort.level}(s) disagree on the label "
                          f"({', '.join(tasks) or 'the label'}), so no one label stands for the {cohort.level}: "
                          f"{', '.join(units[:20])}{' ...' if len(units) > 20 else ''}; correct cohort.csv, or give "
                          f"each record its own {column}")
    scores = aggregate_scores(group, table["y_score"], cohort.aggregate)  # in order of first appearance
    first = table.loc[~group.duplicated().to_numpy()].reset_index(drop=True)
    first["y_score"] = scores.to_numpy()
    return Predictions(first)


def _duration(seconds: float) -> str:
    """42 s, 3 min 10 s, 2 h 05 min: how long, as a person says it."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _evaluate_sections(pm, features: Features, prepared: Any, predictions: Predictions, cohort: Cohort, cfg: dict,
                       ctx: RunContext, model_facts: dict[str, dict] | None = None) -> list[Section]:
    """Every plugin's evaluate sections, each called on its own (in pluggy's order: the built-in performance
    section first, subgroups last) so that a wrong result names the plugin that gave it."""
    ctx.log.info("stage evaluate")
    sections: list[Section] = []
    everyone = {p for _, p in pm.list_name_plugin()}
    for impl in reversed(pm.hook.cardio_evaluate.get_hookimpls()):
        only = pm.subset_hook_caller("cardio_evaluate", remove_plugins=everyone - {impl.plugin})
        before = [e for s in sections for e in s.estimates], [t for s in sections for t in s.tests]
        for result in only(predictions=predictions, cohort=cohort, features=features, prepared=prepared,
                           config=cfg, ctx=ctx, estimates=before[0], tests=before[1],
                           model_facts=model_facts or {}):
            sections += _as_sections(result, "cardio_evaluate", impl.plugin_name)
    return sections


def _as_sections(result: Any, hook: str, plugin: str) -> list[Section]:
    if result is None:
        return []
    items = result if isinstance(result, (list, tuple)) else [result]
    for item in items:
        _expect(item, Section, hook, plugin)
    return list(items)


# What a bundle's config may never decide for the user: where files may be read, where the cache lives, whether a
# key file of identifiers is written. They come from the user's command and environment only.
USER_KEYS = ("cohort.allow_outside_paths", "cache_dir", "report.keep_key")


def _user_only(cfg: dict, sets: tuple[str, ...], keep_key: bool, moved: dict) -> dict:
    """The bundle's config with USER_KEYS at the core defaults, then the user's --set and --keep-key over it."""
    defaults = config_mod.core_defaults()
    for key in USER_KEYS:
        *parents, last = key.split(".")
        node, default = cfg, defaults
        for part in parents:
            node, default = node[part], default[part]
        node[last] = default[last]
    for item in sets:  # the user's --set over the model's config, checked like a run's
        over = config_mod.parse_set(item)
        config_mod.check_moved(over, moved, "--set")
        cfg = config_mod.merge(cfg, over)
    config_mod.validate(cfg)
    if keep_key:
        cfg["report"]["keep_key"] = True
    return cfg


ENSEMBLES = ensemble.ENSEMBLES


def predict_cohort(model_dir: str, cohort_path: str, out: str | None = None, device: str | None = None,
                   register: Iterable[object] = (), sets: tuple[str, ...] = (), keep_key: bool = False,
                   trusted_keys: Sequence[tuple[object, str]] = (), ensemble: str = "final") -> Path:
    """Apply a run's model bundle to a new cohort of the same plugin; return the output directory.

    load -> preprocess -> featurize with the bundle's config (the cohort path set by the plugin's
    cohort.dir) -> cardio_import_model -> cardio_predict on every row. predictions.csv always; when
    the cohort has labels, the core's performance section on it (external validation, with CIs), each target
    that cannot carry it named with why. `ensemble`: final (the model fitted on every patient) or folds (the mean
    of the bundle's fold models, compared with the final model in the report: cardio.ensemble).
    """
    if ensemble not in ENSEMBLES:
        raise CardioError(f"--ensemble {ensemble!r}: use one of {', '.join(ENSEMBLES)}")
    run_dir = Path(model_dir)
    plugin = read_run_json(run_dir)["plugin"]
    loaded = plugins.get_plugin_manager(register)
    pm = plugins.select(loaded, plugin)
    why = bundle.support(pm, plugin)
    if why:
        raise CardioError(f"plugin {plugin!r} cannot apply a trained model to a new cohort: {why}")
    info, state, cfg = bundle.read(run_dir, trusted_keys)  # signed by a trusted key, when any is given
    if info.get("plugin") != plugin:
        raise CardioError(f"{run_dir / 'model' / 'bundle.json'} is a bundle of plugin {info.get('plugin')!r}, "
                          f"but the run is one of {plugin!r}")
    if not Path(cohort_path).exists():
        raise CardioError(f"cohort {cohort_path} does not exist")
    folds = bundle.read_folds(run_dir, info) if ensemble == "folds" else {}
    if ensemble == "folds" and not folds:
        raise CardioError(f"{run_dir / 'model'} carries no fold models (a run made with fold_models: false, or by an "
                          "older cardio): predict with --ensemble final, or make the run again")
    plugin_info = plugins.info(pm, plugin)
    cfg = config_mod.validate(config_mod.merge(config_mod.resolve(plugin_info.default_config), cfg))
    cfg = _user_only(cfg, tuple(sets), keep_key, plugin_info.moved_keys)
    key = "cohort.dir"
    cfg["cohort"]["dir"] = str(Path(cohort_path).expanduser().absolute())
    cfg["cohort"]["permute_labels"] = False
    if device:
        cfg["device"] = device
    dev = engine.resolve_device(cfg["device"])
    out_dir = _new_run_dir(f"{plugin}-predict", out)
    _check_key_free(out_dir, cfg)
    for sub in ("", "figures", "checkpoints"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "config.yaml", config_mod.dump(cfg))
    _update_run_json(out_dir, plugin=plugin, kind="predict", model=str(run_dir.absolute()), ensemble=ensemble,
                     model_bundle={k: info.get(k) for k in ("plugin_version", "cardio_version", "n_patients",
                                                             "created", "weights_sha256", "trust", "folds")},
                     plugin_version=loaded.versions.get(plugin, "?"), cardio_version=cardio.__version__,
                     device=str(dev), device_name=engine.device_name(dev), versions=_versions(plugin, loaded),
                     git_commit=_git_commit(), status="running", started=time.strftime("%Y-%m-%dT%H:%M:%S"))
    try:
        _predict_stages(pm, plugin, loaded, info, (state, folds), cfg, out_dir, dev, run_dir, key)
    except BaseException as e:
        _close_log()
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        _update_run_json(out_dir, status="interrupted" if isinstance(e, KeyboardInterrupt) else "failed",
                         ended=time.strftime("%Y-%m-%dT%H:%M:%S"), error=f"{type(e).__name__}: {why}")
        raise
    _close_log()
    _update_run_json(out_dir, status="finished", ended=time.strftime("%Y-%m-%dT%H:%M:%S"))
    return out_dir


def _predict_stages(pm, plugin: str, loaded: plugins.Loaded, info: dict,
                    models: tuple[ModelState, dict[str, ModelState]], cfg: dict, out_dir: Path, dev, run_dir: Path,
                    key: str) -> None:
    """models: the final model's state and the fold models' (empty unless --ensemble folds)."""
    hooks = pm.hook
    log = _logger(out_dir / "run.log", True)
    ctx = RunContext(device=dev, seed=int(cfg["seed"]), out_dir=out_dir, cache_dir=default_cache_dir(cfg), log=log)
    ctx.cache_dir.mkdir(parents=True, exist_ok=True)
    engine.seed_everything(ctx.seed)
    t0 = time.perf_counter()
    if info.get("plugin_version") != loaded.versions.get(plugin):
        log.warning("the model was exported by %s %s; %s is now installed", plugin, info.get("plugin_version"),
                    loaded.versions.get(plugin, "?"))
    log.info("cardio %s, plugin %s, device %s: model of %s applied to the cohort of %s", cardio.__version__, plugin,
             dev, run_dir, key)
    log.info("%s", info["trust"])  # what was checked of the bundle: its fingerprint, and its signer if trusted
    cohort = _expect(hooks.cardio_load(config=cfg, ctx=ctx), Cohort, "cardio_load", plugin)
    cohort = _expect(hooks.cardio_preprocess(cohort=cohort, config=cfg, ctx=ctx) or cohort, Cohort,
                     "cardio_preprocess", plugin)
    log.info("cohort: %s", checks.summary(cohort))
    features = _expect(hooks.cardio_featurize(cohort=cohort, config=cfg, ctx=ctx), Features, "cardio_featurize", plugin)
    predictions, final = _predicted(hooks, plugin, models, features, cohort, cfg, ctx)
    shared = bundle.overlap(features, info.get("training_fingerprints") or {}, cohort)
    external = not (shared.get("same_id") or shared.get("same_content"))
    if not external:
        log.warning("%d of %d record(s) of this cohort are records the model was trained on (%d by id, %d by "
                    "content): this is not an external validation", max(shared["same_id"], shared["same_content"]),
                    shared["records"], shared["same_id"], shared["same_content"])
    report.write_predictions(out_dir, predictions, ctx.pseudonym_key)
    labelled_rows = labelled(predictions)
    meta = {"plugin": plugin, "plugin_version": loaded.versions.get(plugin, "?"), "cardio_version": cardio.__version__,
            "seed": ctx.seed, "device": str(dev), "world_size": 1, "n_records": int(len(cohort)),
            "n_patients": int(cohort.table["patient_id"].nunique()),
            "kind": "external validation" if external else "validation on records the model was trained on",
            "overlap_with_training": shared, "ensemble": "folds" if models[1] else "final",
            "fold_models": list(models[1]),
            "folds": [{"name": "external", "n_train": int(info.get("n_rows", 0)), "n_test": int(len(features)),
                       "n_val": 0}], "model_n_patients": info.get("n_patients"),
            "elapsed_s": round(time.perf_counter() - t0, 1)}
    if len(labelled_rows.table):
        about = _about_model(plugin, info, run_dir, cfg, meta, len(labelled_rows.table), shared, external)
        sections, meta["not_evaluated"] = _external_sections(labelled_rows, final, cohort.level, len(models[1]),
                                                             cfg, ctx, out_dir)
        report.write_run(out_dir, meta, predictions, [about, *sections], ctx.pseudonym_key)
    else:
        log.info("the cohort has no labels: predictions only, no external-validation report")
    _keep_key(out_dir, predictions, cfg, ctx.pseudonym_key)
    log.info("done in %.0f s: %s", time.perf_counter() - t0, out_dir / "predictions.csv")


def _predicted(hooks, plugin: str, models: tuple[ModelState, dict[str, ModelState]], features: Features,
               cohort: Cohort, cfg: dict, ctx: RunContext) -> tuple[Predictions, Predictions | None]:
    """(the predictions the report is about, at the cohort's level; the final model's beside them when those are
    the fold ensemble's, else None)."""
    state, folds = models
    model = hooks.cardio_import_model(state=state, config=cfg, ctx=ctx)
    if model is None:
        raise CardioError(f"plugin {plugin!r}: cardio_import_model returned None, expected a model")
    final = _expect(hooks.cardio_predict(model=model, features=features, test_index=np.arange(len(features)),
                                         config=cfg, ctx=ctx), Predictions, "cardio_predict", plugin)
    final = at_level(Predictions(final.table.assign(fold="external", repeat=0)), cohort)
    if not folds:
        return final, None
    ctx.log.info("--ensemble folds: the mean of the bundle's %d fold models (and the final model, to compare)",
                 len(folds))
    mean = ensemble.fold_predictions(hooks, plugin, folds, features, cfg, ctx)
    return at_level(Predictions(mean.table.assign(fold="external", repeat=0)), cohort), final


def _external_sections(rows: Predictions, final: Predictions | None, level: str, n_folds: int, cfg: dict,
                       ctx: RunContext, out_dir: Path) -> tuple[list[Section], list[dict]]:
    """The performance section on every target this cohort can evaluate, the targets it cannot with why, and with
    the fold ensemble its comparison with the final model: (sections, the targets not evaluated)."""
    from cardio import external
    from cardio.performance import evaluate_sections
    from cardio.stats import StatsError

    kept, skipped = external.screen(rows, level)
    sections: list[Section] = []
    for attempt in (1, 2):
        if not len(kept.table):
            break
        try:
            sections.extend(evaluate_sections(kept, cfg, ctx))
            break
        except StatsError as e:  # a refusal the screen's rules did not foresee: leave out the task(s) refused
            more = external.failed(kept, cfg, ctx, level) if attempt == 1 else []
            if not more:
                raise CardioError(f"evaluation failed: {e} (predictions are saved in "
                                  f"{out_dir / 'predictions.csv'})") from None
            skipped += more
            kept = Predictions(kept.table[~kept.table["task"].astype(str).isin({m["task"] for m in more})])
    if skipped:
        ctx.log.warning("%d target(s) not evaluated on this cohort: %s", len(skipped),
                        "; ".join(f"{s['task']} ({s['why'].split(':')[0]})" for s in skipped))
        sections.append(external.section(skipped, level, evaluated=bool(sections)))
    if final is not None:
        tasks_kept = set(kept.table["task"].astype(str))
        final = Predictions(final.table[final.table["task"].astype(str).isin(tasks_kept)])
        sections.append(ensemble.comparison_section(labelled(final), kept, n_folds, float(cfg["stats"]["level"]),
                                                    ctx))
    return sections, skipped
