"""A run as tasks: `prepare` (once, label-free), one `fit-<fold>` per fold, `final` (the exported model), `evaluate`.

Each task owns a folder `<run>/tasks/<name>/`. A fit task writes its out-of-fold predictions there
(`predictions.npz`, no pickle), the last fold's also its explanation (`sections.json`), and the final
task what it fitted (`final.json`); checkpoints and histories stay in `<run>/checkpoints/` and
`<run>/history/`, tagged by fold as the engine names them. A task ends by writing `done.json` with the
config's hash: a rerun skips it, and evaluate reads every fit from these folders. The stages before the
folds (load, preprocess, featurize, prepare) are built once per run, by the first task that needs them, and
kept in the cache under the run's config and cohort fingerprint; every other task, in whichever process or
job, loads the cohort table and reads them back. Every fit starts from the run's seed, so a fold's model is
the same whichever process, machine or order fits it. A task stopped by SIGTERM is marked cancelled, one
whose SLURM job is requeued on the preemption signal requeued.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cardio import config as config_mod
from cardio.data import CardioError, Cohort, Features, Predictions, Section
from cardio.data.cache import atomic_path, seal, unseal, write_text_atomic, write_text_surely
from cardio.data.pseudonyms import pseudonyms
from cardio_stats.result import json_safe

TASKS = "tasks"


# Sections that change where a fit runs or how the evaluate step reports, never what a fit computes: a run that
# failed at evaluate (a subgroup column misnamed) is fixed in config.yaml and resumed without refitting.
NOT_HASHED = ("executor", "report", "subgroups", "subgroups_if_present")


def config_hash(cfg: dict) -> str:
    """What a done marker records: the config minus the sections of NOT_HASHED."""
    text = config_mod.dump({k: v for k, v in cfg.items() if k not in NOT_HASHED})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fold_names(cv: dict) -> list[str]:
    """The folds' names from the config alone (make_folds names them the same), so a submitter needs no data."""
    if cv["method"] != "kfold":
        return [str(cv["method"])]
    repeats, k = int(cv.get("repeats", 1)), int(cv["folds"])
    return [f"r{r}f{f}" if repeats > 1 else f"fold{f}" for r in range(repeats) for f in range(k)]


def task_names(cfg: dict) -> list[str]:
    """Every task of a run, in the order the inline executor runs them (final only with final_model: true)."""
    return ["prepare", *(f"fit-{n}" for n in fold_names(cfg["cv"])), *(["final"] if cfg["final_model"] else []),
            "evaluate"]


def phases(todo: Sequence[str]) -> list[list[str]]:
    """prepare, then every fit and the final model (independent of each other), then evaluate."""
    middle = [n for n in todo if n not in ("prepare", "evaluate")]
    return [p for p in (["prepare"] if "prepare" in todo else [], middle,
                        ["evaluate"] if "evaluate" in todo else []) if p]


def task_dir(run_dir: Path, name: str) -> Path:
    return Path(run_dir) / TASKS / name


def is_done(run_dir: Path, name: str) -> bool:
    """Whether task `name` has a done marker (state() also checks that it is this config's)."""
    return (task_dir(run_dir, name) / "done.json").exists()


# ---- markers: done, running, failed --------------------------------------------------------------------------

def _write_marker(run_dir: Path, name: str, kind: str, **fields: Any) -> None:
    write_text_atomic(task_dir(run_dir, name) / f"{kind}.json", json.dumps(fields, indent=1, default=str))


def _end_marker(run_dir: Path, name: str, kind: str, **fields: Any) -> None:
    """The marker of a task's end (failed, cancelled, requeued), with the host and time, even on a full disk: where
    no new file can be written, the task's running marker renamed to it and rewritten in place (write_text_surely)."""
    folder, fields = task_dir(run_dir, name), {**fields, "host": socket.gethostname(),
                                               "ended": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if write_text_surely(folder / f"{kind}.json", json.dumps(fields, default=str), reuse=folder / "running.json"):
        (folder / "running.json").unlink(missing_ok=True)


def slurm_job() -> str | None:
    """This process's SLURM job: <array job>_<index> for an array task, else the job id (None outside SLURM)."""
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env.get('SLURM_ARRAY_TASK_ID')}"
    return env.get("SLURM_JOB_ID")


