"""The final PhaseAEModel as a cardio model bundle, and back: the autoencoder's weights, the scaler of its
features (the training maps' mean and SD of each layer-2 unit), and per logistic model its selected
variables, its coefficients and its Youden threshold, as arrays and JSON (no pickle).

A logistic model is rebuilt as its coefficients: its probability is 1 / (1 + exp(-[1, x] . beta)), the
formula statsmodels' Logit.predict applies to the same arrays, so the imported model scores as the fitted one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from cardio import CardioError, ModelState
from cardio_spect_polar.analysis import FittedResponseModels
from cardio_spect_polar.autoencoder import ACTIVATIONS, FittedAutoencoder, PhaseAutoencoder
from cardio_spect_polar.pipeline import PhaseAEModel

FORMAT = 1  # bump when the arrays or params change meaning


@dataclass(frozen=True)
class CoefficientModel:
    """A fitted logistic model as its variables and coefficients (intercept first)."""

    variables: tuple[str, ...]
    params: np.ndarray

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray:
        """Probability of response for each row of df (the variables as numeric columns, no missing value)."""
        missing = [v for v in self.variables if v not in df.columns]
        if missing:
            raise CardioError(f"the spect_polar model needs column(s) {missing}, which the cohort table lacks")
        x = df[list(self.variables)].astype(np.float64).to_numpy()
        if not np.isfinite(x).all():
            raise CardioError(f"{int((~np.isfinite(x).all(axis=1)).sum())} scan(s) have missing or infinite "
                              f"values in {list(self.variables)}; the model cannot score them")
        design = np.column_stack([np.ones(len(x)), x])
        return 1 / (1 + np.exp(-np.dot(design, self.params)))


def _coefficients(model) -> np.ndarray:
    """Intercept and coefficients of a fitted model (cardio_stats' logistic model or a CoefficientModel)."""
    if isinstance(model, CoefficientModel):
        return model.params
    return np.array(model.result.params, dtype=np.float64)  # a copy: statsmodels' may be read-only


def export(model: PhaseAEModel) -> ModelState:
    """The model as arrays (AE weights, feature scaler, coefficients) and JSON (architecture, variables,
    thresholds); no patient id goes into the bundle (the core's bundle.json counts them)."""
    ae, response = model.ae, model.response
    tensors = {f"ae.{k}": v for k, v in ae.model.state_dict().items()}
    tensors["scaler.mean"] = np.asarray(ae.feature_mean, dtype=np.float64)
    tensors["scaler.std"] = np.asarray(ae.feature_std, dtype=np.float64)
    for name, fitted in response.models.items():
        tensors[f"logistic.{name}"] = _coefficients(fitted)
    net = ae.model
    params = {"format": FORMAT, "n_inputs": net.n_inputs, "hidden": net.hidden, "features": net.features,
              "activation": next(k for k, v in ACTIVATIONS.items() if type(net.act) is v),
              "ae_cols": list(model.ae_cols), "outcome": model.outcome,
              "variables": {k: list(v) for k, v in response.variables.items()},
              "thresholds": {k: float(v) for k, v in response.thresholds.items()},
              "clinical_selected": list(response.clinical_selected), "ae_selected": list(response.ae_selected),
              "ae_forced": bool(response.ae_forced), "firth": list(response.firth)}
    return ModelState(tensors, params)


def _array(state: ModelState, name: str) -> np.ndarray:
    try:
        value = state.tensors[name]
    except KeyError:
        raise CardioError(f"the spect_polar model bundle lacks the array {name!r}") from None
    return torch.as_tensor(value).numpy().astype(np.float64)


def _autoencoder(state: ModelState) -> FittedAutoencoder:
    p = state.params
    net = PhaseAutoencoder(int(p["n_inputs"]), int(p["hidden"]), int(p["features"]), str(p["activation"]))
    weights = {k.removeprefix("ae."): torch.as_tensor(v) for k, v in state.tensors.items() if k.startswith("ae.")}
    try:
        net.load_state_dict(weights)
    except RuntimeError:  # missing, extra or mis-shaped weights
        raise CardioError(f"the spect_polar model bundle's autoencoder weights do not fit a {p['n_inputs']} -> "
                          f"{p['hidden']} -> {p['features']} autoencoder") from None
    return FittedAutoencoder(net.eval(), patients=[],
                             feature_mean=_array(state, "scaler.mean"), feature_std=_array(state, "scaler.std"))


def load(state: ModelState) -> PhaseAEModel:
    """The PhaseAEModel `export` described; a bundle of another format is one line."""
    p = state.params
    if p.get("format") != FORMAT:
        raise CardioError(f"the spect_polar model bundle has format {p.get('format')!r}, this plugin reads "
                          f"{FORMAT}: it was exported by another version")
    try:
        variables = {k: list(v) for k, v in p["variables"].items()}
        models = {k: CoefficientModel(tuple(v), _array(state, f"logistic.{k}")) for k, v in variables.items()}
        odd = [k for k, m in models.items() if m.params.shape != (len(m.variables) + 1,)]
        if odd:
            raise CardioError(f"the spect_polar model bundle's coefficients of {odd} do not match their variables")
        response = FittedResponseModels(pd.DataFrame(), list(p["clinical_selected"]), list(p["ae_selected"]),
                                        bool(p["ae_forced"]), variables, models,
                                        {k: float(v) for k, v in p["thresholds"].items()},
                                        firth=list(p.get("firth", [])))  # bundles before Firth's: none
        return PhaseAEModel(_autoencoder(state), response, list(p["ae_cols"]), str(p["outcome"]))
    except KeyError as e:
        raise CardioError(f"the spect_polar model bundle's params lack {e}") from None
