"""A run's folder as a record: run.json (provenance and status), config.yaml, run.log, the pseudonym key file.

`RunRecord.running` is the one place a status changes: running while a command works in the folder, then
finished (or submitted, when the tasks went to SLURM), or failed or interrupted with the first line of the error.
`cardio run` and `cardio predict` both write through it.
"""
from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cardio
from cardio import config as config_mod
from cardio.config import PluginInfo
from cardio.data import CardioError, LogFormat, Predictions, folders
from cardio.data.cache import write_text_atomic, write_text_surely
from cardio.study import bundle, tasks

if TYPE_CHECKING:
    import torch

    from cardio.study.stages import Study


def run_logger(log_file: Path | None, is_main: bool) -> logging.Logger:
    """The `cardio.run` logger (the run's log, whichever module writes to it): stderr (warnings only off the main
    process) and, on it, `log_file`."""
    log = logging.getLogger("cardio.run")
    log.handlers.clear()
    log.setLevel(logging.INFO)
    log.propagate = False
    fmt = LogFormat()
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


def close_log() -> None:
    """Release run.log (a failed in-process run must not keep it open)."""
    for name in ("cardio.run", "py.warnings"):
        logger = logging.getLogger(name)
        for handler in logger.handlers:
            if isinstance(handler, logging.FileHandler):
                handler.close()
        logger.handlers[:] = [h for h in logger.handlers if not isinstance(h, logging.FileHandler)]
    logging.captureWarnings(False)


def read_run_json(run_dir: Path) -> dict:
    """A run's run.json; a missing, damaged or foreign one is one line naming it."""
    path = run_dir / "run.json"
    if not path.exists():
        raise CardioError(f"{run_dir} is not a cardio run directory (no run.json)")
    meta = bundle.read_json(path)
    if not isinstance(meta, dict) or "plugin" not in meta:
        raise CardioError(f"{path} does not describe a cardio run (no plugin named)")
    return meta


def run_config(info: PluginInfo, run_dir: Path) -> dict:
    """A run's config.yaml over the current defaults, checked as a new run's (an edited one is one line)."""
    cfg = config_mod.load_yaml(run_dir / "config.yaml")
    try:
        return config_mod.validate(config_mod.merge(config_mod.resolve(info.default_config), cfg))
    except CardioError as e:
        raise CardioError(f"{run_dir / 'config.yaml'}: {e}") from None


def new_run_dir(name: str, out: str | None) -> folders.Claim:
    """The folder of a new run or prediction, claimed (made, locked) for this command: `out` (resolved once, to its
    real path) when it is new or empty, else runs/<name>-<timestamp>."""
    if out:
        return folders.claim_new(out, "output directory", _refuse_full)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        claimed = folders.claim(Path("runs") / (f"{name}-{stamp}" + (f"-{n}" if n else "")), "output directory")
        if claimed.new and claimed.made:  # a folder of its own, made by this command
            return claimed
        claimed.release()
    raise CardioError(f"runs/{name}-{stamp}-*: no free folder name; choose --out")


def _refuse_full(path: Path) -> None:
    """Why a new run or prediction may not write into `path`, which holds files: a run to continue (cardio run
    --resume), a prediction to make again, or anything else, which is never overwritten."""
    if (path / "run.json").exists():
        meta = read_run_json(path)
        if meta.get("status") in ("failed", "interrupted"):
            if meta.get("kind") == "predict":
                raise CardioError(f"output directory {path} holds a prediction that stopped before its end (cardio "
                                  "predict has no resume: it starts again from the bundle); remove the folder, or "
                                  "choose another --out")
            raise CardioError(f"output directory {path} holds a run that stopped before its end; continue it "
                              f"with cardio run --resume {path}, or choose another --out")
    raise CardioError(f"output directory {path} already holds files; a previous run is never overwritten")


