"""The one training loop of cardio: device, AMP, DDP via torchrun, early stopping, atomic checkpoints."""
from __future__ import annotations

import atexit
import functools
import inspect
import math
import os
import queue
import random
import signal
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from cardio import allotted_cpus  # the CPUs this process may use (set where cardio is imported)
from cardio.config import core_defaults
from cardio.data import CardioError
from cardio.data.cache import atomic_path
from cardio.data.spreadsheet import write_csv

SETTINGS = ("epochs", "batch_size", "lr", "weight_decay", "optimizer", "optimizer_args", "scheduler",
            "scheduler_args", "grad_clip", "patience", "amp", "channels_last", "num_workers", "checkpoint_every",
            "checkpoint_every_s", "cpu_threads", "tensorboard", "cohort_on_device", "deterministic", "compile")
# Short names of torch.optim.lr_scheduler classes; any other class name of that module works too.
SCHEDULERS = {"cosine": "CosineAnnealingLR", "step": "StepLR", "plateau": "ReduceLROnPlateau",
              "onecycle": "OneCycleLR", "one-cycle": "OneCycleLR", "exponential": "ExponentialLR"}


class ArrayDataset(Dataset):
    """(x, y) pairs from aligned arrays; y may be None for prediction.

    `x` is one array, or a tuple of aligned arrays for a model with several inputs: the engine
    then calls `model(*inputs)` (e.g. an image and a vector of side features).
    `transform` acts on one item (x as float32) in a DataLoader; `batch_transform` on a whole batch (N, ...) on
    the device, in the engine's step (augmentation as batched tensor operations; the same code on CPU and GPU).
    Without a per-item transform the engine moves the arrays to the device once (train.cohort_on_device) and
    index-selects each batch there (`take`).
    """

    def __init__(self, x: np.ndarray | tuple[np.ndarray, ...], y: np.ndarray | None = None,
                 transform: Callable | None = None, batch_transform: Callable | None = None):
        self.x = x
        self.y = y
        self.transform = transform
        self.batch_transform = batch_transform
        self._device_copy: tuple[torch.device, tuple[torch.Tensor, ...], torch.Tensor | None] | None = None
        sizes = {len(a) for a in x} if isinstance(x, tuple) else {len(x)}
        if len(sizes) != 1:
            raise CardioError(f"ArrayDataset: the input arrays have different lengths {sorted(sizes)}")
        if y is not None and len(y) != len(self):
            raise CardioError(f"ArrayDataset: {len(self)} inputs but {len(y)} targets")

    def __len__(self) -> int:
        return len(self.x[0]) if isinstance(self.x, tuple) else len(self.x)

    def __getitem__(self, i: int):
        x: torch.Tensor | tuple[torch.Tensor, ...]
        if isinstance(self.x, tuple):
            x = tuple(torch.as_tensor(np.asarray(a[i], dtype=np.float32)) for a in self.x)
        else:
            x = torch.as_tensor(np.asarray(self.x[i], dtype=np.float32))
        if self.transform is not None:
            x = self.transform(x)
        if self.y is None:
            return x, torch.zeros(())
        y = np.asarray(self.y[i])
        return x, torch.as_tensor(y, dtype=torch.long if y.dtype.kind in "iub" and y.ndim == 0 else torch.float32)

    def nbytes(self) -> int:
        return sum(np.asarray(a).nbytes for a in (self.x if isinstance(self.x, tuple) else (self.x,)))

    def take(self, index: torch.Tensor):
        """The batch of rows `index` (a CPU tensor; the rows are selected on the device `on_device` moved the
        cohort to) as __getitem__ and the DataLoader's collation give it: inputs float32, targets long for class
        labels, else float32."""
        assert self._device_copy is not None, "ArrayDataset.take before on_device"
        device, xs, y = self._device_copy
        index = index.to(device, non_blocking=True)
        x = tuple(a.index_select(0, index).float() for a in xs)
        target = (torch.zeros(len(index), device=index.device) if y is None else
                  y.index_select(0, index))
        return (x if isinstance(self.x, tuple) else x[0]), target

    def on_device(self, device: torch.device) -> None:
        """Move the arrays to `device` once, in their own dtype (uint8 stays uint8); on the CPU no copy."""
        if self._device_copy is not None and self._device_copy[0] == device:
            return
        arrays = self.x if isinstance(self.x, tuple) else (self.x,)
        xs = tuple(torch.as_tensor(np.asarray(a)).to(device) for a in arrays)
        y = None
        if self.y is not None:
            ya = np.asarray(self.y)
            y = torch.as_tensor(ya).to(device, torch.long if ya.dtype.kind in "iub" and ya.ndim == 1 else torch.float32)
        self._device_copy = (device, xs, y)


