"""Sweeps: every setting of a grid × every seed as a whole run, and a summary of every estimate with its CI.

`cardio sweep --plugin X --grid key=v1,v2 --seeds 0 1 --out DIR` makes one normal run directory per setting and
seed, `DIR/<key=value,...>/seed<k>/`, through `cardio.execution.run.run_study` (the code path of `cardio run`), so
`cardio status` and resume work on each. The same command again skips the finished runs and continues the others.
When every run is finished it writes `DIR/summary.csv` and `DIR/summary.md`.

Why a whole run is what the sweep submits (and not each run's tasks): a sweep has more runs than there are
GPUs, CPU slots or array tasks, and a run's prepare and evaluate steps are serial. One run per slot keeps every
slot busy with no dependency between jobs, where running the runs' tasks would either serialize the runs (each
run's own executor, one run after another) or need a task graph across runs: a scheduler of our own. A run is also
the unit resume already knows. So: inline runs them one after another in this process; local starts a process
per run through executors.throttle (at most `executor.workers` at once, or one per GPU); slurm submits one job
array of whole runs (at most `executor.workers` at once; `executor.timeout_min` is then a whole run's limit), each
requeued on preemption or at its limit and continued from its done markers and checkpoints. Inside its process
or job a run is inline: the same metrics as on any executor.

Selection: settings are ranked by the mean over seeds of one pooled metric of one model. The best setting's
CV estimate is optimistic, because it was chosen on the folds it is scored on; the summary says so. `--nested`
estimates the choose-the-best recipe itself from the runs' inner folds (cv.inner_folds): for each outer fold,
the setting with the best inner-CV metric is chosen and its predictions on that outer fold are kept.
"""
from __future__ import annotations

import itertools
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import submitit

from cardio import config as config_mod
from cardio import plugins
from cardio.data import CardioError, LogFormat, folders
from cardio.data.cache import write_text_atomic
from cardio.data.spreadsheet import write_csv
from cardio.execution.run import run_study
from cardio.study import tasks
from cardio.study.record import read_run_json, run_config
from cardio_cluster import executors, permutation
from cardio_cluster.executors import job_folder
from cardio_report.figures import save_figure
from cardio_stats import StatsError, auc, evaluate_predictions, format_ci
from cardio_stats.evaluate import reference_of

OPTIMISM = ("The best setting's CV estimate is optimistic: the setting was chosen on the same folds it is scored on; "
            "use --nested for an estimate of the choose-the-best recipe.")
HIGHER_IS_BETTER = ("auc", "accuracy", "sensitivity", "specificity", "ppv", "npv", "f1", "r2")
LOWER_IS_BETTER = ("mae", "rmse", "brier")
SUMMARY_COLUMNS = ("setting", "seed", "run", "model", "task", "metric", "method", "repeat", "estimate", "ci_low",
                   "ci_high", "level", "n", "sd_over_seeds", "n_seeds")

@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: what `cardio run` would be given for it."""
    plugin: str
    config_file: str | None
    sets: tuple[str, ...]
    device: str | None
    out: str
    seed: int
    register: tuple = ()


class RunCall(submitit.helpers.Checkpointable):
    """A whole run in a process or job of its own (inline inside it); requeued on preemption, it continues
    from the run's done markers and the engine's checkpoints."""
    def __call__(self, spec: RunSpec) -> str:
        return str(make_run(spec))


def make_run(spec: RunSpec) -> Path:
    """The run of `spec` through run_study, inline: new, or continued when its folder holds a partial one."""
    return run_study(spec.plugin, spec.config_file, spec.sets, spec.device, spec.out, seed=spec.seed,
                     register=spec.register, executor="inline")


@dataclass(frozen=True)
class Member:
    """A setting × seed of the sweep and its run."""
    setting: str
    values: tuple[tuple[str, str], ...]
    seed: int
    spec: RunSpec

    @property
    def run_dir(self) -> Path:
        return Path(self.spec.out)


# ---- the grid ----------------------------------------------------------------------------------------------------

def _split_values(text: str) -> list[str]:
    """v1,v2,[a,b] -> ['v1', 'v2', '[a,b]']: commas inside brackets or braces belong to a YAML value."""
    out, depth, part = [], 0, ""
    for ch in text:
        depth += ch in "[{"
        depth -= ch in "]}"
        if ch == "," and depth == 0:
            out.append(part)
            part = ""
        else:
            part += ch
    return [*out, part]


def parse_grid(items: Sequence[str]) -> list[tuple[str, list[str]]]:
    """['train.lr=0.001,0.0003', 'model.hidden=16,32'] -> [(key, values)], checked: each key once, values given
    (each value is read as YAML, as --set reads it: write 0.001, not 1e-3, which YAML reads as text)."""
    grid: list[tuple[str, list[str]]] = []
    for item in items:
        key, eq, values = item.partition("=")
        key = key.strip()
        parts = [v.strip() for v in _split_values(values)]
        if not eq or not key or not all(parts):
            raise CardioError(f"--grid {item!r}: write KEY=V1,V2,... (e.g. train.lr=0.001,0.0003)")
        if key == "seed":
            raise CardioError("--grid seed=...: seeds are --seeds 0 1 2")
        if key in (k for k, _ in grid):
            raise CardioError(f"--grid names {key} twice")
        grid.append((key, list(dict.fromkeys(parts))))
    if not grid:
        raise CardioError("a sweep needs at least one --grid KEY=V1,V2")
    return grid


def setting_name(values: Iterable[tuple[str, str]]) -> str:
    """A setting's folder name, key=value,...; characters a path should not hold become _."""
    return ",".join(f"{k}={re.sub(r'[^A-Za-z0-9._+-]', '_', v)}" for k, v in values)


