"""The run context every hook gets as `ctx`: device, seed, directories, log, progress, rank, services."""
from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from tqdm.auto import tqdm

from cardio import allotted_cpus, pip_install, services
from cardio.data import CardioError
from cardio.data.cache import Cache
from cardio.data.pseudonyms import pseudonym_key, pseudonyms

if TYPE_CHECKING:  # torch is imported by the commands that train, not by `import cardio`
    import torch


def _len(iterable: Iterable) -> int | None:
    try:
        return len(iterable)  # type: ignore[arg-type]
    except TypeError:
        return None


def _logged(iterable: Iterable, desc: str, total: int | None, log: logging.Logger, initial: int = 0):
    """Yield from iterable, logging progress at each tenth (and at most every 30 s otherwise)."""
    started, last, step = time.perf_counter(), time.perf_counter(), max(-(-(total or 0) // 10), 1)
    done = initial
    for item in iterable:
        yield item
        done += 1
        now = time.perf_counter()
        if (total and done % step == 0) or now - last > 30:
            of = f"/{total}" if total else ""
            log.info("%s: %d%s done, %.0f s", desc or "progress", done, of, now - started)
            last = now


T = TypeVar("T")
R = TypeVar("R")


def map_processes(fn: Callable[[T], R], items: Sequence[T], progress: Callable[..., Iterable], desc: str = "",
                  workers: int | None = None) -> list[R]:
    """fn of every item, in order, computed in up to `workers` forked processes (by default the CPUs this process
    may use, shared among torchrun's ranks on the node); with one worker, one item or no fork, here in turn.

    Forked: a worker starts as a copy of this process, its imports done, so a second or less of work an item pays
    off. fn, the items and the results pickle, and fn uses no torch (a fork of a process whose OpenMP threads ran
    may hang in them). An error in a worker is raised here, the first in item order, as the loop would raise it."""
    import multiprocessing

    local = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))
    n = min(len(items), allotted_cpus() // local if workers is None else int(workers))
    if n < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return [fn(item) for item in progress(items, desc=desc, total=len(items))]
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("fork"))
    try:
        return list(progress(pool.map(fn, items), desc=desc, total=len(items)))
    except BrokenProcessPool:  # killed from outside (the OOM killer, kill -9): no error of its own to raise
        raise CardioError(f"{desc or 'a stage'}: a worker process died without an error (killed: out of memory?); "
                          f"a run given fewer CPUs (taskset, SLURM's --cpus-per-task) starts fewer at once ({n} "
                          "now)") from None
    finally:
        pool.shutdown(cancel_futures=True)