class _DeviceBatches:
    """A loader of index batches served from a cohort on the device (ArrayDataset.take): no per-item Python,
    no host-to-device copy per batch."""

    def __init__(self, dataset, batches, device: torch.device) -> None:
        self.dataset, self.batches, self.device = dataset, batches, device
        dataset.on_device(device)

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        # A DataLoader draws a base seed from torch's CPU generator per pass; drawing it too keeps that generator's
        # stream (dropout, augmentation) where the DataLoader left it: the same fit either way.
        torch.empty((), dtype=torch.int64).random_()
        for batch in self.batches:
            yield self.dataset.take(torch.as_tensor(batch, dtype=torch.long))  # a host index: `take` moves it


class _Chunks:
    """Consecutive index batches of size `size` over n rows (evaluation and prediction order)."""

    def __init__(self, n: int, size: int) -> None:
        self.n, self.size = n, size

    def __len__(self) -> int:
        return math.ceil(self.n / self.size)

    def __iter__(self):
        return (list(range(i, min(i + self.size, self.n))) for i in range(0, self.n, self.size))


def _on_device(dataset: Dataset, s: dict, device: torch.device) -> bool:
    """Whether to serve `dataset` from the device (train.cohort_on_device): an ArrayDataset of numeric arrays without
    a per-item transform, or any dataset with the same `on_device(device)`, `take(index)` and `nbytes()` (e.g. a
    plugin's clips, cropped on the device), whose data take at most half the device's free memory."""
    if not s.get("cohort_on_device", True):
        return False
    if isinstance(dataset, ArrayDataset):
        arrays = dataset.x if isinstance(dataset.x, tuple) else (dataset.x,)
        if dataset.transform is not None or not all(isinstance(a, np.ndarray) and a.dtype.kind in "biuf"
                                                    for a in arrays):
            return False
        if dataset.y is not None and np.asarray(dataset.y).dtype.kind not in "biuf":
            return False
    elif not all(callable(getattr(dataset, m, None)) for m in ("on_device", "take", "nbytes")):
        return False
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return dataset.nbytes() <= free // 2  # type: ignore[attr-defined]
    return True


def make_loader(dataset: Dataset, s: dict, device: torch.device, batch_sampler=None):
    """Batches of `dataset` for the engine: from the device where the cohort fits (_on_device), else a DataLoader
    (train.num_workers, pinned memory on CUDA). `batch_sampler` orders training batches; None: in order."""
    if _on_device(dataset, s, device):
        return _DeviceBatches(dataset, batch_sampler or _Chunks(_size(dataset), int(s["batch_size"])), device)
    pin = device.type == "cuda"
    if batch_sampler is not None:
        return DataLoader(dataset, batch_sampler=batch_sampler, num_workers=s["num_workers"], pin_memory=pin)
    return DataLoader(dataset, batch_size=int(s["batch_size"]), num_workers=s["num_workers"], pin_memory=pin)


def _inputs(dataset: Dataset, x, device: torch.device, channels_last: bool):
    """A batch's inputs on the device, through the dataset's batched transform (ArrayDataset.batch_transform:
    augmentation and normalisation as tensor operations there), in the model's memory format."""
    fn = getattr(dataset, "batch_transform", None)
    if fn is None:
        return _to(x, device, channels_last)
    return _to(fn(_to(x, device, False)), device, channels_last)


@dataclass
class FitResult:
    model: nn.Module
    history: list[dict] = field(default_factory=list)
    best_epoch: int = -1
    best_score: float = float("nan")
    resumed: bool = False


@contextmanager
def cpu_threads(n: int | None, device: torch.device):
    """Run a block with n torch CPU threads (small models on a busy CPU run faster on one), then restore."""
    if not n or device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def default_threads() -> int:
    """Torch's CPU threads for a run: the allotted CPUs, unless the user set OMP_NUM_THREADS (train.cpu_threads
    still overrides both around each fit)."""
    import os

    n = int(os.environ["OMP_NUM_THREADS"]) if os.environ.get("OMP_NUM_THREADS", "").isdigit() else allotted_cpus()
    torch.set_num_threads(max(1, n))
    return torch.get_num_threads()


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise CardioError(f"--device {name} asked for, but torch sees no CUDA device")
    return torch.device(name)