def members(plugin: str, config_file: str | None, sets: Sequence[str], grid: list[tuple[str, list[str]]],
            seeds: Sequence[int], out: Path, device: str | None, register: tuple = ()) -> list[Member]:
    """Every setting × seed, in grid order; two settings whose folder names would be one are refused."""
    keys = [k for k, _ in grid]
    found: list[Member] = []
    names: dict[str, tuple] = {}
    for combo in itertools.product(*(v for _, v in grid)):
        values = tuple(zip(keys, combo))
        name = setting_name(values)
        if names.setdefault(name, values) != values:
            raise CardioError(f"--grid settings {names[name]} and {values} would share the folder {out / name}")
        for seed in seeds:
            spec = RunSpec(plugin, config_file, (*sets, *(f"{k}={v}" for k, v in values)), device,
                           str((out / name / f"seed{seed}").absolute()), int(seed), register)
            found.append(Member(name, values, int(seed), spec))
    return found


# ---- which runs are still to do ---------------------------------------------------------------------------------

def run_state(member: Member, info: plugins.PluginInfo) -> str:
    """finished | partial | new. A finished run of another config under the same folder stops the sweep: its
    numbers would be mixed into this sweep's summary."""
    run_dir = member.run_dir
    if not (run_dir / "run.json").exists():
        return "partial" if run_dir.exists() and any(run_dir.iterdir()) else "new"
    spec = member.spec
    extra = (*spec.sets, f"seed={spec.seed}", *((f"device={spec.device}",) if spec.device else ()))
    wanted = config_mod.resolve(info.default_config, spec.config_file, extra, info.moved_keys)
    try:
        made = tasks.config_hash(run_config(info, run_dir))
        status = read_run_json(run_dir).get("status")
    except CardioError as e:  # a damaged run.json or config.yaml of one of the sweep's own runs
        raise CardioError(f"{e}; it is one of this sweep's runs: remove {run_dir} and the same sweep command "
                          "makes it anew") from None
    if made != tasks.config_hash(wanted):
        raise CardioError(f"{run_dir} holds a run of another config than this sweep's; choose another --out")
    return "finished" if status == "finished" else "partial"


def _executor(cfg: dict, executor: str | None, workers: int | None) -> dict:
    """The base config with --executor and --workers over its executor section."""
    ex = {**cfg["executor"], **({"name": executor} if executor else {}),
          **({"workers": workers} if workers is not None else {})}
    if ex["name"] not in ("inline", "local", "slurm"):
        raise CardioError(f"config key executor.name is {ex['name']!r}; use inline, local or slurm")
    if not isinstance(ex["workers"], int) or ex["workers"] < 1:
        raise CardioError(f"config key executor.workers must be an integer >= 1, got {ex['workers']!r}")
    return {**cfg, "executor": ex}


# ---- where the runs run -----------------------------------------------------------------------------------------

