"""The one training loop of cardio: a fit (its epochs, early stopping, best weights, resume from and writing of its
checkpoint), prediction and the decision threshold; the concerns it combines are the engine's other modules."""
from __future__ import annotations

import functools
import importlib.util
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset

import cardio_stats as stats
from cardio import pip_install
from cardio.config import core_defaults
from cardio.data import CardioError
from cardio.data.spreadsheet import write_csv
from cardio.engine import optim
from cardio.engine.checkpoints import (
    CheckpointTimer,
    CheckpointUse,
    after_signals,
    copied,
    flush_checkpoints,
    later,
    load_checkpoint,
    save_later,
    signals_noted,
    watching,
)
from cardio.engine.data import batch_inputs, dataset_size, make_loader
from cardio.engine.device import accumulator, autocast, cpu_threads, memory_format, release_freed, set_determinism
from cardio.engine.distributed import ShardedBatchSampler, unwrap
from cardio.engine.losses import masked_loss
from cardio.engine.optim import make_optimizer, make_scheduler
from cardio.engine.seeding import rng_state, set_rng_state

# The train section's keys a fit reads (train= and settings=).
SETTINGS = ("epochs", "batch_size", "lr", "weight_decay", "optimizer", "optimizer_args", "scheduler",
            "scheduler_args", "grad_clip", "patience", "amp", "channels_last", "num_workers", "checkpoint_every",
            "checkpoint_every_s", "cpu_threads", "tensorboard", "cohort_on_device", "deterministic", "compile")


@dataclass
class FitResult:
    model: nn.Module
    history: list[dict] = field(default_factory=list)
    best_epoch: int = -1
    best_score: float = float("nan")
    resumed: bool = False


def _settings(train: Mapping, overrides: Mapping | None) -> dict:
    merged = {**train, **{k: v for k, v in (overrides or {}).items() if k in SETTINGS}}
    missing = [k for k in SETTINGS if k not in merged]
    if missing:
        raise CardioError(f"engine.fit: train= lacks {missing}; pass the config's train section")
    return {k: merged[k] for k in SETTINGS}


def _channels_last(model: nn.Module, dataset: Dataset, s: dict, device: torch.device) -> bool:
    """Put the model in the memory format of its input (only on CUDA, where it pays); whether inputs follow."""
    if not s["channels_last"] or device.type != "cuda" or not dataset_size(dataset):
        return False
    x = dataset[0][0]
    fmt = memory_format((x[0] if isinstance(x, tuple) else x).ndim + 1)
    if fmt is None:
        return False
    model.to(memory_format=fmt)
    return True


def _call(model: nn.Module, x):
    """model(x), or model(*x) for a multi-input batch."""
    return model(*x) if isinstance(x, tuple) else model(x)


