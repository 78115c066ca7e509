"""The cohort's M-modes on disk, read per batch: featurize writes them into one cache entry, a .npy per array, a
patient at a time, and training, prediction and the figures read the rows they need, so a run holds a batch of
images, not the cohort's (610 KB a patient at the defaults: 1.8 GB at 3,000 patients).

Items are read with pread into the batch's own array, not through a memory map (a map kept open counts every page
an epoch touched in the process's resident memory; one opened per batch adds a map and its page faults to every
batch). A stored array pickles as its path, so the stages kept for a run's other tasks hold no image either. The
reads come from the page cache while the machine has memory to spare; under memory pressure they go to the disk.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO

import numpy as np
import torch
from torch.utils.data import Dataset

from cardio import CardioError
from cardio.data.files import read_npy

READ_ROWS = 64  # patients read at once where a whole set is streamed (a mean image, a copy to the GPU)


class StoredArray:
    """A uint8 .npy array of the cache read on indexing by integers or integer arrays over its leading axes
    (`a[i]`, `a[rows]`, `a[rows, line]`): each read returns an in-memory array of those items only, read with one
    pread each (no memory map: no page of the file enters the process but the copies asked for). Its header is
    checked at every read: the cache is not trusted."""

    def __init__(self, path: str | Path, shape: tuple[int, ...]) -> None:
        self.path, self.shape = Path(path), tuple(int(n) for n in shape)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, key) -> np.ndarray:
        parts = key if isinstance(key, tuple) else (key,)
        lead = self.shape[:len(parts)]
        index = np.broadcast_arrays(*(np.asarray(p, dtype=np.int64) for p in parts))
        flat = np.ravel_multi_index(tuple(index), lead, mode="raise") if len(lead) else np.zeros((), np.int64)
        item = self.shape[len(parts):]
        size = int(np.prod(item, dtype=np.int64))
        out = np.empty((*flat.shape, *item), np.uint8)
        rows = out.reshape(-1, size)
        with open(self.path, "rb") as f:
            start = self._data_offset(f)
            fd = f.fileno()
            for i, j in enumerate(flat.reshape(-1).tolist()):
                if os.preadv(fd, [rows[i]], start + j * size) != size:
                    raise CardioError(f"{self.path}: the cache entry ends before its item {j}; delete it and run "
                                      "again")
        return out

    def _data_offset(self, f: IO[bytes]) -> int:
        """Where the array's bytes start, once its header says uint8 in the shape featurize wrote."""
        try:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(f)
        except ValueError as exc:
            raise CardioError(f"{self.path}: not a .npy array the cache wrote ({exc})") from None
        if tuple(shape) != self.shape or dtype != np.uint8 or fortran:
            raise CardioError(f"{self.path}: the cache entry holds {dtype} {list(shape)}, not the uint8 "
                              f"{list(self.shape)} featurize wrote; delete it and run again")
        return f.tell()

    def __repr__(self) -> str:
        return f"StoredArray({str(self.path)!r}, shape={self.shape})"


class ArrayWriter:
    """Writes a uint8 .npy of a known shape a row at a time, never holding it whole (np.save wants the array)."""

    def __init__(self, path: Path, shape: tuple[int, ...]) -> None:
        self.path, self.shape, self.rows = path, shape, 0
        self._file: IO[bytes] = open(path, "wb")
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(self._file, header)

    def append(self, row: np.ndarray) -> None:
        if row.shape != self.shape[1:] or row.dtype != np.uint8:
            raise ValueError(f"{self.path.name}: row {row.dtype} {row.shape}, expected uint8 {self.shape[1:]}")
        self._file.write(np.ascontiguousarray(row).tobytes())
        self.rows += 1

    def close(self) -> None:
        self._file.close()
        if self.rows != self.shape[0]:
            raise ValueError(f"{self.path.name}: {self.rows} rows written of {self.shape[0]}")

    def abandon(self) -> None:
        """Close a file whose writing stopped (the cache drops the unfinished entry)."""
        self._file.close()


