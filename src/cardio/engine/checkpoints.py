"""Checkpoints: atomic files written by one background thread in the order handed over, read back without pickles,
a user's weights file, when a fit's checkpoint is due (by epochs and seconds, or after a signal), and what the
fits of a block of work spent on them."""
from __future__ import annotations

import atexit
import queue
import signal
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from cardio.data import CardioError
from cardio.data.cache import atomic_path
from cardio.engine.device import release_freed


def save_atomic(obj: Any, path: Path) -> None:
    """Write to a temporary file, then rename: a kill never leaves a half-written checkpoint."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


class _Writer:
    """One thread that writes this process's checkpoint files, in the order they were handed over, while the fits
    go on: echo_cmr's view fits each end by writing about 7 networks (its per-output selection, ~400 MB), which
    cost 7.4% of its default run's training when the fit waited for them (20 s of 317 s). A kill at any moment
    leaves on disk a prefix of the writes in their order, as a kill between two direct writes did; after a failed
    write nothing more is written, and the error is raised in the fit's thread at the next hand-over or wait."""

    def __init__(self) -> None:
        self.jobs: queue.Queue = queue.Queue()
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.paths: dict[Path, int] = {}  # the files handed over and not yet written (or deleted)
        self.lock = threading.Lock()

    def put(self, job: Callable[[], None], path: Path | None = None) -> None:
        self.raise_error()
        with self.lock:
            if path is not None:
                self.paths[path] = self.paths.get(path, 0) + 1
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="cardio-checkpoints", daemon=True)
                self.thread.start()
        self.jobs.put((job, path))

    def _run(self) -> None:
        while True:
            job, path = self.jobs.get()
            try:
                if self.error is None:
                    job()
            except BaseException as e:  # raised again in the fit's thread
                self.error = e
            finally:
                job = None  # its snapshot of the weights goes now, not when the next job comes
                with self.lock:
                    if path is not None:
                        self.paths[path] -= 1
                        if not self.paths[path]:
                            del self.paths[path]
                if self.jobs.unfinished_tasks == 1:  # the last one handed over: what the snapshots held goes back
                    release_freed()
                self.jobs.task_done()

    def pending(self, path: Path) -> bool:
        """Whether a write or deletion of `path`, or of a file under it, is still waiting."""
        with self.lock:
            return any(p == path or path in p.parents for p in self.paths)

    def flush(self) -> None:
        if self.thread is not None:
            self.jobs.join()
        self.raise_error()

    def raise_error(self) -> None:
        if self.error is not None:
            self.jobs.join()  # what was handed over after the failed write is skipped: the disk keeps a prefix
            error, self.error = self.error, None
            raise error


_writer = _Writer()
atexit.register(_writer.flush)  # a script that fits outside a task still leaves every checkpoint on disk


def save_later(obj: Any, path: Path) -> None:
    """save_atomic(obj, path) on the checkpoint writer's thread, after whatever was handed to it before; the caller
    goes on at once. `obj` must not change afterwards: hand over copies of what training changes (`copied`)."""
    uses = list(_uses)

    def write() -> None:
        started = time.perf_counter()
        save_atomic(obj, path)
        size = path.stat().st_size
        for use in uses:
            use.bytes += size
            use.background_s += time.perf_counter() - started
    _writer.put(write, Path(path))


def later(job: Callable[[], None], path: Path | None = None) -> None:
    """`job` on the checkpoint writer's thread after the writes handed over before it (deleting files a newer
    checkpoint no longer needs); `path`: what it changes, so that a read of it waits for it."""
    _writer.put(job, None if path is None else Path(path))


def flush_checkpoints(path: Path | None = None) -> None:
    """Wait until every checkpoint file handed over (with `path`: only if one of them is `path` or under it) is on
    disk: before a checkpoint is read, before a signal ends the process, and at a task's end. The wait counts as
    checkpoint seconds of every block watching (checkpoint_use)."""
    if path is not None and not _writer.pending(Path(path)):
        _writer.raise_error()
        return
    started = time.perf_counter()
    _writer.flush()
    for use in _uses:
        use.seconds += time.perf_counter() - started


def copied(obj: Any) -> Any:
    """`obj` with every tensor in it copied to the CPU (dicts, lists and tuples followed): a snapshot of a model's
    or an optimizer's state that the writer saves while training changes the originals."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: copied(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(copied(v) for v in obj)
    return obj


def load_checkpoint(path: Path) -> dict:
    """A checkpoint's tensors and plain values (weights_only: a pickled object is refused)."""
    flush_checkpoints(path)
    try:
        with warnings.catch_warnings():  # torch's advice about foreign pickles is not for the user
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a foreign or damaged file: say which, never torch's advice to unpickle
        raise CardioError(f"{path} is not a readable cardio checkpoint") from None


