"""Training on several processes (torchrun, DDP): joining the process group, the batch sampler that splits each
global batch across ranks, and the model inside a DDP wrapper."""
from __future__ import annotations

import math
import os

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Sampler

from cardio.data import CardioError


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


def unwrap(model: nn.Module) -> nn.Module:
    """The model itself, out of its DDP wrapper."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