def _inline(todo: list[Member], log: logging.Logger) -> None:
    for n, m in enumerate(todo):
        log.info("sweep: run %d of %d, %s seed %d", n + 1, len(todo), m.setting, m.seed)
        try:
            make_run(m.spec)
        except CardioError as e:
            raise CardioError(f"{m.run_dir}: {e} (the same sweep command again continues it)") from None


def _local(todo: list[Member], cfg: dict, folder: Path, log: logging.Logger) -> None:
    """A process per run, at most executor.workers at once (one per GPU with GPUs): executors.throttle."""
    by_name = {str(m.run_dir): m for m in todo}

    def start(name: str, slot: int | None):
        log.info("sweep: %s seed %d started on %s", by_name[name].setting, by_name[name].seed,
                 "the CPU" if slot is None else f"GPU {slot}")
        return executors.start_local(folder, cfg["executor"], slot, RunCall(), by_name[name].spec)

    failed = executors.throttle(list(by_name), start, executors.slots(cfg, log=log))
    if failed:
        raise CardioError("run(s) failed: " + "; ".join(f"{n}: {e}" for n, e in failed.items())
                          + " (each run's run.log and `cardio status RUN` say where; the same sweep command again "
                          "continues them)")


def _slurm(todo: list[Member], cfg: dict, folder: Path, out: Path, log: logging.Logger) -> bool:
    """One job array of whole runs (at most executor.workers at once); True when it was waited for."""
    executor = executors.slurm_executor(cfg, folder, todo[0].spec.plugin)
    with executor.batch():
        jobs = [executor.submit(RunCall(), m.spec) for m in todo]
    array = jobs[0].job_id.split("_")[0]
    _record(out, slurm_array=array, submitted=[str(m.run_dir) for m in todo])
    log.info("sweep: slurm job array %s, %d run(s), at most %d at once", array, len(jobs), cfg["executor"]["workers"])
    if not cfg["executor"]["wait"]:
        return False
    failed = []
    for m, job in zip(todo, jobs):
        try:
            job.result()
        except Exception as e:  # submitit's error names the job and its log
            failed.append(f"{m.run_dir}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    if failed:
        raise CardioError(f"slurm job array {array}: {len(failed)} run(s) failed: {'; '.join(failed)}")
    return True


def _queued(out: Path) -> str | None:
    """The sweep's SLURM array when squeue still lists it (a rerun then must not submit its runs again)."""
    array = _read_record(out).get("slurm_array")
    if not array or shutil.which("squeue") is None:
        return None
    try:
        proc = subprocess.run(["squeue", "-h", "-j", str(array), "-o", "%i"], capture_output=True, text=True,
                              timeout=30)
    except subprocess.TimeoutExpired:
        return None
    return str(array) if proc.returncode == 0 and proc.stdout.strip() else None


def _read_record(out: Path) -> dict:
    try:
        return json.loads((out / "sweep.json").read_text())
    except (OSError, ValueError):
        return {}


def _record(out: Path, **fields: Any) -> None:
    write_text_atomic(out / "sweep.json", json.dumps({**_read_record(out), **fields}, indent=1, default=str))


# ---- the command ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Selection:
    """Which pooled estimate ranks the settings."""
    metric: str = "auc"
    model: str | None = None
    task: str | None = None


def run_sweep(plugin: str, grid_items: Sequence[str], out: str, config_file: str | None = None,
              sets: Sequence[str] = (), seeds: Sequence[int] = (), device: str | None = None,
              executor: str | None = None, workers: int | None = None, selection: Selection = Selection(),
              nested: bool = False, register: Iterable[object] = (), permutation_of: str | None = None) -> Path | None:
    """Run (or continue) every setting × seed of the grid; the summary's path when every run is finished, else
    None (slurm without executor.wait: the same command again writes it once the array has ended).
    `permutation_of`: a run tested against chance by this sweep's runs on permuted labels
    (cardio_cluster.permutation)."""
    loaded = plugins.get_plugin_manager(register)
    pm = plugins.select(loaded, plugin)
    info = plugins.info(pm, plugin)
    grid = parse_grid(grid_items)
    base = config_mod.resolve(info.default_config, config_file, (*sets, *((f"device={device}",) if device else ())),
                              info.moved_keys)
    cfg = _executor(base, executor, workers)
    if selection.metric not in HIGHER_IS_BETTER + LOWER_IS_BETTER:
        raise CardioError(f"--select-metric {selection.metric!r}: use one of "
                          f"{', '.join(HIGHER_IS_BETTER + LOWER_IS_BETTER)}")
    root = folders.output_path(out).absolute()
    every = members(plugin, str(Path(config_file).absolute()) if config_file else None, tuple(sets), grid,
                    list(dict.fromkeys(seeds)) or [int(base["seed"])], root, device, tuple(register))
    # every setting's config checked (unknown keys, ranges) before any run starts
    configs = [config_mod.resolve(info.default_config, m.spec.config_file, (*m.spec.sets, f"seed={m.seed}"),
                                  info.moved_keys) for m in every]
    observed = Path(permutation_of).absolute() if permutation_of else None
    if observed:
        if len({m.setting for m in every}) != 1:
            raise CardioError("--permutation-of: the sweep must have one setting, --grid cohort.permute_labels=true, "
                              "and the permutations as --seeds")
        permutation.check_observed(observed, plugin, configs[0])
        _observed(observed, selection.metric)  # its metrics, read before any permuted run is made
    own = {"plugin": plugin, "config": config_file, "sets": list(sets), "grid": [f"{k}={','.join(v)}" for k, v in grid]}
    _check_root(root, own)
    claimed = folders.claim(root, "sweep folder", resolved=True)  # one sweep at a time in a folder
    try:
        _check_root(root, own, held=True)
        return _sweep(plugin, info, cfg, base, root, every, own, selection, nested, observed)
    finally:
        claimed.release()


def _check_root(root: Path, own: dict, held: bool = False) -> None:
    """A sweep writes into a new (or empty) folder, or continues its own: the folder of a sweep.json with the same
    plugin, config, --set and --grid (its seeds may differ). Anything else is never written into. `held`: this
    process holds the folder's lock (else a sweep that does is named)."""
    if not folders.holds_files(root):
        return
    if not held:
        folders.refuse_if_busy(root, "sweep folder")
    record = _read_record(root)
    if {k: record.get(k) for k in own} != own:
        why = "its sweep.json is of another sweep" if record else "it has no sweep.json: it is not a sweep's folder"
        raise CardioError(f"--out {root} already holds files and is not this sweep's folder ({why}); a sweep writes "
                          "into a new folder, or continues its own with the same command")


def _sweep(plugin: str, info: plugins.PluginInfo, cfg: dict, base: dict, root: Path, every: list[Member],
           own: dict, selection: Selection, nested: bool, observed: Path | None) -> Path | None:
    """The sweep in its claimed folder: the runs still to do, then the summary (run_sweep's)."""
    log = _sweep_log()
    states = {m: run_state(m, info) for m in every}
    todo = [m for m in every if states[m] != "finished"]
    _record(root, **own, seeds=sorted({m.seed for m in every}), runs=[str(m.run_dir.relative_to(root)) for m in every])
    log.info("sweep: %d setting(s) x %d seed(s); %d run(s) finished, %d to run, executor %s", len(every) //
             len({m.seed for m in every}), len({m.seed for m in every}), len(every) - len(todo), len(todo),
             cfg["executor"]["name"])
    if todo:
        if cfg["executor"]["name"] == "slurm" and _queued(root):
            raise CardioError(f"the sweep's slurm job array {_queued(root)} is still queued or running; run the same "
                              "command again when it has ended (cardio status RUN follows each run)")
        os.environ["SUBMITIT_PREEMPT_SIGNAL"] = str(cfg["executor"]["signal"])

        if cfg["executor"]["name"] == "inline":
            _inline(todo, log)
        elif cfg["executor"]["name"] == "local":
            _local(todo, cfg, job_folder(cfg, root / "submitit"), log)
        elif not _slurm(todo, cfg, job_folder(cfg, root / "submitit"), root, log):
            log.info("sweep: submitted; run the same command again when the array has ended to write the summary")
            return None
    summary = write_summary(root, every, base, selection, nested, observed)
    if observed:
        log.info("sweep: permutation test of %s in %s and %s", observed, root / "permutation.csv",
                 root / "permutation.png")
    log.info("sweep: summary written to %s and %s%s", summary, root / "summary.csv",
             f"; {OPTIMISM}" if len({m.setting for m in every}) > 1 else "")
    if nested:
        log.info("sweep: nested CV of the choose-the-best recipe in %s", root / "nested.csv")
    return summary


def _sweep_log() -> logging.Logger:
    """The sweep's own lines on stderr (made anew per command: stderr may have been replaced since)."""
    log = logging.getLogger("cardio.sweep")
    log.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogFormat())
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    return log


