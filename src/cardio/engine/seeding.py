"""Randomness: the seed of everything random before a fit or a network is built, and the generators' state that a
checkpoint records so that a resumed fit draws what the uninterrupted one would have."""
from __future__ import annotations

import os
import random
from typing import Any, Callable, TypeVar

import numpy as np
import torch
from torch import nn


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    # cuBLAS reads this when CUDA starts; whether kernels are deterministic is train.deterministic's, set where the
    # work runs (device.set_determinism): torch's switch imports its compiler (about 2 s), which seeding a process
    # that fits nothing (evaluate, predict) should not pay.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


Net = TypeVar("Net", bound=nn.Module)


def build(make: Callable[[], Net], ctx, seed: int | None = None) -> Net:
    """A network built by `make` right after seed_everything (the run's seed, or `seed`), as the core seeds each fit
    before cardio_train: each network a plugin builds in one fit (a variant, a view, an input map, a second step)
    starts as it would as the fit's first, whichever were built and trained before it in the process."""
    seed_everything(ctx.seed if seed is None else int(seed))
    return make()


def rng_state() -> dict:
    np_state: Any = np.random.get_state()
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(float, np_state[2:])]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(tuple(x if not isinstance(x, list) else tuple(x) for x in state["python"]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