def provenance(study: Study, device: torch.device | None = None, **fields: Any) -> dict:
    """Who made a run's file, and with what: the plugin and cardio (study.made_by), `fields`, the device when
    given, every library's version and the project's commit."""
    from cardio import engine

    where = {"device": str(device), "device_name": engine.device_name(device)} if device is not None else {}
    return {**study.made_by(), **fields, **where, "versions": versions(study), "git_commit": _git_commit()}


def versions(study: Study) -> dict:
    out = {"cardio": cardio.__version__, study.plugin: study.version, "python": sys.version.split()[0]}
    # the statistics service is a distribution of its own (services/stats): its version is not the kernel's
    for dist in ("cardio-crt-stats", "torch", "torchvision", "numpy", "scipy", "pandas", "scikit-learn", "statsmodels",
                 "pluggy"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


def _git_commit(module: Path = Path(__file__)) -> str | None:
    """The commit of the project checkout cardio runs from (src/cardio/study/record.py in it), when it is one.

    An installed wheel is no checkout: its site-packages may sit inside some other git repository (a venv in a
    project's folder), whose commit is not the code's."""
    src = module.resolve().parents[2]
    if src.name != "src":
        return None
    try:
        out = subprocess.run(["git", "rev-parse", "--show-toplevel", "HEAD"], cwd=src.parent, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = out.stdout.split()
    if out.returncode != 0 or len(lines) != 2 or Path(lines[0]).resolve() != src.parent.resolve():
        return None
    return lines[1]


def check_key_free(out_dir: Path, cfg: dict) -> None:
    """Before anything is written: a key file that report.keep_key would replace stops the command."""
    if (cfg.get("report") or {}).get("keep_key"):
        bundle.free_key_path(out_dir)


def keep_key(out_dir: Path, predictions: Predictions, cfg: dict, key: bytes) -> None:
    """report.keep_key: the pseudonym key beside the run, owner-only; named on stderr, never in the run's files."""
    if not (cfg.get("report") or {}).get("keep_key"):
        return
    path = bundle.write_key(out_dir, predictions.table, key=key)
    print(f"cardio: pseudonym key written to {path} (mode 0600; keep it apart from the run)", file=sys.stderr)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def _terminate(signum: int, frame: Any) -> None:
    tasks.stopped_by(signal.Signals(signum).name)
    raise tasks.Cancelled(f"stopped by {signal.Signals(signum).name}")


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """While a command works in a run's folder, SIGTERM (kill, a job's end) stops it as Ctrl-C does: an exception
    that records the run as interrupted (and its task as cancelled) instead of a process gone with run.json saying
    running. The engine notes the signal during a fit and passes it here after the epoch's checkpoint. A handler
    someone else set (an executor's, submitit's) is left as it is; so is any handler outside the main thread.
    SIGTERM and SIGUSR2 are unblocked meanwhile, as a shell starts a command: a blocked signal mask is inherited
    through exec, and a run started with them blocked ignored kill and SLURM's warning and lost its checkpoint."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    blocked: set[signal.Signals] = set()
    if hasattr(signal, "pthread_sigmask"):  # POSIX
        wanted = {signal.SIGTERM, signal.SIGUSR2}
        blocked = wanted & signal.pthread_sigmask(signal.SIG_UNBLOCK, wanted)
    ours = signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    if ours:
        signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        if ours:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if blocked:  # the caller's mask back (a process that embeds cardio keeps its own)
            signal.pthread_sigmask(signal.SIG_BLOCK, blocked)


@dataclass
class RunRecord:
    """A run's folder and its run.json, written by one process (`writes`: rank 0 of a run).

    `end` is the status `running` leaves when its body returns: finished (a prediction), submitted (tasks still
    queued), or None when a task wrote it (a run's evaluate task). `claim`: the folder as this command holds it
    (folders.claim: its lock, and what it held before), released when `running` ends; `discard_new`: what a new
    folder received is removed again when a CardioError stops the command before any fold (nothing to resume)."""

    path: Path
    writes: bool = True
    claim: folders.Claim | None = None
    discard_new: bool = False
    end: str | None = "finished"

    @classmethod
    def new(cls, name: str, out: str | None, cfg: dict, **kw: Any) -> RunRecord:
        """The record of a new run folder (`out`, else runs/<name>-<timestamp>), claimed by this command; a key
        file in the way stops it."""
        claimed = new_run_dir(name, out)
        try:
            check_key_free(claimed.path, cfg)
        except BaseException:
            claimed.discard()
            raise
        return cls(claimed.path, claim=claimed, **kw)

    @classmethod
    def resume(cls, run_dir: Path, **kw: Any) -> RunRecord:
        """The record of a run this command continues, claimed (locked) by it: one writer per run folder."""
        return cls(run_dir, claim=folders.claim(run_dir, "run directory", resolved=True), **kw)

    def _read(self) -> dict:
        """run.json as it stands ({} before the first write)."""
        path = self.path / "run.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def update(self, **fields: Any) -> None:
        """Merge fields into run.json (written atomically)."""
        write_text_atomic(self.path / "run.json", json.dumps({**self._read(), **fields}, indent=2, default=str))

    @contextmanager
    def running(self, config: dict | None = None, **fields: Any) -> Iterator[RunRecord]:
        """The folder while a command works in it: config.yaml when given (a new run), run.json's `fields` and
        status running; then `end`, or failed / interrupted with the first line of the error."""
        if self.writes:
            for sub in ("", "figures", "checkpoints"):
                (self.path / sub).mkdir(parents=True, exist_ok=True)
            if config is not None:
                write_text_atomic(self.path / "config.yaml", config_mod.dump(config))
            before, now = self._read(), _now()
            # a resumed run's `started` is its continuation's; `first_started` keeps the first process's, and
            # `continuations` counts the commands that continued it
            self.update(**fields, status="running", started=now, ended=None, error=None,
                        first_started=before.get("first_started") or before.get("started") or now,
                        continuations=before["continuations"] + 1 if "continuations" in before
                        else int("started" in before))
        try:
            try:
                with _terminate_as_interrupt():
                    yield self
            except BaseException as e:
                close_log()
                if self.writes:
                    self._stopped(e)
                raise
            close_log()
            if self.writes and self.end:
                self.update(status=self.end, **({"ended": _now()} if self.end == "finished" else {}))
        finally:
            self.release()

    def release(self) -> None:
        """Let go of the folder's lock (the end of the command's work in it)."""
        if self.claim is not None:
            self.claim.release()

    def finished(self, **fields: Any) -> None:
        """The run's end, written by the task that finishes it (evaluate), in whichever process runs it."""
        self.update(**fields, status="finished", ended=_now())

    def _stopped(self, e: BaseException) -> None:
        if isinstance(e, CardioError) and self.discard_new and self._discard():
            return  # stopped on its input or config before any fold: no half-made run is left behind
        status = "interrupted" if isinstance(e, (KeyboardInterrupt, tasks.Cancelled)) else "failed"
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        if isinstance(e, KeyboardInterrupt) and not str(e):
            why = "stopped by SIGINT (Ctrl-C)"
        self._record_end(status=status, ended=_now(), error=f"{type(e).__name__}: {why}")

    def _discard(self) -> bool:
        """What this command put into its new folder, removed (folders.Claim.discard: nothing else), when no fold
        was fitted: True when it was."""
        run_dir = self.path
        if self.claim is None or any((run_dir / "checkpoints").glob("*")) or (run_dir / "predictions.csv").exists() \
                or any((run_dir / tasks.TASKS).glob("*/done.json")):
            return False
        self.claim.discard()
        return True

    def _record_end(self, **fields: Any) -> None:
        """The final status, even on a full disk: over the old run.json in place where no new file can be written
        (write_text_surely); never an error that would hide the one that ended the run."""
        path = self.path / "run.json"
        try:
            meta = json.loads(path.read_text()) if path.exists() else {}
        except (OSError, ValueError):
            return
        write_text_surely(path, json.dumps({**meta, **fields}, indent=2, default=str))
