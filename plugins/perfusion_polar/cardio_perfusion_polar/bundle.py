"""The final PerfusionModel as a cardio model bundle, and back: both ResNet steps, the 17-segment
baselines and every decision threshold, as arrays and JSON (no pickle).

The scikit-learn baselines are rebuilt from their fitted attributes (scaler mean/scale, the
coefficients and intercepts): scikit-learn has no array export of its own.
"""
from __future__ import annotations

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from cardio import CardioError, ModelState
from cardio_perfusion_polar.model import PolarResNet
from cardio_perfusion_polar.settings import PerfusionSettings
from cardio_perfusion_polar.synthetic import N_SEGMENTS, RISK_TASKS
from cardio_perfusion_polar.training import PerfusionModel

SCALER = ("mean_", "scale_", "var_")
FITTED = {"logistic": ("coef_", "intercept_", "classes_"), "ridge": ("coef_", "intercept_")}


def export(model: PerfusionModel, s: PerfusionSettings) -> ModelState:
    """s: the settings the model was trained with."""
    tensors = {f"step1.{k}": v for k, v in model.step1.state_dict().items()}
    tensors.update({f"step2.{k}": v for k, v in model.step2.state_dict().items()})
    kinds = {}
    for name, pipe in model.baselines.items():
        scaler, fitted = pipe[0], pipe[-1]
        kind = "logistic" if isinstance(fitted, LogisticRegression) else "ridge"
        kinds[name] = kind
        for attr in SCALER:
            tensors[f"baseline.{name}.scaler.{attr}"] = np.asarray(getattr(scaler, attr), dtype=np.float64)
        for attr in FITTED[kind]:
            tensors[f"baseline.{name}.{attr}"] = np.asarray(getattr(fitted, attr), dtype=np.float64)
    params = {"arch": s.arch, "n_segments": N_SEGMENTS, "risk_tasks": list(RISK_TASKS),
              "baselines": kinds, "thresholds": {k: float(v) for k, v in model.thresholds.items()},
              "n_train_patients": len(model.train_patients), "scikit-learn": sklearn.__version__,
              "map_size": model.map_size}
    return ModelState(tensors, params)


def _baseline(state: ModelState, name: str, kind: str) -> Pipeline:
    t = {k.removeprefix(f"baseline.{name}."): v.numpy() for k, v in state.tensors.items()
         if k.startswith(f"baseline.{name}.")}
    scaler = StandardScaler()
    for attr in SCALER:
        setattr(scaler, attr, t[f"scaler.{attr}"])
    scaler.n_features_in_ = len(scaler.mean_)
    scaler.n_samples_seen_ = 0
    fitted = LogisticRegression() if kind == "logistic" else Ridge()
    for attr in FITTED[kind]:
        setattr(fitted, attr, t[attr])
    if kind == "logistic":
        fitted.classes_ = fitted.classes_.astype(int)
    fitted.n_features_in_ = scaler.n_features_in_
    return make_pipeline(scaler, fitted)


def load(state: ModelState) -> PerfusionModel:
    """The PerfusionModel `export` described; a bundle of another task set is one line."""
    p = state.params
    if p.get("risk_tasks") != list(RISK_TASKS) or p.get("n_segments") != N_SEGMENTS:
        raise CardioError(f"the perfusion model bundle predicts {p.get('risk_tasks')}, this plugin "
                          f"{list(RISK_TASKS)}: it was exported by another version")
    step1 = PolarResNet(p["arch"], N_SEGMENTS, False)
    step2 = PolarResNet(p["arch"], N_SEGMENTS, False)
    step2.new_head(len(RISK_TASKS))
    for name, net in (("step1", step1), ("step2", step2)):
        weights = {k.removeprefix(f"{name}."): v for k, v in state.tensors.items() if k.startswith(f"{name}.")}
        try:
            net.load_state_dict(weights)
        except RuntimeError:  # missing, extra or mis-shaped weights: torch's message lists every one
            raise CardioError(f"the perfusion model bundle's {name} weights do not fit a {p['arch']}") from None
    try:
        baselines = {name: _baseline(state, name, kind) for name, kind in p["baselines"].items()}
    except KeyError as e:
        raise CardioError(f"the perfusion model bundle lacks the baseline array {e}") from None
    return PerfusionModel(step1.eval(), step2.eval(), baselines, dict(p["thresholds"]), map_size=p.get("map_size"))