def device_name(device: torch.device) -> str:
    """What the run ran on, for run.json and figures: the GPU's name, or the CPU's."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return f"CPU {platform.processor() or platform.machine()} ({os.cpu_count()} logical cores)"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    # Deterministic kernels make CPU runs bit-identical and resume exact.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False


Net = TypeVar("Net", bound=nn.Module)


def build(make: Callable[[], Net], ctx, seed: int | None = None) -> Net:
    """A network built by `make` right after seed_everything (the run's seed, or `seed`), as the core seeds each fit
    before cardio_train: each network a plugin builds in one fit (a variant, a view, an input map, a second step)
    starts as it would as the fit's first, whichever were built and trained before it in the process."""
    seed_everything(ctx.seed if seed is None else int(seed))
    return make()


def set_determinism(flag: bool | None, device: torch.device) -> bool:
    """train.deterministic: true = deterministic kernels (bit-identical reruns and resumes), false = the fastest
    kernels (cudnn.benchmark picks convolution algorithms by timing them, so CUDA results vary in their last digits
    between runs); null = true on the CPU (it costs nothing measurable there) and false on CUDA (speed first; set it
    true for bit-identical GPU runs). Whether it is on."""
    on = device.type != "cuda" if flag is None else bool(flag)
    torch.use_deterministic_algorithms(on, warn_only=True)
    torch.backends.cudnn.deterministic = on
    torch.backends.cudnn.benchmark = not on and device.type == "cuda"
    return on


def init_distributed(device: torch.device) -> tuple[int, int]:
    """Join the process group torchrun describes (NCCL on GPU, gloo on CPU); (rank, world)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()


class ShardedBatchSampler(Sampler):
    """Each global batch is drawn as in one process, then split across ranks.

    Written by hand because DistributedSampler shards the epoch, not each batch, so DDP would see
    other batches than a single process; here the averaged DDP gradient equals the one-process one.
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1,
                 shuffle: bool = True, weights: np.ndarray | None = None):
        if batch_size % world:
            raise CardioError(f"train.batch_size={batch_size} must be divisible by the {world} processes")
        self.n, self.batch_size, self.seed, self.rank, self.world = n, batch_size, seed, rank, world
        self.shuffle, self.weights, self.epoch = shuffle, weights, 0

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        if self.weights is not None:
            order = torch.multinomial(torch.as_tensor(self.weights, dtype=torch.double), self.n, True, generator=g)
        elif self.shuffle:
            order = torch.randperm(self.n, generator=g)
        else:
            order = torch.arange(self.n)
        for start in range(0, self.n, self.batch_size):
            batch = order[start:start + self.batch_size]
            # Drop a final batch too small to give every rank two samples (BatchNorm needs two).
            if len(batch) < 2 * self.world and start > 0:
                return
            yield batch[self.rank::self.world].tolist()


def _settings(train: Mapping, overrides: Mapping | None) -> dict:
    merged = {**train, **{k: v for k, v in (overrides or {}).items() if k in SETTINGS}}
    missing = [k for k in SETTINGS if k not in merged]
    if missing:
        raise CardioError(f"engine.fit: train= lacks {missing}; pass the config's train section")
    return {k: merged[k] for k in SETTINGS}


MISSING_CLASS = -100  # a class target that is missing (cross-entropy's ignore_index)