# ---- the summary -------------------------------------------------------------------------------------------------

def pooled_estimates(run_dir: Path, tested: bool = False) -> list[dict]:
    """Every pooled estimate (no subgroup) of one run's metrics.json, with its interval. `tested`: the run is the
    user's own (--permutation-of), which the sweep never remakes, so the advice differs."""
    path = run_dir / "metrics.json"
    todo = ("it is the run under test, which this sweep did not make and never remakes: restore its metrics.json "
            "from a backup, or make that run again" if tested else
            "remove that run's folder and the same sweep command again makes it anew")
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError):  # ValueError: not JSON, or not UTF-8
        raise CardioError(f"{path} cannot be read (missing or damaged), though the run says it finished; "
                          f"{todo}") from None
    found = metrics.get("estimates") if isinstance(metrics, dict) else None
    if not isinstance(found, list) or not all(isinstance(e, dict) for e in found):
        raise CardioError(f"{path} holds no list of estimates (edited, or not written by cardio); {todo}")
    return [{"model": e.get("model"), "task": e.get("task"), "metric": e.get("metric"), "method": e.get("method"),
             "repeat": e.get("repeat", 0), "estimate": e.get("estimate"), "ci_low": e.get("ci_low"),
             "ci_high": e.get("ci_high"), "level": e.get("level"), "n": e.get("n")}
            for e in found if e.get("fold") == "pooled" and e.get("subgroup") is None]