def mark_running(run_dir: Path, name: str) -> None:
    for kind in ("failed", "cancelled", "requeued"):
        (task_dir(run_dir, name) / f"{kind}.json").unlink(missing_ok=True)
    _write_marker(run_dir, name, "running", host=socket.gethostname(), pid=os.getpid(), job=slurm_job(),
                  started=time.strftime("%Y-%m-%dT%H:%M:%S"))


def unmark(run_dir: Path, name: str) -> None:
    """The task as if it had not started (its running and failed markers go): it did not fail, a task it waited
    for did, and `cardio status` says it was not run because of that one."""
    for kind in ("running", "failed"):
        (task_dir(run_dir, name) / f"{kind}.json").unlink(missing_ok=True)


def mark_done(run_dir: Path, name: str, cfg: dict, started: float, cpu_started: float | None = None,
              hooks_before: dict[str, float] | None = None, checkpoints: dict | None = None,
              **seconds: float) -> None:
    """The task's end: the config's hash and its wall seconds; with `cpu_started` (time.process_time() at its
    start) the CPU seconds of this process's threads, with `hooks_before` (hook_seconds() at its start) the wall
    seconds of each hook it called, and `seconds` more named ones: where a run's time goes. `checkpoints`: what its
    fits spent on checkpoints and the files they left (engine.CheckpointUse), added to those of an earlier done
    marker of the same task (an inline run's resume builds the stages before the folds again)."""
    timing: dict[str, Any] = {k: round(float(v), 2) for k, v in seconds.items()}
    if cpu_started is not None:
        timing["cpu_s"] = round(time.process_time() - cpu_started, 1)
    if hooks_before is not None:
        timing["hooks_s"] = {k: round(v - hooks_before.get(k, 0.0), 2) for k, v in _hook_seconds.items()
                             if v - hooks_before.get(k, 0.0) >= 0.005}
    if checkpoints is not None:
        before = (read_done(run_dir, name) or {}).get(CHECKPOINTS) or {}
        timing[CHECKPOINTS] = {**{k: round(checkpoints.get(k, 0) + before.get(k, 0), 3) for k in CHECKPOINT_SUMS},
                               "files": {**before.get("files", {}), **checkpoints["files"]}}
    _write_marker(run_dir, name, "done", config_hash=config_hash(cfg), host=socket.gethostname(),
                  ended=time.strftime("%Y-%m-%dT%H:%M:%S"), ended_at=time.time(),
                  elapsed_s=round(time.perf_counter() - started, 1), **timing)
    (task_dir(run_dir, name) / "running.json").unlink(missing_ok=True)


CHECKPOINTS = "checkpoints"  # a done marker's account of its fits' checkpoints
CHECKPOINT_SUMS = ("fit_s", "seconds", "background_s", "written", "bytes")


def read_done(run_dir: Path, name: str) -> dict | None:
    """A task's done marker, None when it has none (or an unreadable one)."""
    try:
        return read_marker(task_dir(run_dir, name) / "done.json")
    except DamagedMarker:
        return None


def checkpoint_totals(run_dir: Path, names: Sequence[str]) -> dict:
    """The checkpoints of the tasks `names` together, from their done markers: seconds writing them, how many,
    bytes written, seconds of training, and the bytes their files take on disk (the last version of each)."""
    totals: dict[str, Any] = dict.fromkeys(CHECKPOINT_SUMS, 0)
    files: dict[str, int] = {}
    for name in names:
        part = (read_done(run_dir, name) or {}).get(CHECKPOINTS) or {}
        for k in CHECKPOINT_SUMS:
            totals[k] += part.get(k, 0)
        files.update(part.get("files", {}))
    return {**{k: round(v, 3) for k, v in totals.items()}, "files": len(files), "disk_bytes": sum(files.values())}


