"""The final EchoModel as a cardio model bundle, and back: the targets it predicts (targets.py) and its views, every
view network's kept checkpoints (each with its pixel mean and SD), which checkpoint predicts which output, the
continuous targets' standardisation and the fusion models, as arrays and JSON (no pickle).

A binary label's fusion is the core's Stacker, kept as its own arrays (Stacker.to_arrays / from_arrays); a
continuous label's linear regression is rebuilt from its fitted attributes (coefficients, intercept): scikit-learn
has no array export of its own. A bundle written before the Stacker was kept holds scikit-learn's
LogisticRegression form of it (kind "logistic"), read as before.
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LinearRegression, LogisticRegression

from cardio import CardioError, ModelState
from cardio_echo_cmr.model import EchoVideoNet
from cardio_echo_cmr.settings import EchoSettings
from cardio_echo_cmr.targets import DEFAULT, from_params, names, to_params
from cardio_echo_cmr.training import EchoModel, ViewModel
from cardio_stats import Stacker, StatsError

FITTED = {"logistic": ("coef_", "intercept_", "classes_"), "linear": ("coef_", "intercept_")}


def export(model: EchoModel, s: EchoSettings) -> ModelState:
    """s: the settings the model was trained with."""
    tensors, fusion = {}, {}
    for view, vm in model.views.items():
        for epoch, net in vm.nets.items():
            tensors.update({f"{view}.e{epoch}.{k}": v for k, v in net.state_dict().items()})
    for task, fitted in model.fusion.items():
        if isinstance(fitted, Stacker):
            fusion[task] = "stacker"
            tensors.update(fitted.to_arrays(f"fusion.{task}"))
            continue
        kind = "logistic" if isinstance(fitted, LogisticRegression) else "linear"
        fusion[task] = kind
        for attr in FITTED[kind]:
            tensors[f"fusion.{task}.{attr}"] = np.asarray(getattr(fitted, attr), dtype=np.float64)
    params = {"arch": s.arch, "heads": list(names(model.targets)),
              "targets": to_params(model.targets), "views": list(model.view_names),
              "trained_heads": list(model.heads), "fusion": fusion,
              "best_epoch": {v: dict(vm.best_epoch) for v, vm in model.views.items()},
              "reg_stats": {k: [float(a), float(b)] for k, (a, b) in model.reg_stats.items()},
              "weights": model.weights, "n_train_records": len(model.train_records)}
    return ModelState(tensors, params)


def _array(state: ModelState, name: str) -> np.ndarray:
    try:
        return torch.as_tensor(state.tensors[name]).numpy()
    except KeyError:
        raise CardioError(f"the echo_cmr model bundle lacks the array {name!r}") from None


def _fusion(state: ModelState, task: str, kind: str, n_views: int) -> Stacker | LogisticRegression | LinearRegression:
    if kind == "stacker":
        try:
            stacker = Stacker.from_arrays(state.tensors, f"fusion.{task}")
        except StatsError as e:
            raise CardioError(f"the echo_cmr model bundle's fusion of {task}: {e}") from None
        if len(stacker.coef) != n_views:
            raise CardioError(f"the echo_cmr model bundle's fusion of {task} weighs {len(stacker.coef)} views, the "
                              f"bundle has {n_views}")
        return stacker
    fitted = LogisticRegression() if kind == "logistic" else LinearRegression()
    for attr in FITTED[kind]:
        setattr(fitted, attr, _array(state, f"fusion.{task}.{attr}"))
    if kind == "logistic":
        fitted.classes_ = fitted.classes_.astype(int)
    fitted.n_features_in_ = n_views
    return fitted


def _view(state: ModelState, view: str, arch: str, n_outputs: int) -> ViewModel:
    best = {h: int(e) for h, e in state.params["best_epoch"][view].items()}
    nets: dict[int, torch.nn.Module] = {}
    for epoch in sorted(set(best.values())):
        prefix = f"{view}.e{epoch}."
        weights = {k.removeprefix(prefix): torch.as_tensor(v) for k, v in state.tensors.items()
                   if k.startswith(prefix)}
        net = EchoVideoNet(arch=arch, n_outputs=n_outputs)
        try:
            net.load_state_dict(weights)
        except RuntimeError:  # missing, extra or mis-shaped weights: torch's message lists every one
            raise CardioError(f"the echo_cmr model bundle's {view} weights (epoch {epoch}) do not fit a "
                              f"{arch}") from None
        nets[epoch] = net.eval()
    return ViewModel(nets, best)


def load(state: ModelState) -> EchoModel:
    """The EchoModel `export` described; a bundle whose outputs disagree with its targets is one line. A bundle
    written before targets were config predicts the CMR set."""
    p = state.params
    targets = from_params(p["targets"]) if "targets" in p else DEFAULT
    if p.get("heads") != list(names(targets)) or not p.get("views"):
        raise CardioError(f"the echo_cmr model bundle predicts {p.get('heads')} from {p.get('views')}, its targets "
                          f"are {list(names(targets))}: it was exported by another version")
    views = {v: _view(state, v, p["arch"], len(targets)) for v in p["views"]}
    fusion = {task: _fusion(state, task, kind, len(views)) for task, kind in p["fusion"].items()}
    reg_stats = {k: (float(a), float(b)) for k, (a, b) in p["reg_stats"].items()}
    missing = [t.name for t in targets if not t.binary and t.name not in reg_stats]
    if missing:
        raise CardioError(f"the echo_cmr model bundle lacks the standardisation of {', '.join(missing)}")
    return EchoModel(views, reg_stats, fusion, heads=tuple(p["trained_heads"]), weights=p.get("weights", ""),
                     targets=targets)