@dataclass(frozen=True)
class RunContext:
    """Where a hook writes and which services it uses; the config itself comes as the hook's argument.

    Frozen: the core gives each fit its own context (`for_fit`), whose `fold` tags the fit's checkpoints, so
    no hook sees a context that another fold changed.
    """

    device: "torch.device"
    seed: int
    out_dir: Path
    cache_dir: Path
    log: logging.Logger
    rank: int = 0
    world_size: int = 1
    fold: str | None = None

    def for_fit(self, fold: str | None) -> "RunContext":
        """This context for one fit: `fold` (a fold's name, an inner fold's, or "final") prefixes its tags."""
        return replace(self, fold=fold)

    @property
    def pseudonym_key(self) -> bytes:
        """The project's pseudonym key (in the cache folder, never in a run directory)."""
        return pseudonym_key(self.cache_dir)

    def pseudonyms(self, ids, prefix: str = "R") -> list[str]:
        """The pseudonyms predictions.csv gives these ids (R for records, P for patients): what a plugin writes
        wherever an output names a record or a patient (figure titles, attention tables, arrays)."""
        return pseudonyms(ids, self.pseudonym_key, prefix)

    @property
    def figures_dir(self) -> Path:
        return self.out_dir / "figures"

    @property
    def checkpoint_dir(self) -> Path:
        return self.out_dir / "checkpoints"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def stats(self):
        import cardio_stats as stats  # imported lazily: it pulls in statsmodels

        return stats

    @property
    def engine(self):
        from cardio import engine  # imported lazily: it pulls in torch

        return engine

    @property
    def cache(self) -> Cache:
        """The disk cache shared by runs (`cache_dir`): keyed, versioned, atomic, safe across processes."""
        return Cache(self.cache_dir)

    def progress(self, iterable: Iterable, desc: str = "", total: int | None = None, *, log: bool = True,
                 **kw: Any) -> Iterable:
        """A tqdm bar on rank 0 in a terminal; without one (a batch job), a log line every tenth of the way.

        log=False leaves the log alone (for a loop that logs each step itself, like the engine's epochs).
        """
        if self.is_main and not sys.stderr.isatty():
            if not log:
                return iterable
            return _logged(iterable, desc, total if total is not None else _len(iterable), self.log,
                           kw.get("initial", 0))
        return tqdm(iterable, desc=desc, total=total, disable=None if self.is_main else True,
                    leave=False, dynamic_ncols=True, **kw)

    def map(self, fn: Callable[[T], R], items: Sequence[T], desc: str = "", workers: int | None = None) -> list[R]:
        """fn of every item, in order, over the CPUs of the run (map_processes), with this context's progress:
        record-wise work of a stage, e.g. reading and analysing each record in featurize."""
        return map_processes(fn, items, self.progress, desc, workers)

    def figure_path(self, name: str) -> Path:
        """figures/<name>.png (the folder is made)."""
        self.figures_dir.mkdir(parents=True, exist_ok=True)
        return self.figures_dir / f"{name}.png"

    def save_figure(self, fig: Any, name: str, dpi: int | None = None, caption: str | None = None) -> Path:
        """Save a matplotlib Figure as figures/<name>.png, release it, and return the path for a Section; the
        caption (a sentence or two) is what the report prints under it. The report service saves it
        (cardio_report.figures.save_figure, through cardio.services.cardio_save_figure)."""
        path = services.installed().pm.hook.cardio_save_figure(figure=fig, path=self.figure_path(name), dpi=dpi,
                                                               caption=caption)
        if path is None:
            raise CardioError(f"figure {name!r} cannot be saved: figures come with the report service, "
                              f"cardio-crt-report ({pip_install('-e services/report')})")
        return path


def default_cache_dir(config: dict) -> Path:
    """The cache folder: the config's cache_dir, else $CARDIO_CACHE, else ~/.cache/cardio."""
    if config.get("cache_dir"):
        return Path(config["cache_dir"]).expanduser()
    return Path(os.environ.get("CARDIO_CACHE", Path.home() / ".cache" / "cardio"))


def run_device(name: str, distributed: bool = False) -> "tuple[torch.device, int, int]":
    """The one resolution of a device name (auto, cpu, cuda, cuda:1): (device, rank, world size). `distributed`
    joins torchrun's process group when there is one, each rank on its local GPU."""
    import torch

    from cardio import engine

    device = engine.resolve_device(name)
    if not distributed:
        return device, 0, 1
    rank, world = engine.init_distributed(device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
        torch.cuda.set_device(device)
    return device, rank, world


def new_context(config: dict, out_dir: Path, log: logging.Logger, *, device: "str | torch.device | None" = None,
                rank: int = 0, world_size: int = 1, kind: type[RunContext] = RunContext,
                **fields: Any) -> RunContext:
    """The one place a RunContext is made: seed and cache folder (made if missing) from the config; the device
    `device` (a name is resolved by run_device), else the config's."""
    if device is None or isinstance(device, str):
        device = run_device(device or config["device"])[0]
    ctx = kind(device=device, seed=int(config["seed"]), out_dir=Path(out_dir), cache_dir=default_cache_dir(config),
               log=log, rank=rank, world_size=world_size, **fields)
    ctx.cache_dir.mkdir(parents=True, exist_ok=True)
    return ctx
