"""The optimizer and the learning-rate schedule of a fit, by name from the config (any class of torch.optim and
torch.optim.lr_scheduler), and the check of those names before any stage runs."""
from __future__ import annotations

import inspect
from typing import Any

import torch

from cardio.data import CardioError

# Short names of torch.optim.lr_scheduler classes; any other class name of that module works too.
SCHEDULERS = {"cosine": "CosineAnnealingLR", "step": "StepLR", "plateau": "ReduceLROnPlateau",
              "onecycle": "OneCycleLR", "one-cycle": "OneCycleLR", "exponential": "ExponentialLR"}


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