def estimates(every: Sequence[Member], root: Path) -> pd.DataFrame:
    """One row per run × model × task × metric × method × repeat: every pooled estimate (no subgroup) of each
    run's metrics.json, with its interval."""
    rows = [{"setting": m.setting, **dict(m.values), "seed": m.seed, "run": str(m.run_dir.relative_to(root)), **e}
            for m in every for e in pooled_estimates(m.run_dir)]
    if not rows:
        raise CardioError(f"the sweep's runs report no pooled estimate ({root})")
    return pd.DataFrame(rows)


def seed_means(runs: pd.DataFrame) -> pd.DataFrame:
    """Per setting × model × task × metric × method × repeat: the mean of the estimates over seeds, their SD and
    count (each run's own CI is in its row; a mean over seeds has none of its own)."""
    keys = ["setting", "model", "task", "metric", "method", "repeat"]
    grid = [c for c in runs.columns if c not in SUMMARY_COLUMNS]
    first = runs.groupby(keys, sort=False, dropna=False)[grid].first()
    stats = runs.groupby(keys, sort=False, dropna=False)["estimate"].agg(["mean", "std", "count"])
    out = pd.concat([first, stats], axis=1).reset_index()
    return out.rename(columns={"mean": "estimate", "std": "sd_over_seeds", "count": "n_seeds"}).assign(seed="mean")


@dataclass(frozen=True)
class Ranking:
    """The settings ranked on one pooled estimate: per run and per setting (mean over seeds), and the best."""
    metric: str
    model: str
    task: str
    method: str
    per_run: pd.DataFrame  # setting, seed, value
    per_setting: pd.Series  # setting -> mean over seeds, in grid order
    best: str


def _one(values: Iterable[Any], what: str, option: str) -> str:
    found = sorted({str(v) for v in values})
    if len(found) != 1:
        raise CardioError(f"the runs report {len(found)} {what}s ({', '.join(found)}); name one with {option}")
    return found[0]


def rank(runs: pd.DataFrame, base: dict, selection: Selection) -> Ranking:
    """Settings ranked by the mean over seeds of the pooled selection metric of one model and task (higher is
    better, or lower for mae, rmse and brier); the model defaults to the run's stats.reference."""
    rows = runs[runs["metric"] == selection.metric]
    if rows.empty:
        raise CardioError(f"no run reports a pooled {selection.metric}; --select-metric one of "
                          f"{', '.join(sorted(set(runs['metric'])))}")
    task = selection.task or _one(rows["task"], "task", "--select-task")
    model = selection.model or reference_of(base["stats"].get("reference"), task) or \
        _one(rows.loc[rows["task"] == task, "model"], "model", "--select-model")
    rows = rows[(rows["task"] == task) & (rows["model"] == model)]
    if rows.empty:
        raise CardioError(f"no run reports a pooled {selection.metric} of model {model!r}, task {task!r}")
    methods = sorted(set(rows["method"]))
    method = "delong" if "delong" in methods else methods[0]  # the interval the report leads with
    rows = rows[rows["method"] == method]
    per_run = rows.groupby(["setting", "seed"], sort=False)["estimate"].mean().rename("value").reset_index()
    per_setting = per_run.groupby("setting", sort=False)["value"].mean()
    best = str(per_setting.idxmin() if selection.metric in LOWER_IS_BETTER else per_setting.idxmax())
    return Ranking(selection.metric, str(model), str(task), method, per_run, per_setting, best)