def _outputs(model: nn.Module, loader, device, s: dict, loss_fn=None):
    """Outputs (and mean loss) over a loader, in float32 on the CPU: kept on the device and copied back once
    (no host sync per batch)."""
    model.eval()
    outs, ys, total, n = [], [], accumulator(device), 0
    with torch.no_grad():
        for x, y in loader:
            x, y = batch_inputs(loader.dataset, x, device, s["channels_last"]), y.to(device, non_blocking=True)
            with autocast(device, s["amp"]):
                out = _call(model, x)
            out = out.float()
            if loss_fn is not None:
                total += loss_fn(out, y).detach().to(total.dtype) * len(y)
                n += len(y)
            outs.append(out)
            ys.append(y)
    mean_loss = float(total) / n if n else float("nan")
    return torch.cat(outs).cpu().numpy(), torch.cat(ys).cpu().numpy(), mean_loss


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
        result = _Fit(model, train_set, ctx, s, tag, loss_fn or masked_loss, metric, on_checkpoint).train(
            val_set, sample_weights, ctx.seed if seed is None else int(seed))
    release_freed()  # the fit's optimizer state, gradients and activations, freed with it
    return result


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
        self.sched = make_scheduler(self.opt, self.s, math.ceil(dataset_size(train_set) / int(self.s["batch_size"])))
        self.per_batch = isinstance(self.sched, torch.optim.lr_scheduler.OneCycleLR)
        self.on_plateau = isinstance(self.sched, torch.optim.lr_scheduler.ReduceLROnPlateau)
        self.ckpt_path = Path(ctx.checkpoint_dir) / f"{tag}.pt"
        self.best_path = Path(ctx.checkpoint_dir) / f"{tag}.best.pt"
        self.state = _FitState()
        self.best_state: dict | None = None  # best weights live on the device; written with each checkpoint
        self.best_dirty = False
        self.timer = CheckpointTimer(self.s["checkpoint_every"], self.s["checkpoint_every_s"])
        self.pending: list[int] = []  # signals noted since the last checkpoint (signals_noted)
        self.resumed = self._resume()

    def _resume(self) -> bool:
        flush_checkpoints(self.ckpt_path)
        if not self.ckpt_path.exists():
            return False
        ck = load_checkpoint(self.ckpt_path)
        for use in watching():  # a resumed fit's files are its task's as well
            use.note(self.ckpt_path)
            use.note(self.best_path)
        self.model.load_state_dict(ck["model"])
        self.state = _FitState(**ck["state"])
        set_rng_state(ck["rng"])
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
        sampler = ShardedBatchSampler(dataset_size(self.train_set), int(s["batch_size"]), seed, ctx.rank,
                                      ctx.world_size, weights=sample_weights)
        batches = make_loader(self.train_set, s, self.device, sampler)
        val_loader = make_loader(val_set, s, self.device) if val_set is not None and dataset_size(val_set) else None
        bar = ctx.progress(range(state.epoch, self.epochs), desc=f"train {self.tag}", total=self.epochs,
                           initial=state.epoch, log=False)  # each epoch is logged below
        board = _board(ctx, self.tag) if s["tensorboard"] and ctx.is_main and not state.done else None
        started = time.perf_counter()
        with signals_noted() as (self.pending, previous):
            try:
                self._epochs(net, sampler, batches, val_loader, bar, board, previous)
            finally:
                for use in watching():
                    use.fit_s += time.perf_counter() - started
        if hasattr(bar, "close"):
            bar.close()
        if board is not None:
            board.close()
        if ctx.is_main and state.history:
            _write_history(Path(ctx.out_dir) / "history" / f"{self.tag}.csv", state.history)
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        self.opt.zero_grad(set_to_none=True)  # the last step's gradients: the fitted model's size again, never read
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
            after_signals(self.pending, previous)  # after the checkpoint and the epoch's log line

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
            self.best_state = {k: v.detach().clone() for k, v in unwrap(self.model).state_dict().items()}
            self.best_dirty = True
        else:
            state.bad_epochs += 1
        state.done = bool((s["patience"] and state.bad_epochs >= s["patience"]) or state.epoch >= self.epochs)
        return row

    def _train_loss(self, net: nn.Module, loader) -> float:
        """One pass over the training batches; the mean loss over every rank's records. The loss is summed on
        the device and read once, after the epoch: no host sync per step."""
        s, total, n = self.s, accumulator(self.device), 0
        net.train()
        for x, y in loader:
            x = batch_inputs(loader.dataset, x, self.device, s["channels_last"])
            y = y.to(self.device, non_blocking=True)
            self.opt.zero_grad(set_to_none=True)
            with autocast(self.device, s["amp"]):
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

    def _checkpoint(self) -> None:
        """Write the fit's checkpoint when due (CheckpointTimer); every rank decides alike (DDP ranks share the
        decision)."""
        state = self.state
        due = self.timer.due(state.epoch, state.done, bool(self.pending))
        if self.ctx.world_size > 1:  # ranks' clocks and signals differ: rank 0 decides for all
            flag = torch.tensor([float(due)], device=self.device)
            dist.broadcast(flag, 0)
            due = bool(flag.item())
        if not due:
            return
        started = time.perf_counter()
        self.timer.restart()
        if self.on_checkpoint is not None:  # before the engine's file: a kill between the two leaves it ahead
            self.on_checkpoint(state.epoch)
        if self.ctx.is_main:  # copies of what training changes, written by the writer's thread (save_later)
            saved = {"state": asdict(state), "rng": rng_state()}
            if state.done:  # the returned (best) weights alone: a third of a checkpoint with Adam's state
                weights = self.best_state if self.best_state is not None else unwrap(self.model).state_dict()
                save_later({"model": copied(weights), **saved}, self.ckpt_path)
                later(lambda: self.best_path.unlink(missing_ok=True), self.best_path)
            else:
                if self.best_dirty:
                    save_later({"model": copied(self.best_state)}, self.best_path)
                save_later({"model": copied(unwrap(self.model).state_dict()), "optimizer": copied(
                    self.opt.state_dict()), "scheduler": self.sched.state_dict() if self.sched is not None else None,
                    **saved}, self.ckpt_path)
            later(functools.partial(self._note_files, watching()))
        self.best_dirty = False
        if self.pending:  # a noted signal ends the process after this checkpoint: it must be on disk
            flush_checkpoints()
        if self.ctx.world_size > 1:
            dist.barrier()
        for use in watching():
            use.seconds += time.perf_counter() - started
            use.written += 1

    def _note_files(self, uses: list[CheckpointUse]) -> None:
        """The fit's checkpoint files as they are on disk now, for the blocks that watched it write them."""
        for use in uses:
            for path in (self.ckpt_path, self.best_path):
                use.note(path)


def check_settings(config: dict) -> None:
    """What a run's training settings need, checked before any stage runs: every optimizer and scheduler named
    (cardio.engine.optim), and TensorBoard where train.tensorboard asks for it (an extra, not a core dependency)."""
    optim.check_settings(config)
    if (config.get("train") or {}).get("tensorboard") and importlib.util.find_spec("tensorboard") is None:
        raise CardioError("train.tensorboard: true writes TensorBoard event files, and TensorBoard is not installed: "
                          f"{pip_install(repr('cardio-crt[tensorboard]'))}, or set train.tensorboard=false")


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
    model = unwrap(model).to(ctx.device)
    out = _outputs(model, make_loader(dataset, s, ctx.device), ctx.device, s)[0].astype(np.float32)
    release_freed()  # the batches' activations
    return out


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
    y = np.asarray([val_set[i][1].item() for i in range(dataset_size(val_set))]) if not hasattr(val_set, "y") \
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
