"""The data a fit reads: ArrayDataset, and the batches of a dataset, served from the device where the cohort fits
there (train.cohort_on_device), else by a DataLoader."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from cardio.data import CardioError
from cardio.engine.device import to_device


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
        return _DeviceBatches(dataset, batch_sampler or _Chunks(dataset_size(dataset), int(s["batch_size"])), device)
    pin = device.type == "cuda"
    if batch_sampler is not None:
        return DataLoader(dataset, batch_sampler=batch_sampler, num_workers=s["num_workers"], pin_memory=pin)
    return DataLoader(dataset, batch_size=int(s["batch_size"]), num_workers=s["num_workers"], pin_memory=pin)


def dataset_size(dataset: Dataset) -> int:
    """A map-style dataset's length (torch's Dataset type does not declare __len__)."""
    return len(dataset)  # type: ignore[arg-type]


def batch_inputs(dataset: Dataset, x, device: torch.device, channels_last: bool):
    """A batch's inputs on the device, through the dataset's batched transform (ArrayDataset.batch_transform:
    augmentation and normalisation as tensor operations there), in the model's memory format."""
    fn = getattr(dataset, "batch_transform", None)
    if fn is None:
        return to_device(x, device, channels_last)
    return to_device(fn(to_device(x, device, False)), device, channels_last)