def write_summary(root: Path, every: Sequence[Member], base: dict, selection: Selection, nested: bool,
                  observed: Path | None = None) -> Path:
    """DIR/summary.csv (every pooled estimate of every run, then the means over seeds) and DIR/summary.md; with
    `observed`, its permutation test (permutation.csv, permutation.png and a section of summary.md)."""
    runs = estimates(every, root)
    means = seed_means(runs)
    ranking = rank(runs, base, selection)
    recipe = nested_estimates(every, base, ranking) if nested else None
    table = pd.concat([runs, means], ignore_index=True)
    grid = [c for c in runs.columns if c not in SUMMARY_COLUMNS]
    table = table[["setting", *grid, *SUMMARY_COLUMNS[1:]]].astype({"n": "Int64", "n_seeds": "Int64"})
    write_csv(root / "summary.csv", table)
    if recipe is not None:
        write_csv(root / "nested.csv", recipe)
    tested = _permutation(root, runs, observed, selection.metric) if observed else []
    write_text_atomic(root / "summary.md", _markdown(root, every, runs, ranking, recipe, tested))
    return root / "summary.md"


def _observed(observed: Path, metric: str) -> pd.DataFrame:
    """The run under test's pooled `metric` per model and task (its metrics.json unreadable, or without the metric,
    is one line: checked before the permuted runs are made, and again when they are compared)."""
    table = permutation.point_values(pd.DataFrame(pooled_estimates(observed, tested=True)), metric)
    if table.empty:
        raise CardioError(f"--permutation-of {observed}: the run reports no pooled {metric} (--select-metric)")
    return table


def _permutation(root: Path, runs: pd.DataFrame, observed: Path, metric: str) -> list[str]:
    """The permutation test's files, and its section of summary.md; `runs` are the permuted runs' estimates."""
    higher = metric not in LOWER_IS_BETTER
    null = [permutation.point_values(rows, metric) for _, rows in runs.groupby("run", sort=False)]
    table = permutation.permutation_test(_observed(observed, metric), null, higher)
    write_csv(root / "permutation.csv", table)
    save_figure(permutation.figure(table, null, metric), root / "permutation.png", svg=False)
    return permutation.markdown(observed, table, metric, higher)


# ---- nested CV of the choose-the-best recipe -------------------------------------------------------------------

NESTED_METRICS = ("auc", "mae", "rmse", "r2")


def _point(metric: str, y: np.ndarray, score: np.ndarray) -> float:
    """The selection metric on one table of predictions (inner folds pooled)."""
    if metric == "auc":
        return auc(y, score) if len(set(y.tolist())) == 2 else float("nan")
    err = score - y
    if metric == "mae":
        return float(np.mean(np.abs(err)))
    if metric == "rmse":
        return float(np.sqrt(np.mean(err ** 2)))
    return float(1 - np.sum(err ** 2) / np.sum((y - y.mean()) ** 2))


def _rows(table: pd.DataFrame, ranking: Ranking) -> pd.DataFrame:
    """The ranked model's and task's labelled rows."""
    keep = (table["model"].astype(str) == ranking.model) & (table["task"].astype(str) == ranking.task)
    table = table[keep]
    return table[np.isfinite(table["y_true"].to_numpy(dtype=float))]