def _fits(run_dir: Path, names: Sequence[str]) -> set[str]:
    """The tags of the fits whose checkpoint files the done markers of tasks `names` list (<tag>.pt, <tag>.best.pt)."""
    files = {f for n in names for f in ((read_done(run_dir, n) or {}).get(CHECKPOINTS) or {}).get("files", {})}
    return {Path(f).name.removesuffix(".pt").removesuffix(".best") for f in files}


def _remove(path: Path) -> int:
    """Delete a file, or a folder and all it holds; the bytes its files took."""
    import shutil

    size = path.stat().st_size if path.is_file() else sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()
    return size


def remove_checkpoints(run_dir: Path, names: Sequence[str], spare: Sequence[str] = ()) -> tuple[int, int]:
    """Delete the checkpoints of the fits of tasks `names` (their done markers list them), except those of `spare`'s
    fits: a done task never runs again, so its fits never resume. With a fit's own files go what a plugin keeps
    beside them for its resume, checkpoints/<tag>.<suffix> (echo_cmr's <tag>.heads/). (entries, bytes) deleted."""
    import glob

    folder = Path(run_dir) / "checkpoints"
    count = size = 0
    for tag in sorted(_fits(run_dir, names) - _fits(run_dir, spare)):
        for path in folder.glob(f"{glob.escape(tag)}.*"):
            try:
                size += _remove(path)
            except FileNotFoundError:  # the run's other process removed it first (a worker's task ending beside
                continue               # the local executor's evaluate)
            count += 1
    return count, size


def remove_leftovers(run_dir: Path) -> list[tuple[str, int]]:
    """Delete the weights left in a finished run's checkpoints/ once every task's fits are gone: what a plugin kept
    beside its fits for a resume (a finished run never resumes), its *.pt files and folders; a small record such as
    ecg_transfer's pretraining results (JSON) stays. (name, bytes) of each, largest first."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    removed = [(path.name, _remove(path)) for path in sorted(folder.iterdir())
               if not (path.is_file() and path.suffix != ".pt")]
    return sorted(removed, key=lambda r: -r[1])


def mark_failed(run_dir: Path, name: str, error: BaseException) -> None:
    why = str(error).splitlines()[0] if str(error) else type(error).__name__
    _end_marker(run_dir, name, "failed", error=f"{type(error).__name__}: {why}")


_hook_seconds: dict[str, float] = {}  # this process's wall seconds in each hook, summed over its calls


def time_hooks(pm: Any) -> None:
    """Sum the wall seconds of every hook call of `pm` into this process's tally (hook_seconds), once per manager:
    a task's done marker keeps its share, where a run's time goes (benchmarks/executors.py --profile)."""
    if getattr(pm, "_cardio_timed", False):
        return
    pm._cardio_timed = True
    began: list[float] = []

    def before(name: str, impls: Any, kwargs: Any) -> None:
        began.append(time.perf_counter())

    def after(outcome: Any, name: str, impls: Any, kwargs: Any) -> None:
        _hook_seconds[name] = _hook_seconds.get(name, 0.0) + time.perf_counter() - began.pop()

    pm.add_hookcall_monitoring(before, after)


def hook_seconds() -> dict[str, float]:
    """A copy of this process's tally: a task's share is the difference of two copies."""
    return dict(_hook_seconds)


class Cancelled(BaseException):
    """A task stopped by SIGTERM (scancel, a time limit, a preemption): a BaseException, like KeyboardInterrupt, so
    that no plugin's `except Exception` takes it for an error of its own."""

_stopped: dict[str, str] = {}  # this process's: signal name of the stop, and the task SLURM requeued


def stopped_by(signame: str | None = None) -> str | None:
    """Record (with a name) or read the signal that stopped this process's task (None: no signal)."""
    if signame:
        _stopped["signal"] = signame
    return _stopped.get("signal")


