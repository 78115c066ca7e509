"""The one training loop of cardio and what it stands on: `from cardio import engine; engine.fit(...)`.

This module is the engine's public API (docs/plugin-api.md): the names below, each from the module of its concern.
- loop: fit (its epochs, early stopping, best weights and resume), predict, predict_proba, threshold;
- checkpoints: atomic files on a writer thread, reading them back and a user's weights, checkpoint time per task;
- optim: the optimizer and schedule by name, checked before a run;
- losses: the default losses with missing targets left out;
- data: ArrayDataset and the batches served from the device or a DataLoader;
- distributed: torchrun's process group and the batch sampler split across ranks;
- seeding: the seed of a fit and of each network built in it;
- device: the device, its name (and the CPU's model), CPU threads and deterministic kernels.
"""
from __future__ import annotations

from cardio import allotted_cpus  # the CPUs this process may use (cardio's own; named here for the executors)
from cardio.engine.checkpoints import (
                                       CheckpointUse,
                                       checkpoint_use,
                                       flush_checkpoints,
                                       later,
                                       load_checkpoint,
                                       read_weights,
                                       save_atomic,
                                       save_later,
)
from cardio.engine.data import ArrayDataset
from cardio.engine.device import cpu_model, cpu_threads, default_threads, device_name, resolve_device, set_determinism
from cardio.engine.distributed import ShardedBatchSampler, init_distributed
from cardio.engine.loop import FitResult, check_settings, fit, predict, predict_proba, threshold
from cardio.engine.losses import MISSING_CLASS, masked_loss, masked_mse
from cardio.engine.optim import make_optimizer
from cardio.engine.seeding import build, seed_everything

__all__ = ["MISSING_CLASS", "ArrayDataset", "CheckpointUse", "FitResult", "ShardedBatchSampler", "allotted_cpus",
           "build", "check_settings", "checkpoint_use", "cpu_model", "cpu_threads", "default_threads", "device_name",
           "fit", "flush_checkpoints", "init_distributed", "later", "load_checkpoint", "make_optimizer", "masked_loss",
           "masked_mse", "predict", "predict_proba", "read_weights", "resolve_device", "save_atomic", "save_later",
           "seed_everything", "set_determinism", "threshold"]