def _inner_value(m: Member, fold: str, ranking: Ranking) -> float:
    """The setting's selection metric on the inner folds of outer fold `fold` (their out-of-fold predictions)."""
    path = tasks.task_dir(m.run_dir, f"fit-{fold}") / tasks.INNER
    if not path.exists():
        raise CardioError(f"--nested needs the runs' inner folds, and {path} does not exist: set cv.inner_folds "
                          "(e.g. --set cv.inner_folds=3) in the sweep's config, in a new --out folder")
    try:
        inner = _rows(tasks.read_predictions(m.run_dir, f"fit-{fold}", b"", None, file=tasks.INNER).table, ranking)
    except (TypeError, ValueError, KeyError) as e:  # a dtype or column edited: what numpy and pandas raise
        raise CardioError(f"{path} holds predictions cardio did not write ({type(e).__name__}); remove "
                          f"{m.run_dir} and the same sweep command makes it anew") from None
    return _point(ranking.metric, inner["y_true"].to_numpy(dtype=float), inner["y_score"].to_numpy(dtype=float))


def _outer_rows(m: Member, ranking: Ranking) -> pd.DataFrame:
    path = m.run_dir / "predictions.csv"
    try:
        return _rows(pd.read_csv(path, dtype={"fold": str}), ranking)
    except (OSError, ValueError, KeyError) as e:  # missing, not CSV, or a column lost
        raise CardioError(f"{path} cannot be read ({type(e).__name__}); remove {m.run_dir} and the same sweep "
                          "command makes it anew") from None


def _nested_seed(ms: Sequence[Member], base: dict, ranking: Ranking) -> list[dict]:
    """One seed's nested estimate per repeat: in each outer fold, the setting best on that fold's inner folds, and
    its predictions on the outer fold; pooled over the folds and evaluated as a run's are (cardio_stats)."""
    outer = {m: _outer_rows(m, ranking) for m in ms}
    first = outer[ms[0]]
    out = []
    for repeat, rows in first.groupby("repeat", sort=True):
        chosen, parts = [], []
        for fold in dict.fromkeys(rows["fold"]):
            patients = set(rows.loc[rows["fold"] == fold, "patient_id"])
            for m in ms:  # the settings of one seed must share their folds, or the choice mixes test patients
                if set(outer[m].loc[outer[m]["fold"] == fold, "patient_id"]) != patients:
                    raise CardioError(f"--nested: {m.run_dir} has other patients in fold {fold} than "
                                      f"{ms[0].run_dir}; a grid key changes the cohort or the split")
            values = [_inner_value(m, fold, ranking) for m in ms]
            lower = ranking.metric in LOWER_IS_BETTER
            best = ms[int(np.nanargmin(values) if lower else np.nanargmax(values))]
            chosen.append(f"{fold}: {best.setting}")
            parts.append(outer[best][outer[best]["fold"] == fold])
        pooled = pd.concat(parts, ignore_index=True).assign(model="choose-the-best")
        try:
            found, _ = evaluate_predictions(pooled, level=float(base["stats"]["level"]),
                                            n_resamples=int(base["stats"]["n_resamples"]), seed=ms[0].seed)
        except StatsError as e:
            raise CardioError(f"--nested, seed {ms[0].seed}: {e}") from None
        methods = [e for e in found if e["metric"] == ranking.metric and e["fold"] == "pooled"]
        est = next((e for e in methods if e["method"] == ranking.method), methods[0])
        out.append({"seed": ms[0].seed, "repeat": int(repeat), "metric": ranking.metric, "method": est["method"],
                    "estimate": est["estimate"], "ci_low": est["ci_low"], "ci_high": est["ci_high"],
                    "level": est["level"], "n": est["n"], "chosen": "; ".join(chosen)})
    return out


def nested_estimates(every: Sequence[Member], base: dict, ranking: Ranking) -> pd.DataFrame:
    """The nested-CV estimate of choosing the best setting, per seed and repeat (nested_seed)."""
    if ranking.metric not in NESTED_METRICS:
        raise CardioError(f"--nested chooses on {', '.join(NESTED_METRICS)}; --select-metric {ranking.metric} is "
                          "a thresholded metric whose threshold the inner folds do not carry")
    rows = []
    for seed in dict.fromkeys(m.seed for m in every):
        rows += _nested_seed([m for m in every if m.seed == seed], base, ranking)
    return pd.DataFrame(rows)