def requeued_here(name: str | None = None) -> str | None:
    """Record (with a name) or read the task whose job this process's submitit requeued."""
    if name:
        _stopped["requeued"] = name
    return _stopped.get("requeued")


def mark_cancelled(run_dir: Path, name: str, signame: str) -> None:
    """The task stopped on a signal (scancel, a time limit, a preemption) after the engine's checkpoint."""
    job = slurm_job()
    _end_marker(run_dir, name, "cancelled", error=f"stopped by {signame}" + (f" (job {job})" if job else "")
                + "; `cardio run --resume` continues it from its last checkpoint", job=job)


def mark_requeued(run_dir: Path, name: str, signame: str) -> None:
    """SLURM requeues the task's job (submitit's checkpoint on the preemption signal): it starts again by itself."""
    _end_marker(run_dir, name, "requeued", why=f"stopped by {signame} and requeued", job=slurm_job())


class DamagedMarker(Exception):
    """A task marker that is not one cardio wrote: damaged, emptied, or of the wrong JSON type."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"{path} {why}")
        self.path = path


def read_marker(path: Path) -> dict | None:
    """A marker's fields, None when there is none; a damaged or wrongly typed one raises DamagedMarker."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise DamagedMarker(path, f"cannot be read ({getattr(e, 'strerror', None) or type(e).__name__})") from None
    try:
        doc = json.loads(text)
    except ValueError:
        raise DamagedMarker(path, "is not valid JSON (damaged, or not written by cardio)") from None
    if not isinstance(doc, dict):
        raise DamagedMarker(path, f"holds a JSON {type(doc).__name__}, not a task marker (an object)")
    return doc


def _pid(marker: dict, path: Path) -> int:
    pid = marker.get("pid")
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        raise DamagedMarker(path, f"has pid {pid!r}, not a process id")
    return pid


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


def state(run_dir: Path, name: str, cfg: dict) -> tuple[str, str]:
    """(done | running | cancelled | requeued | failed | damaged | missing, detail). A done marker of another
    config is an error: the run's config.yaml was edited after the task finished, and its result would mix two
    studies. A damaged marker names its file (the task counts as not done: a resume runs it again)."""
    try:
        return _state(run_dir, name, cfg)
    except DamagedMarker as e:
        return "damaged", str(e)


def _state(run_dir: Path, name: str, cfg: dict) -> tuple[str, str]:
    folder = task_dir(run_dir, name)
    done = read_marker(folder / "done.json")
    if done is not None:
        if done.get("config_hash") != config_hash(cfg):
            raise CardioError(f"{folder / 'done.json'} was written with another config (hash {done.get('config_hash')}"
                              f", now {config_hash(cfg)}); {run_dir / 'config.yaml'} changed after the task ran")
        return "done", f"{done.get('elapsed_s')} s on {done.get('host')}"
    for kind in ("failed", "cancelled"):
        marker = read_marker(folder / f"{kind}.json")
        if marker is not None:
            return kind, str(marker.get("error", "?"))
    running = read_marker(folder / "running.json")
    requeued = read_marker(folder / "requeued.json")
    if requeued is not None:
        return "requeued", f"{requeued.get('why', 'requeued')} (job {requeued.get('job')}); it resumes from its " \
                           "last checkpoint when SLURM starts it again"
    if running is not None:
        pid = _pid(running, folder / "running.json")
        where = f"{running.get('host')} pid {pid}" + (f" job {running['job']}" if running.get("job") else "")
        if running.get("host") == socket.gethostname() and not alive(pid):
            return "failed", f"stopped without an error (killed?) on {where}"
        return "running", f"since {running.get('started')} on {where}"
    return "missing", ""


def pending(run_dir: Path, cfg: dict) -> list[str]:
    """The tasks a rerun must still run: every task without a done marker."""
    return [n for n in task_names(cfg) if state(run_dir, n, cfg)[0] != "done"]


# ---- what a task leaves for evaluate ------------------------------------------------------------------------