def intact(folder: Path, shapes: dict[str, tuple[int, ...]]) -> bool:
    """Whether a cache entry holds every array at its shape (else it is rebuilt)."""
    try:
        return all(read_npy(folder / f"{name}.npy", mmap=True).shape == shape for name, shape in shapes.items())
    except (CardioError, OSError):
        return False


def batches(rows: np.ndarray, size: int = READ_ROWS) -> Iterator[np.ndarray]:
    return (rows[i:i + size] for i in range(0, len(rows), size))


def line_sum(x: StoredArray, rows: np.ndarray) -> tuple[np.ndarray, int]:
    """The float64 sum of every line image of `rows` (N, K, s, s) and their number, read READ_ROWS patients at a
    time. uint8 sums are exact in float64, so the mean is the one of the whole array at once, to the last bit."""
    total = np.zeros(x.shape[2:], np.float64)
    for part in batches(np.asarray(rows)):
        total += x[np.sort(part)].sum(axis=(0, 1), dtype=np.float64)
    return total, len(rows) * x.shape[1]


class LineSamples(Dataset):
    """The line images of `rows` of a stored (N, K, s, s) array: sample j is patient rows[j // L]'s line
    lines[j % L] (L = len(lines)), the order of `x[rows][:, lines].reshape(-1, s, s)`; targets `y` per sample (None:
    prediction). Batches as cardio.engine.ArrayDataset serves them (inputs float32, targets long, the batched
    transform on the device), through the engine's protocol (`on_device`, `take`, `nbytes`): on the CPU each batch is
    read from the cache; on a GPU the set is copied there once, READ_ROWS patients at a time, when it fits."""

    def __init__(self, x: StoredArray, rows: Iterable[int], lines: Sequence[int], y: np.ndarray | None = None,
                 batch_transform=None) -> None:
        self.x, self.rows, self.lines = x, np.asarray(list(rows), dtype=np.int64), np.asarray(lines, dtype=np.int64)
        self.y, self.batch_transform = y, batch_transform
        if y is not None and len(y) != len(self):
            raise CardioError(f"LineSamples: {len(self)} samples but {len(y)} targets")
        self._device: torch.device | None = None
        self._on: torch.Tensor | None = None
        self._y: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.rows) * len(self.lines)

    def nbytes(self) -> int:
        return len(self) * int(np.prod(self.x.shape[2:]))

    def images(self, index: np.ndarray) -> np.ndarray:
        """(n, s, s) uint8 of samples `index`, read from the cache."""
        index = np.asarray(index, dtype=np.int64)
        return self.x[self.rows[index // len(self.lines)], self.lines[index % len(self.lines)]]

    def __getitem__(self, i: int):
        x = torch.as_tensor(self.images(np.asarray([i]))[0].astype(np.float32))
        if self.y is None:
            return x, torch.zeros(())
        return x, torch.as_tensor(np.asarray(self.y[i]), dtype=torch.long)

    def on_device(self, device: torch.device) -> None:
        if self._device == device:
            return
        self._device = device
        if self.y is not None:
            self._y = torch.as_tensor(np.asarray(self.y)).to(device, torch.long)
        if device.type != "cpu":  # the whole set on the GPU once; the host reads it a part at a time
            on = torch.empty((len(self), *self.x.shape[2:]), dtype=torch.uint8, device=device)
            for part in batches(np.arange(len(self)), READ_ROWS * len(self.lines)):
                on[part[0]:part[-1] + 1] = torch.as_tensor(self.images(part)).to(device)
            self._on = on

    def take(self, index: torch.Tensor):
        """The batch of samples `index` (a CPU tensor) on the device on_device named: read from the cache on the
        CPU, selected from the set's copy on a GPU."""
        assert self._device is not None, "LineSamples.take before on_device"
        if self._on is not None:
            x = self._on.index_select(0, index.to(self._device, non_blocking=True)).float()
        else:
            x = torch.as_tensor(self.images(index.numpy())).to(self._device).float()
        if self._y is None:
            return x, torch.zeros(len(index), device=self._device)
        return x, self._y.index_select(0, index.to(self._device))