def read_weights(path: str | Path, key: str) -> dict[str, torch.Tensor]:
    """A state dict of tensors from a user's weights file (.pt/.pth by torch.load without pickle, or
    .safetensors), unwrapped from {"state_dict": ...} and "module." (DataParallel) prefixes; a missing,
    damaged or foreign file is one CardioError line naming the config `key` and the file."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise CardioError(f"{key} {p}: file not found")
    state: Any  # whatever the file holds, checked below
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(p))
        else:
            with warnings.catch_warnings():  # torch's advice about foreign pickles is not for the user
                warnings.simplefilter("ignore")
                state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # damaged file, a pickle with objects, or not a weights file at all
        raise CardioError(f"{key} {p}: not a readable weights file ({' '.join(str(e).split())[:200]})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CardioError(f"{key} {p}: not a state dict of tensors")
    return {str(k).removeprefix("module."): v for k, v in state.items()}


#: Signals after which a fit checkpoints at the end of its epoch: SIGTERM (scancel, a time limit, a preemption)
#: and SIGUSR2 (SLURM's --signal warning, submitit's requeue signal).
CHECKPOINT_SIGNALS = ("SIGTERM", "SIGUSR2")
clock = time.monotonic  # the checkpoint timer's clock (a test steps it)


class CheckpointTimer:
    """When a fit's checkpoint is due: at its end, after a noted SIGTERM/SIGUSR2, else when both `every` epochs and
    `every_s` seconds have passed since the last one (train.checkpoint_every, checkpoint_every_s): a killed run
    redoes at most that much."""

    def __init__(self, every: int, every_s: float | None) -> None:
        self.every, self.every_s, self.last = max(int(every), 1), float(every_s or 0.0), clock()

    def due(self, epoch: int, done: bool, signalled: bool) -> bool:
        if done or signalled:
            return True
        return epoch % self.every == 0 and clock() - self.last >= self.every_s

    def restart(self) -> None:
        """A checkpoint is being written now."""
        self.last = clock()


@contextmanager
def signals_noted():
    """While a fit runs, SIGTERM/SIGUSR2 are noted (a list of signal numbers the fit reads after each epoch)
    instead of acting at once; `after_signals` then calls the handler that was there before, after the
    checkpoint. Only the main thread can set handlers; elsewhere signals act as before."""
    pending: list[int] = []
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for name in CHECKPOINT_SIGNALS:
            if hasattr(signal, name):
                number = getattr(signal, name)
                previous[number] = signal.signal(number, lambda signum, frame: pending.append(signum))
    try:
        yield pending, previous
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def after_signals(pending: list[int], previous: dict[int, Any]) -> None:
    """Once the checkpoint is written: each noted signal goes to the handler that was there before the fit
    (the executor's cancel, submitit's requeue); one that had the default action gets it (SIGTERM ends the
    process as it would have); an ignored one is dropped."""
    while pending:
        number = pending.pop(0)
        handler = previous.get(number, signal.SIG_DFL)
        if callable(handler):
            handler(number, None)
        elif handler == signal.SIG_DFL:
            signal.signal(number, signal.SIG_DFL)
            signal.raise_signal(number)


@dataclass
class CheckpointUse:
    """What the fits of a block of work (a run's task) spent on checkpoints: `seconds` that training waited for
    `written` of them (copying their state, handing it to the writer's thread, waiting for it at the block's end),
    `background_s` that thread spent writing `bytes` in all (every file, a plugin's beside the engine's), within
    `fit_s` seconds of training; and every checkpoint file they wrote or resumed from, by
    name in the checkpoint folder, with its size on disk (what a finished task may delete: train.keep_checkpoints)."""

    fit_s: float = 0.0
    seconds: float = 0.0
    written: int = 0
    bytes: int = 0
    background_s: float = 0.0  # the writer thread's seconds, beside training (save_later)
    files: dict[str, int] = field(default_factory=dict)

    def note(self, path: Path) -> None:
        """`path` as it is on disk now: its size, or gone (a finished fit deletes its best-weights file)."""
        try:
            self.files[path.name] = path.stat().st_size
        except FileNotFoundError:
            self.files.pop(path.name, None)


_uses: list[CheckpointUse] = []  # the blocks watching this process's fits (checkpoint_use), innermost last


def watching() -> list[CheckpointUse]:
    """The blocks watching this process's fits now (checkpoint_use), innermost last: what a fit adds its time to."""
    return list(_uses)


@contextmanager
def checkpoint_use() -> Iterator[CheckpointUse]:
    """Watch the checkpoints of every fit in this process while the block runs (the core wraps each task in one)."""
    use = CheckpointUse()
    _uses.append(use)
    try:
        yield use
    except BaseException:
        try:
            flush_checkpoints()
        except Exception:  # the block's own error is the one to report
            pass
        raise
    else:
        flush_checkpoints()  # a task is done only with its checkpoints on disk
    finally:
        _uses.remove(use)