# A task folder is part of the run directory, which holds no input identifier: ids are written as the
# project's keyed pseudonyms and mapped back through the run's own cohort when evaluate reads them.
ID_PREFIXES = (("patient_id", "P"), ("study_id", "S"), ("record_id", "R"))


PREDICTIONS, INNER = "predictions.npz", "inner.npz"  # a fit task's out-of-fold and inner-fold (cv.inner_folds) ones


def write_predictions(run_dir: Path, name: str, predictions: Predictions, key: bytes,
                      file: str = PREDICTIONS) -> None:
    """A fit's out-of-fold predictions, column by column in a .npz (exact floats, strings as text, no pickle;
    ids as keyed pseudonyms)."""
    table = predictions.table.copy()
    for col, prefix in ID_PREFIXES:
        if col in table.columns:
            table[col] = pseudonyms(table[col].astype(str), key, prefix)
    arrays: dict[str, np.ndarray] = {}
    columns = []
    for i, (col, values) in enumerate(table.items()):
        numeric = values.dtype.kind in "biuf"
        columns.append({"name": str(col), "dtype": str(values.dtype), "numeric": numeric})
        if numeric:
            arrays[f"c{i}"] = values.to_numpy()
        else:
            missing = values.isna().to_numpy()
            arrays[f"c{i}"] = np.array(["" if m else str(v) for v, m in zip(values, missing)], dtype=str)
            arrays[f"m{i}"] = missing
    arrays["columns"] = np.array(json.dumps(columns))
    with atomic_path(task_dir(run_dir, name) / file) as tmp:
        np.savez(tmp, **arrays)  # type: ignore[arg-type]  # numpy's stub reads a keyword as allow_pickle


def read_predictions(run_dir: Path, name: str, key: bytes, ids: pd.DataFrame | None,
                     file: str = PREDICTIONS) -> Predictions:
    """The predictions write_predictions kept, their ids mapped back through `ids` (the run's features table);
    with ids None they stay pseudonyms (cardio fuse joins runs by them)."""
    path = task_dir(run_dir, name) / file
    try:
        with np.load(path, allow_pickle=False) as z:
            columns = json.loads(str(z["columns"]))
            data = {}
            for i, c in enumerate(columns):
                if c["numeric"]:
                    data[c["name"]] = pd.Series(z[f"c{i}"], dtype=c["dtype"])
                else:
                    values = np.where(z[f"m{i}"], None, z[f"c{i}"].astype(object))
                    data[c["name"]] = pd.Series(values, dtype=None if c["dtype"] == "object" else c["dtype"])
    except (OSError, ValueError, KeyError) as e:
        raise CardioError(f"{path} cannot be read ({type(e).__name__}); delete {path.parent} to fit it again") \
            from None
    table = pd.DataFrame(data)
    return Predictions(table if ids is None else _identified(table, key, ids, path))


def _identified(table: pd.DataFrame, key: bytes, ids: pd.DataFrame, path: Path) -> pd.DataFrame:
    for col, prefix in ID_PREFIXES:
        if col not in table.columns or col not in ids.columns:
            continue
        known = pd.unique(ids[col])
        back = dict(zip(pseudonyms([str(v) for v in known], key, prefix), known))
        unknown = int((~table[col].isin(list(back))).sum())
        if unknown:
            raise CardioError(f"{path}: {unknown} {col} value(s) belong to no record of this run's cohort (another "
                              f"cohort, or another pseudonym key in the cache); delete {path.parent} to fit it again")
        table[col] = table[col].map(back)
    return table


MODEL_FACTS, FINAL, SECTIONS = "model.json", "final.json", "sections.json"  # a task's JSON files (write_json)


def write_json(run_dir: Path, name: str, file: str, doc: Any) -> None:
    """A JSON file in task `name`'s folder: what cardio_describe_model said of a fit task's model (MODEL_FACTS), the
    last fold's explanation (SECTIONS), what the final task fitted (FINAL), the stages' cache key (STUDY_KEY)."""
    write_text_atomic(task_dir(run_dir, name) / file, json.dumps(json_safe(doc), indent=1))


