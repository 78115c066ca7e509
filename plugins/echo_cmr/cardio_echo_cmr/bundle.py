"""The final EchoModel as a cardio model bundle, and back: every view network's kept checkpoints (each with its
pixel mean and SD), which checkpoint predicts which output, the T1/T2/ECV standardisation and the fusion models,
as arrays and JSON (no pickle).

The fusion models are rebuilt from their fitted attributes (coefficients, intercepts, classes): scikit-learn has no
array export of its own.
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LinearRegression, LogisticRegression

from cardio import CardioError, ModelState
from cardio_echo_cmr.model import HEADS, REGRESSION_HEADS, EchoVideoNet
from cardio_echo_cmr.synthetic import VIEWS
from cardio_echo_cmr.training import EchoModel, ViewModel

FITTED = {"logistic": ("coef_", "intercept_", "classes_"), "linear": ("coef_", "intercept_")}


def export(model: EchoModel, cfg: dict) -> ModelState:
    """cfg: the `echo_cmr` section the model was trained with."""
    tensors, fusion = {}, {}
    for view, vm in model.views.items():
        for epoch, net in vm.nets.items():
            tensors.update({f"{view}.e{epoch}.{k}": v for k, v in net.state_dict().items()})
    for task, fitted in model.fusion.items():
        kind = "logistic" if isinstance(fitted, LogisticRegression) else "linear"
        fusion[task] = kind
        for attr in FITTED[kind]:
            tensors[f"fusion.{task}.{attr}"] = np.asarray(getattr(fitted, attr), dtype=np.float64)
    params = {"arch": cfg.get("arch", "r2plus1d_18"), "heads": list(HEADS), "views": list(VIEWS),
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


def _fusion(state: ModelState, task: str, kind: str) -> LogisticRegression | LinearRegression:
    fitted = LogisticRegression() if kind == "logistic" else LinearRegression()
    for attr in FITTED[kind]:
        setattr(fitted, attr, _array(state, f"fusion.{task}.{attr}"))
    if kind == "logistic":
        fitted.classes_ = fitted.classes_.astype(int)
    fitted.n_features_in_ = len(VIEWS)
    return fitted


def _view(state: ModelState, view: str, arch: str) -> ViewModel:
    best = {h: int(e) for h, e in state.params["best_epoch"][view].items()}
    nets = {}
    for epoch in sorted(set(best.values())):
        prefix = f"{view}.e{epoch}."
        weights = {k.removeprefix(prefix): torch.as_tensor(v) for k, v in state.tensors.items()
                   if k.startswith(prefix)}
        net = EchoVideoNet(arch=arch)
        try:
            net.load_state_dict(weights)
        except RuntimeError:  # missing, extra or mis-shaped weights: torch's message lists every one
            raise CardioError(f"the echo_cmr model bundle's {view} weights (epoch {epoch}) do not fit a "
                              f"{arch}") from None
        nets[epoch] = net.eval()
    return ViewModel(nets, best)


def load(state: ModelState) -> EchoModel:
    """The EchoModel `export` described; a bundle of another output set is one line."""
    p = state.params
    if p.get("heads") != list(HEADS) or p.get("views") != list(VIEWS):
        raise CardioError(f"the echo_cmr model bundle predicts {p.get('heads')} from {p.get('views')}, this plugin "
                          f"{list(HEADS)} from {list(VIEWS)}: it was exported by another version")
    views = {v: _view(state, v, p["arch"]) for v in VIEWS}
    fusion = {task: _fusion(state, task, kind) for task, kind in p["fusion"].items()}
    reg_stats = {k: (float(a), float(b)) for k, (a, b) in p["reg_stats"].items()}
    missing = [k for k in REGRESSION_HEADS if k not in reg_stats]
    if missing:
        raise CardioError(f"the echo_cmr model bundle lacks the standardisation of {', '.join(missing)}")
    return EchoModel(views, reg_stats, fusion, heads=tuple(p["trained_heads"]), weights=p.get("weights", ""))