def masked_loss(out: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """The default loss with missing targets left out: NaN in a float target, MISSING_CLASS in a class one.

    Binary targets (float 0/1) get BCE on logits, classes (long) cross-entropy; the mean runs over the
    targets present, so a masked entry changes neither the loss nor any gradient. A batch with no
    target present gives a zero loss that still depends on the outputs (backward stays defined).
    `mask` (True = present) may be given explicitly; it defaults to the NaN/MISSING_CLASS entries.
    No host sync: both forms are computed and torch.where picks one on the device (a branch not picked gets
    zero gradients, so the values and gradients are those of the picked form alone).
    """
    if mask is not None:
        y = torch.where(mask, y, torch.full_like(y, MISSING_CLASS if y.dtype == torch.long else float("nan")))
    if y.dtype == torch.long:
        any_present = (y != MISSING_CLASS).any()
        return torch.where(any_present, nn.functional.cross_entropy(out, y, ignore_index=MISSING_CLASS),
                           out.sum() * 0.0)
    out = out.reshape(y.shape)
    present = ~torch.isnan(y)
    y0 = torch.where(present, y, torch.zeros_like(y))  # no NaN reaches a branch's gradient
    losses = nn.functional.binary_cross_entropy_with_logits(out, y0, reduction="none")
    return torch.where(present.all(), nn.functional.binary_cross_entropy_with_logits(out, y0),
                       (losses * present).sum() / present.sum().clamp(min=1))


def masked_mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the targets present (NaN = missing), for regression outputs."""
    out = out.reshape(y.shape)
    present = ~torch.isnan(y)
    diff = torch.where(present, out - torch.nan_to_num(y), torch.zeros_like(out))
    return (diff ** 2).sum() / present.sum().clamp(min=1)


_default_loss = masked_loss


def _rng_state() -> dict:
    np_state: Any = np.random.get_state()
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(float, np_state[2:])]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(tuple(x if not isinstance(x, list) else tuple(x) for x in state["python"]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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
                with self.lock:
                    if path is not None:
                        self.paths[path] -= 1
                        if not self.paths[path]:
                            del self.paths[path]
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


def _optimizer(s: dict) -> tuple[type, dict]:
    """The torch.optim class named by s["optimizer"] (adamw, adam, sgd, ... any class of torch.optim), its args."""
    name = str(s["optimizer"])
    members = {n: getattr(torch.optim, n) for n in dir(torch.optim)}
    classes: dict[str, Any] = {n.lower(): c for n, c in members.items()
                               if isinstance(c, type) and issubclass(c, torch.optim.Optimizer)}
    cls = classes.get(name.lower())
    if cls is None:
        raise CardioError(f"train.optimizer {name!r} is not a torch.optim optimizer; e.g. adamw, adam, sgd")
    args = {"lr": s["lr"], "weight_decay": s["weight_decay"], **(s.get("optimizer_args") or {})}
    if cls is torch.optim.SGD:
        args.setdefault("momentum", 0.9)
    return cls, args


def make_optimizer(params, s: dict) -> torch.optim.Optimizer:
    """A torch.optim class by name (adamw, adam, sgd, ... any class of torch.optim), args from the config.

    Fused where the class has a fused step and every parameter is a real floating tensor on the CPU or a CUDA
    device, unless optimizer_args set `fused`, `foreach` or `differentiable`: one kernel for the whole step
    instead of a few per tensor (a ResNet-18's Adam step on one CPU thread: 5 ms against 50 ms,
    benchmarks/optimizer_step.py). A fit resumed from a checkpoint keeps the step it was saved with.
    """
    cls, args = _optimizer(s)
    params = [{**g, "params": list(g["params"])} if isinstance(g, dict) else g for g in params]
    if _fusable(cls, params, args):
        args = {**args, "fused": True}
    try:
        return cls(params, **args)
    except (TypeError, ValueError) as e:
        raise CardioError(f"train.optimizer_args {s.get('optimizer_args') or {}} do not fit {cls.__name__}: "
                          f"{e}") from None


def _fusable(cls: type, params: list, args: dict) -> bool:
    """Whether torch's fused step serves this optimizer (see make_optimizer)."""
    if {"fused", "foreach", "differentiable"} & args.keys() or "fused" not in inspect.signature(cls).parameters:
        return False
    tensors = [p for g in params for p in (g["params"] if isinstance(g, dict) else [g])]
    return all(t.is_floating_point() and t.device.type in ("cpu", "cuda") for t in tensors)


def check_settings(config: dict) -> None:
    """Check every optimizer and scheduler named in the config, and that its args are ones the class takes, before
    any stage runs. By the classes' signatures: building an optimizer imports torch._dynamo (1.8 s), which a run's
    own process under the local or slurm executor never needs; a value the class refuses is one line at the fit."""
    for section in (v for v in config.values() if isinstance(v, dict)):  # train: and plugin sections alike
        if isinstance(section.get("optimizer"), str):
            cls, args = _optimizer({"optimizer_args": {}, **section, "lr": 1e-3, "weight_decay": 0.0})
            _binds(cls, args, f"train.optimizer_args {section.get('optimizer_args') or {}}", "params")
        if isinstance(section.get("scheduler"), str):
            found = _scheduler({"scheduler_args": {}, **section, "lr": 1e-3, "epochs": 1}, 1)
            if found is not None:
                _binds(found[0], found[1], f"train.scheduler_args {found[1]}", "optimizer")


def _binds(cls: type, args: dict, what: str, first: str) -> None:
    try:
        inspect.signature(cls).bind(first, **args)
    except TypeError as e:
        raise CardioError(f"{what} do not fit {cls.__name__}: {e}") from None


def make_scheduler(opt: torch.optim.Optimizer, s: dict, steps_per_epoch: int):
    """A torch.optim.lr_scheduler class by name (cosine, step, plateau, onecycle, or a class name); None for none.

    OneCycleLR steps every batch, ReduceLROnPlateau on the validation score, the others every epoch.
    """
    found = _scheduler(s, steps_per_epoch)
    if found is None:
        return None
    cls, args = found
    try:
        return cls(opt, **args)
    except (TypeError, ValueError) as e:
        raise CardioError(f"train.scheduler_args {args} do not fit {cls.__name__}: {e}") from None


def _scheduler(s: dict, steps_per_epoch: int) -> tuple[type, dict] | None:
    """The torch.optim.lr_scheduler class named by s["scheduler"] and its args (None for none)."""
    name = str(s["scheduler"] or "none")
    if name.lower() == "none":
        return None
    cls_name = SCHEDULERS.get(name.lower(), name)
    cls = getattr(torch.optim.lr_scheduler, cls_name, None)
    if not isinstance(cls, type):
        raise CardioError(f"train.scheduler {name!r} is not known; use none, {', '.join(SCHEDULERS)} "
                          "or a class name of torch.optim.lr_scheduler")
    epochs = max(int(s["epochs"]), 1)
    defaults: dict[str, dict] = {
        "CosineAnnealingLR": {"T_max": epochs}, "StepLR": {"step_size": max(epochs // 3, 1)},
        "ReduceLROnPlateau": {"mode": "max"},
        "OneCycleLR": {"max_lr": s["lr"], "total_steps": epochs * max(steps_per_epoch, 1)}}
    return cls, {**defaults.get(cls_name, {}), **dict(s.get("scheduler_args") or {})}


def _size(dataset: Dataset) -> int:
    """A map-style dataset's length (torch's Dataset type does not declare __len__)."""
    return len(dataset)  # type: ignore[arg-type]


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _memory_format(ndim: int):
    """Channels-last for images (N, C, H, W), channels-last-3d for video (N, C, T, H, W)."""
    return {4: torch.channels_last, 5: torch.channels_last_3d}.get(ndim)


def _to(x, device, channels_last):
    if isinstance(x, (tuple, list)):
        return tuple(_to(a, device, channels_last) for a in x)
    x = x.to(device, non_blocking=True)
    fmt = _memory_format(x.ndim) if channels_last else None
    if fmt is not None:
        x = x.contiguous(memory_format=fmt)
    return x


def _channels_last(model: nn.Module, dataset: Dataset, s: dict, device: torch.device) -> bool:
    """Put the model in the memory format of its input (only on CUDA, where it pays); whether inputs follow."""
    if not s["channels_last"] or device.type != "cuda" or not _size(dataset):
        return False
    x = dataset[0][0]
    fmt = _memory_format((x[0] if isinstance(x, tuple) else x).ndim + 1)
    if fmt is None:
        return False
    model.to(memory_format=fmt)
    return True


def _call(model: nn.Module, x):
    """model(x), or model(*x) for a multi-input batch."""
    return model(*x) if isinstance(x, tuple) else model(x)


def _autocast(device: torch.device, amp: bool):
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp and device.type == "cuda")


def _outputs(model: nn.Module, loader, device, s: dict, loss_fn=None):
    """Outputs (and mean loss) over a loader, in float32 on the CPU: kept on the device and copied back once
    (no host sync per batch)."""
    model.eval()
    outs, ys, total, n = [], [], _accumulator(device), 0
    with torch.no_grad():
        for x, y in loader:
            x, y = _inputs(loader.dataset, x, device, s["channels_last"]), y.to(device, non_blocking=True)
            with _autocast(device, s["amp"]):
                out = _call(model, x)
            out = out.float()
            if loss_fn is not None:
                total += loss_fn(out, y).detach().to(total.dtype) * len(y)
                n += len(y)
            outs.append(out)
            ys.append(y)
    mean_loss = float(total) / n if n else float("nan")
    return torch.cat(outs).cpu().numpy(), torch.cat(ys).cpu().numpy(), mean_loss


def _accumulator(device: torch.device) -> torch.Tensor:
    """A zero on the device that sums losses without a host sync (float64 where the device has it)."""
    return torch.zeros((), dtype=torch.float32 if device.type == "mps" else torch.float64, device=device)


def fit(model: nn.Module, train_set: Dataset, val_set: Dataset | None, ctx, *, name: str, train: Mapping,
        settings: Mapping | None = None, loss_fn: Callable | None = None,
        metric: Callable[[np.ndarray, np.ndarray], float] | None = None,
        sample_weights: np.ndarray | None = None, tag: str | None = None, seed: int | None = None,
        on_checkpoint: Callable[[int], None] | None = None) -> FitResult:
    """Train `model`; checkpoints go to checkpoints/<tag>.pt and a rerun resumes from them.

    `train` is the config's train section (the engine's settings); `settings` overrides its keys (other keys
    in it are ignored, so a plugin may pass a whole config section such as its finetune section). `tag` names
    the fit's checkpoints, history and log lines (default `<fold>-<name>`, the fold of the context the core
    gave this fit); `seed` orders its batches (default the run's seed).
    A plugin that fits several networks in one fold gives each its own tag. `on_checkpoint(epoch)` is called just
    before each checkpoint is written (checkpoints come by time, train.checkpoint_every_s): a metric that keeps state
    of its own writes it then, so that it resumes with the checkpoint (echo_cmr's per-output selection).
    """
    s = _settings(train, settings)
    tag = tag or (f"{ctx.fold}-{name}" if ctx.fold else name)
    with cpu_threads(s["cpu_threads"], ctx.device):
        run = _Fit(model, train_set, ctx, s, tag, loss_fn or _default_loss, metric, on_checkpoint)
        return run.train(val_set, sample_weights, ctx.seed if seed is None else int(seed))


#: Signals after which a fit checkpoints at the end of its epoch: SIGTERM (scancel, a time limit, a preemption)
#: and SIGUSR2 (SLURM's --signal warning, submitit's requeue signal).
CHECKPOINT_SIGNALS = ("SIGTERM", "SIGUSR2")
_clock = time.monotonic  # the checkpoint timer's clock (a test steps it)


@contextmanager
def _checkpoint_signals():
    """While a fit runs, SIGTERM/SIGUSR2 are noted (a list of signal numbers the fit reads after each epoch)
    instead of acting at once; `_after_signals` then calls the handler that was there before, after the
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


def _after_signals(pending: list[int], previous: dict[int, Any]) -> None:
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


@dataclass
class _FitState:
    """What a checkpoint records of a fit's progress (saved as a dict: checkpoints hold no classes)."""

    epoch: int = 0
    best_score: float = -math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    history: list[dict] = field(default_factory=list)
    done: bool = False


class _Fit:
    """One fit: its optimizer and schedule, progress, best weights and checkpoints."""

    def __init__(self, model: nn.Module, train_set: Dataset, ctx, s: dict, tag: str, loss_fn: Callable,
                 metric: Callable | None, on_checkpoint: Callable[[int], None] | None = None) -> None:
        self.ctx, self.tag, self.loss_fn, self.metric, self.train_set = ctx, tag, loss_fn, metric, train_set
        self.on_checkpoint = on_checkpoint
        self.device = ctx.device
        self.model = model.to(self.device)
        self.s = {**s, "channels_last": _channels_last(self.model, train_set, s, self.device)}
        set_determinism(self.s["deterministic"], self.device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = make_optimizer(self.params, self.s)
        self.epochs = int(self.s["epochs"])
        self.sched = make_scheduler(self.opt, self.s, math.ceil(_size(train_set) / int(self.s["batch_size"])))
        self.per_batch = isinstance(self.sched, torch.optim.lr_scheduler.OneCycleLR)
        self.on_plateau = isinstance(self.sched, torch.optim.lr_scheduler.ReduceLROnPlateau)
        self.ckpt_path = Path(ctx.checkpoint_dir) / f"{tag}.pt"
        self.best_path = Path(ctx.checkpoint_dir) / f"{tag}.best.pt"
        self.state = _FitState()
        self.best_state: dict | None = None  # best weights live on the device; written with each checkpoint
        self.best_dirty = False
        self.last_checkpoint = _clock()
        self.pending: list[int] = []  # signals noted since the last checkpoint (_checkpoint_signals)
        self.resumed = self._resume()

    def _resume(self) -> bool:
        flush_checkpoints(self.ckpt_path)
        if not self.ckpt_path.exists():
            return False
        ck = load_checkpoint(self.ckpt_path)
        for use in _uses:  # a resumed fit's files are its task's as well
            use.note(self.ckpt_path)
            use.note(self.best_path)
        self.model.load_state_dict(ck["model"])
        self.state = _FitState(**ck["state"])
        _set_rng_state(ck["rng"])
        if self.state.done:  # a finished fit keeps only the weights it returned
            self.best_state = ck["model"]
        else:
            self.opt.load_state_dict(ck["optimizer"])
            if self.sched is not None and ck.get("scheduler"):
                self.sched.load_state_dict(ck["scheduler"])
            if self.best_path.exists():
                self.best_state = load_checkpoint(self.best_path)["model"]
        self.ctx.log.info("%s: resuming after epoch %d", self.tag, self.state.epoch)
        return True

    def train(self, val_set: Dataset | None, sample_weights: np.ndarray | None, seed: int) -> FitResult:
        ctx, s, state = self.ctx, self.s, self.state
        net: nn.Module = self.model
        if ctx.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if s["compile"]:  # the training step only; evaluation and checkpoints use the model itself
            net = torch.compile(net)  # type: ignore[assignment]
        sampler = ShardedBatchSampler(_size(self.train_set), int(s["batch_size"]), seed, ctx.rank, ctx.world_size,
                                      weights=sample_weights)
        batches = make_loader(self.train_set, s, self.device, sampler)
        val_loader = make_loader(val_set, s, self.device) if val_set is not None and _size(val_set) else None
        bar = ctx.progress(range(state.epoch, self.epochs), desc=f"train {self.tag}", total=self.epochs,
                           initial=state.epoch, log=False)  # each epoch is logged below
        board = _board(ctx, self.tag) if s["tensorboard"] and ctx.is_main and not state.done else None
        started = time.perf_counter()
        with _checkpoint_signals() as (self.pending, previous):
            try:
                self._epochs(net, sampler, batches, val_loader, bar, board, previous)
            finally:
                for use in _uses:
                    use.fit_s += time.perf_counter() - started
        if hasattr(bar, "close"):
            bar.close()
        if board is not None:
            board.close()
        if ctx.is_main and state.history:
            _write_history(Path(ctx.out_dir) / "history" / f"{self.tag}.csv", state.history)
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        return FitResult(self.model, state.history, state.best_epoch, float(state.best_score), self.resumed)

    def _epochs(self, net: nn.Module, sampler: ShardedBatchSampler, loader, val_loader, bar, board,
                previous: dict[int, Any]) -> None:
        """The epochs left: train, score, checkpoint when due (after a noted signal, its handler), log."""
        ctx, state = self.ctx, self.state
        for epoch in bar:
            if state.done:
                break
            started = time.perf_counter()
            sampler.epoch = epoch
            row = self._epoch(net, loader, val_loader, epoch)
            self._checkpoint()
            if hasattr(bar, "set_postfix"):
                bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k != "epoch"})
            if ctx.is_main:
                _log_epoch(ctx, self.tag, row, self.epochs, time.perf_counter() - started)
            if board is not None:
                for key, value in row.items():
                    if key != "epoch":
                        board.add_scalar(f"{self.tag}/{key}", value, row["epoch"])
                board.flush()
            _after_signals(self.pending, previous)  # after the checkpoint and the epoch's log line

    def _epoch(self, net: nn.Module, loader, val_loader, epoch: int) -> dict:
        """Train one epoch, score it, keep the best weights and decide whether to stop."""
        state, s = self.state, self.s
        row = {"epoch": epoch + 1, "train_loss": self._train_loss(net, loader), "lr": self.opt.param_groups[0]["lr"]}
        if val_loader is not None:
            out, yv, vloss = _outputs(self.model, val_loader, self.device, s, self.loss_fn)
            row["val_loss"] = vloss
            if self.metric is not None:  # one-output models give (N, 1); metrics want (N,)
                row["val_metric"] = float(self.metric(yv, out[:, 0] if out.ndim == 2 and out.shape[1] == 1 else out))
            score = row.get("val_metric", -vloss)
        else:
            score = -row["train_loss"]
        if self.on_plateau:
            self.sched.step(score)
        state.history.append(row)
        state.epoch = epoch + 1
        if score > state.best_score:
            state.best_score, state.best_epoch, state.bad_epochs = score, epoch + 1, 0
            # kept on the device (a copy, no transfer): written with the next checkpoint
            self.best_state = {k: v.detach().clone() for k, v in _unwrap(self.model).state_dict().items()}
            self.best_dirty = True
        else:
            state.bad_epochs += 1
        state.done = bool((s["patience"] and state.bad_epochs >= s["patience"]) or state.epoch >= self.epochs)
        return row

    def _train_loss(self, net: nn.Module, loader) -> float:
        """One pass over the training batches; the mean loss over every rank's records. The loss is summed on
        the device and read once, after the epoch: no host sync per step."""
        s, total, n = self.s, _accumulator(self.device), 0
        net.train()
        for x, y in loader:
            x, y = _inputs(loader.dataset, x, self.device, s["channels_last"]), y.to(self.device, non_blocking=True)
            self.opt.zero_grad(set_to_none=True)
            with _autocast(self.device, s["amp"]):
                out = _call(net, x)
            loss = self.loss_fn(out.float(), y)
            loss.backward()
            if s["grad_clip"]:
                nn.utils.clip_grad_norm_(self.params, s["grad_clip"])
            self.opt.step()
            if self.per_batch:
                self.sched.step()
            total += loss.detach().to(total.dtype) * len(y)
            n += len(y)
        if self.sched is not None and not self.per_batch and not self.on_plateau:
            self.sched.step()
        if self.ctx.world_size > 1:  # the epoch's loss over all ranks, for the log and history
            t = torch.stack([total.double(), torch.tensor(float(n), dtype=torch.float64, device=self.device)])
            dist.all_reduce(t)
            return float(t[0]) / max(float(t[1]), 1.0)
        return float(total) / max(n, 1)

    def _due(self) -> bool:
        """At the end, after a SIGTERM/SIGUSR2, else when both checkpoint_every epochs and checkpoint_every_s
        seconds have passed since the last one: a killed run redoes at most that much."""
        state, s = self.state, self.s
        if state.done or self.pending:
            return True
        every_s = float(s["checkpoint_every_s"] or 0.0)
        return (state.epoch % max(int(s["checkpoint_every"]), 1) == 0
                and _clock() - self.last_checkpoint >= every_s)

    def _checkpoint(self) -> None:
        """Write the fit's checkpoint when due (_due); every rank decides alike (DDP ranks share the decision)."""
        state = self.state
        due = self._due()
        if self.ctx.world_size > 1:  # ranks' clocks and signals differ: rank 0 decides for all
            flag = torch.tensor([float(due)], device=self.device)
            dist.broadcast(flag, 0)
            due = bool(flag.item())
        if not due:
            return
        started = time.perf_counter()
        self.last_checkpoint = _clock()
        if self.on_checkpoint is not None:  # before the engine's file: a kill between the two leaves it ahead
            self.on_checkpoint(state.epoch)
        if self.ctx.is_main:  # copies of what training changes, written by the writer's thread (save_later)
            saved = {"state": asdict(state), "rng": _rng_state()}
            if state.done:  # the returned (best) weights alone: a third of a checkpoint with Adam's state
                weights = self.best_state if self.best_state is not None else _unwrap(self.model).state_dict()
                save_later({"model": copied(weights), **saved}, self.ckpt_path)
                later(lambda: self.best_path.unlink(missing_ok=True), self.best_path)
            else:
                if self.best_dirty:
                    save_later({"model": copied(self.best_state)}, self.best_path)
                save_later({"model": copied(_unwrap(self.model).state_dict()), "optimizer": copied(
                    self.opt.state_dict()), "scheduler": self.sched.state_dict() if self.sched is not None else None,
                    **saved}, self.ckpt_path)
            later(functools.partial(self._note_files, list(_uses)))
        self.best_dirty = False
        if self.pending:  # a noted signal ends the process after this checkpoint: it must be on disk
            flush_checkpoints()
        if self.ctx.world_size > 1:
            dist.barrier()
        for use in _uses:
            use.seconds += time.perf_counter() - started
            use.written += 1

    def _note_files(self, uses: list[CheckpointUse]) -> None:
        """The fit's checkpoint files as they are on disk now, for the blocks that watched it write them."""
        for use in uses:
            for path in (self.ckpt_path, self.best_path):
                use.note(path)


def _board(ctx, tag: str):
    """torch's own TensorBoard writer for one fit (train.tensorboard), under <run>/tensorboard/<fold>-<name>/."""
    from torch.utils.tensorboard import SummaryWriter  # imported only when asked for: it loads tensorboard

    return SummaryWriter(log_dir=str(Path(ctx.out_dir) / "tensorboard" / tag))


def _log_epoch(ctx, tag: str, row: dict, epochs: int, seconds: float) -> None:
    """One line per epoch in run.log, readable where no progress bar is (a cluster's job log)."""
    parts = [f"{k} {v:.4g}" for k, v in row.items() if k not in ("epoch", "lr")]
    ctx.log.info("%s epoch %d/%d: %s, lr %.3g, %.1f s", tag, row["epoch"], epochs, ", ".join(parts), row["lr"],
                 seconds)


def _write_history(path: Path, history: list[dict]) -> None:
    """history/<fold>-<name>.csv: the epochs of one fit (loss, validation metric, learning rate); each value as it
    was logged (object cells: an epoch stays 3, not 3.0), through the spreadsheet-safe writer."""
    import pandas as pd

    columns = list(dict.fromkeys(k for row in history for k in row))
    write_csv(path, pd.DataFrame(history, columns=columns, dtype=object))


@functools.cache
def _default_train() -> dict:
    return dict(core_defaults()["train"])


def predict(model: nn.Module, dataset: Dataset, ctx, batch_size: int | None = None, *,
            train: Mapping | None = None) -> np.ndarray:
    """Raw model outputs for every item of `dataset`, in order, as float32.

    `train` (the config's train section) sets the batch size, workers, autocast and memory format; None: the
    core's defaults, which give the same outputs (batch size and workers only change speed and memory)."""
    s = _settings(_default_train() if train is None else train,
                  {"batch_size": batch_size} if batch_size else None)
    model = _unwrap(model).to(ctx.device)
    return _outputs(model, make_loader(dataset, s, ctx.device), ctx.device, s)[0].astype(np.float32)


def predict_proba(model: nn.Module, dataset: Dataset, ctx, batch_size: int | None = None,
                  softmax: bool = False, *, train: Mapping | None = None) -> np.ndarray:
    """Probabilities in float64: sigmoid of every output (one-output models give (N,)), or softmax over them."""
    out = predict(model, dataset, ctx, batch_size, train=train).astype(np.float64)
    if softmax:
        return torch.softmax(torch.from_numpy(out), dim=1).numpy()
    p = 1.0 / (1.0 + np.exp(-out))
    return p.reshape(len(p)) if p.ndim == 2 and p.shape[1] == 1 else p


def threshold(model: nn.Module, val_set: Dataset, ctx, rule: str = "youden", output: int | None = None, *,
              fallback: float | None = None) -> float:
    """Decision threshold on the probabilities of `val_set`, rows held out of the fit inside the training fold.

    rule "youden" (max sensitivity + specificity - 1) or "sensitivity:0.9" (highest cut-off reaching it);
    `output` picks one column of a multi-output model. Rows whose target is missing (NaN) are left out; where the
    rows left hold one class or none, `fallback` is the threshold (None: a CardioError).
    """
    import cardio_stats as stats

    y = np.asarray([val_set[i][1].item() for i in range(_size(val_set))]) if not hasattr(val_set, "y") \
        else np.asarray(val_set.y)
    if output is not None and y.ndim == 2:
        y = y[:, output]
    present = ~np.isnan(y) if y.dtype.kind == "f" else np.ones(len(y), dtype=bool)
    if len(np.unique(y[present])) < 2:
        if fallback is None:
            raise CardioError(f"engine.threshold: the validation rows hold {len(np.unique(y[present]))} class(es) "
                              f"among {int(present.sum())} with a target; a threshold needs both")
        return float(fallback)
    p = predict_proba(model, val_set, ctx)
    if output is not None:
        p = p[:, output]
    return stats.choose_threshold(y[present], p[present], rule)