def read_json(run_dir: Path, name: str, file: str) -> Any:
    """What write_json wrote, None when there is none (or it cannot be read)."""
    try:
        return json.loads((task_dir(run_dir, name) / file).read_text())
    except (OSError, ValueError):
        return None


def write_sections(run_dir: Path, name: str, sections: list[Section]) -> None:
    """The explanation of the last fold, as report.json keeps sections (tables in pandas' split form)."""
    write_json(run_dir, name, SECTIONS, [
        {"title": s.title, "text": s.text, "figures": [str(f) for f in s.figures],
         "tables": {k: json.loads(v.to_json(orient="split", index=False)) for k, v in s.tables.items()},
         "estimates": s.estimates, "tests": s.tests, "part": s.part or "explanation"} for s in sections])


def read_sections(run_dir: Path, name: str) -> list[Section]:
    doc: Any = read_json(run_dir, name, SECTIONS) or []  # a list of sections
    return [Section(d["title"], d["text"], [Path(f) for f in d["figures"]],
                    {k: pd.DataFrame(t["data"], columns=t["columns"]) for k, t in d["tables"].items()},
                    d["estimates"], d["tests"], d.get("part") or "explanation") for d in doc]


def cohort_fingerprint(cohort: Cohort) -> str:
    """The loaded cohort's content, cheaply: its table's values, what it is (Cohort.synthetic and .truth: a truth.json
    put beside its folder later changes it), and the name, size and modification time of every file under its
    folder (a record edited in place changes it)."""
    digest = hashlib.sha256(json.dumps([str(c) for c in cohort.table.columns]).encode())
    digest.update(pd.util.hash_pandas_object(cohort.table.astype(str), index=True).to_numpy().tobytes())
    digest.update(json.dumps([cohort.synthetic, cohort.truth]).encode())
    root = Path(cohort.root) if cohort.root is not None else None
    if root is not None and root.is_dir():
        for path in sorted(root.rglob("*")):
            if path.is_file():
                st = path.stat()
                digest.update(f"{path.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


class NotKept(Exception):
    """A study that pickle cannot write (a plugin's object without a pickled form)."""

def write_study(path: Path, study: "Study", key: bytes) -> None:
    """The stages before the folds for the other tasks of the run, sealed with the cache's key (cardio.data.cache:
    an HMAC-SHA256 under a key kept in the user's config folder, outside the cache, which others may write).
    cloudpickle (submitit's, so there wherever a task runs in a process of its own), because a study holds the
    plugins' own objects (loaders that are closures over their arrays, the plugin's stage dataclasses, fitted
    preprocessing, prepared results such as a pretrained network) that no data format keeps without a hook per
    plugin to write and read each; the seal is what makes reading it back safe. The file never enters a run
    directory or a bundle (which hold no pickle)."""
    import pickle

    try:
        import cloudpickle as dumper
    except ImportError:  # no cluster service (submitit): plain pickle, which keeps what has no lambda in it
        dumper = pickle
    try:
        data = dumper.dumps(study, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as e:
        raise NotKept(" ".join(str(e).split())[:200]) from None
    path.write_bytes(seal(data, key))


STUDY_KEY = "study.json"  # the cache key of the run's stages before the folds, beside the prepare task that built them


class Unsealed(Exception):
    """A cache entry of stages whose seal does not verify under the cache's key: never unpickled."""

def read_study(path: Path, key: bytes) -> "Study":
    """The stages write_study kept, unpickled only once their seal verifies (what was read is what was checked)."""
    import pickle

    data = unseal(path.read_bytes(), key)
    if data is None:
        raise Unsealed(f"{path} is not sealed by this cache's key (planted, edited, or written by another cardio)")
    return pickle.loads(data)


@dataclass
class Study:
    """What every task of a run starts from: the stages before the folds, built once per process."""

    cohort: Cohort
    features: Features
    prepared: Any
    folds: list
    leak_flags: list[str]
    null_control: bool