def _nested_markdown(recipe: pd.DataFrame, ranking: Ranking) -> list[str]:
    out = ["## Nested CV of the choose-the-best recipe", "",
           f"In each outer fold, the setting with the best {ranking.metric} of model `{ranking.model}` on that fold's "
           "inner folds (its training patients only) was chosen, and its predictions on the outer fold kept; the "
           "folds' predictions are pooled and evaluated as a run's. This estimates what choosing the best setting "
           "gives on new patients, and replaces the best setting's estimate above.", "",
           "| seed | repeat | estimate [CI] | method | chosen per outer fold |", "| --- | --- | --- | --- | --- |"]
    out += [f"| {r['seed']} | {r['repeat']} | {_cell(r)} | {r['method']} | {r['chosen']} |"
            for _, r in recipe.iterrows()]
    if len(recipe) > 1:
        out.append(f"| mean | | {recipe['estimate'].mean():.3f} | | |")
    return [*out, ""]


def _cell(row: pd.Series | dict) -> str:
    return format_ci({"estimate": row["estimate"], "ci_low": row["ci_low"], "ci_high": row["ci_high"]})


def _choosing_markdown(runs: pd.DataFrame, ranking: Ranking, seeds: list[int]) -> list[str]:
    """The settings ranked, one column per seed; the best and the optimism of choosing it."""
    settings = list(ranking.per_setting.index)
    out = ["## Choosing the setting", "",
           f"Settings are ranked by the mean over seeds of the pooled {ranking.metric} ({ranking.method}) of model "
           f"`{ranking.model}`, task `{ranking.task}` "
           f"({'lower' if ranking.metric in LOWER_IS_BETTER else 'higher'} is better).", "",
           "| setting | " + " | ".join(f"seed {s}" for s in seeds) + " | mean over seeds |",
           "| --- | " + " | ".join("---" for _ in seeds) + " | --- |"]
    chosen = runs[(runs["metric"] == ranking.metric) & (runs["model"] == ranking.model)
                  & (runs["task"] == ranking.task) & (runs["method"] == ranking.method) & (runs["repeat"] == 0)]
    for setting in settings:
        cells = []
        for seed in seeds:
            row = chosen[(chosen["setting"] == setting) & (chosen["seed"] == seed)]
            cells.append(_cell(row.iloc[0]) if len(row) else "–")
        name = f"**{setting}** (best)" if setting == ranking.best else setting
        out.append(f"| {name} | " + " | ".join(cells) + f" | {ranking.per_setting[setting]:.3f} |")
    return [*out, "", f"Best setting: `{ranking.best}`, mean {ranking.metric} "
            f"{ranking.per_setting[ranking.best]:.3f} over {len(seeds)} seed(s).", "", f"**{OPTIMISM}**", ""]


def _markdown(root: Path, every: Sequence[Member], runs: pd.DataFrame, ranking: Ranking,
              recipe: pd.DataFrame | None, tested: list[str]) -> str:
    seeds = list(dict.fromkeys(m.seed for m in every))
    settings = list(ranking.per_setting.index)
    grid = [c for c in runs.columns if c not in SUMMARY_COLUMNS]

    plugin = read_run_json(every[0].run_dir)["plugin"]
    levels = sorted({float(v) for v in runs["level"].dropna()})
    level = f"{levels[0]:.0%}" if len(levels) == 1 else "the stated"
    out = [f"# Sweep of {plugin}: {len(settings)} setting(s) x {len(seeds)} seed(s)", "",
           f"Grid over {', '.join(f'`{k}`' for k in grid)}; seeds {', '.join(map(str, seeds))}. Each setting x seed is "
           f"a run directory of its own, `<setting>/seed<k>/` under this folder (`cardio status` and resume work on "
           f"each). `summary.csv` holds every pooled estimate of every run with its {level} interval, and per "
           "setting the mean over seeds (seed `mean`, with the SD over seeds; the intervals are each run's own)."
           + (" `nested.csv` holds the nested-CV estimates below." if recipe is not None else ""), ""]
    if len(settings) > 1:  # one setting: nothing is chosen, and no choice is optimistic
        out += _choosing_markdown(runs, ranking, seeds)
    if recipe is not None:
        out += _nested_markdown(recipe, ranking)
    out += tested
    out += ["## Every pooled estimate", "", "| setting | seed | model | task | metric | method | repeat | estimate "
            f"[{level} CI] |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    out += [f"| {r.setting} | {r.seed} | {r.model} | {r.task} | {r.metric} | {r.method} | {r.repeat} | "
            f"{_cell(r._asdict())} |" for r in runs.itertuples(index=False)]
    return "\n".join(out) + "\n"
