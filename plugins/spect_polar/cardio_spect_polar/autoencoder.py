"""He et al.'s four-layer linear autoencoder on the flattened LV systolic phase polar map.

Layers 1-2 encode (pixels -> hidden -> 64 features), layers 3-4 decode (64 -> hidden -> pixels).
The AE-based dyssynchrony parameters are the outputs of layer 2. Training goes through the
core engine (`ctx.engine.fit`); "iterations" are optimizer steps, mapped onto engine epochs as
epochs = ceil(iterations / batches per epoch) (full batch by default: one step per epoch).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from cardio import CardioError

# one CPU thread is 4x faster for the AE's small matrices (benchmarks/spect_ae_threads.py)
from cardio_spect_polar.settings import Autoencoder

PHASE_SCALE = 360.0  # phase angles are degrees in [0, 360); the AE sees them in [0, 1)

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "none": nn.Identity}


class PhaseAutoencoder(nn.Module):
    """Four linear layers: n_inputs -> hidden -> features -> hidden -> n_inputs."""

    def __init__(self, n_inputs: int, hidden: int = 256, features: int = 64, activation: str = "relu") -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise CardioError(f"autoencoder.activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.n_inputs, self.hidden, self.features = int(n_inputs), int(hidden), int(features)
        self.layers = nn.ModuleList([
            nn.Linear(self.n_inputs, self.hidden),   # layer 1
            nn.Linear(self.hidden, self.features),   # layer 2: the AE features
            nn.Linear(self.features, self.hidden),   # layer 3
            nn.Linear(self.hidden, self.n_inputs),   # layer 4: reconstruction
        ])
        self.act = ACTIVATIONS[activation]()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers[1](self.act(self.layers[0](x)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.layers[3](self.act(self.layers[2](z)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class _Encoder(nn.Module):
    """The encoder half as a module of its own, so the engine's predict returns layer-2 outputs."""

    def __init__(self, ae: PhaseAutoencoder) -> None:
        super().__init__()
        self.ae = ae

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ae.encode(x)


class _Decoder(nn.Module):
    def __init__(self, ae: PhaseAutoencoder) -> None:
        super().__init__()
        self.ae = ae

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.ae.decode(z)


def _neg_mse(y_true: Any, outputs: Any) -> float:
    """Validation metric for the engine (higher is better)."""
    return -float(np.mean((np.asarray(outputs, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)) ** 2))


@dataclass
class FittedAutoencoder:
    """A trained AE plus what it was trained on (patient ids, for leak checks) and its history."""

    model: PhaseAutoencoder
    patients: list[str]
    history: Any = None
    iterations: int = 0
    epochs: int = 0
    batch_size: int = 0
    settings: dict = field(default_factory=dict)
    feature_mean: np.ndarray | None = None  # of the layer-2 outputs on the training maps
    feature_std: np.ndarray | None = None

    def transform(self, x: np.ndarray, ctx) -> np.ndarray:
        """AE features: layer-2 outputs standardised with the training maps' mean and SD, so that
        odds ratios are per SD (raw layer-2 units are arbitrary and tiny)."""
        z = self.encode(x, ctx)
        return (z - self.feature_mean) / self.feature_std

    def encode(self, x: np.ndarray, ctx) -> np.ndarray:
        """Raw layer-2 outputs (n, features) of flattened phase maps in degrees."""
        xs = scale_phase(x)
        ds = ctx.engine.ArrayDataset(xs, np.zeros(len(xs), dtype=np.float32))
        return np.asarray(ctx.engine.predict(_Encoder(self.model), ds, ctx), dtype=np.float64)

    def decode(self, z: np.ndarray, ctx) -> np.ndarray:
        """Decoder output (n, n_inputs) in degrees for latent vectors z (n, features)."""
        z = np.asarray(z, dtype=np.float32)
        ds = ctx.engine.ArrayDataset(z, np.zeros(len(z), dtype=np.float32))
        out = ctx.engine.predict(_Decoder(self.model), ds, ctx)
        return np.asarray(out, dtype=np.float64) * PHASE_SCALE


def scale_phase(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise CardioError(f"the autoencoder takes flattened phase maps (n, pixels), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise CardioError(f"phase maps hold {int((~np.isfinite(x)).sum())} non-finite value(s)")
    return x / PHASE_SCALE


def engine_schedule(n_rows: int, iterations: int, batch_size: int | None) -> tuple[int, int]:
    """(epochs, batch size) that give at least `iterations` optimizer steps over n_rows rows."""
    if iterations < 1:
        raise CardioError(f"autoencoder.iterations must be >= 1, got {iterations}")
    bs = n_rows if not batch_size else min(int(batch_size), n_rows)
    per_epoch = math.ceil(n_rows / bs)
    return math.ceil(iterations / per_epoch), bs


def fit_autoencoder(x: np.ndarray, patients, s: Autoencoder, ctx, name: str = "ae", *,
                    train: Mapping) -> FittedAutoencoder:
    """Train the AE on phase maps x (n, pixels, degrees) with ctx.engine.fit (`train`: the config's train section,
    the engine settings the AE's own do not set); unsupervised."""
    xs = scale_phase(x)
    if len(xs) < 2:
        raise CardioError(f"the autoencoder needs at least 2 phase maps, got {len(xs)}")
    epochs, bs = engine_schedule(len(xs), s.iterations, s.batch_size)
    # seeded by the core's engine.build: the fold's AE and the in-sample one (refitted in evaluate) start alike
    model = ctx.engine.build(lambda: PhaseAutoencoder(xs.shape[1], s.hidden, s.features, s.activation), ctx)
    ds = ctx.engine.ArrayDataset(xs, xs)
    # The paper trains on every map for a fixed number of iterations: no early stopping, so the
    # "validation" set is the training set and patience is switched off.
    settings = {"epochs": epochs, "batch_size": bs, "lr": s.lr, "weight_decay": s.weight_decay, "optimizer": "adamw",
                "scheduler": "none", "patience": 0}
    res = ctx.engine.fit(model, ds, ds, ctx, name=name, train=train, settings=settings, loss_fn=nn.MSELoss(),
                         metric=_neg_mse)
    fitted = res.model if isinstance(res.model, PhaseAutoencoder) else model
    fitted = fitted.cpu().eval()
    per_epoch = math.ceil(len(xs) / bs)
    out = FittedAutoencoder(fitted, [str(p) for p in patients], getattr(res, "history", None),
                            iterations=epochs * per_epoch, epochs=epochs, batch_size=bs,
                            settings=settings)
    z = out.encode(x, ctx)
    out.feature_mean = z.mean(axis=0)
    sd = z.std(axis=0)
    out.feature_std = np.where(sd > 0, sd, 1.0)  # a dead unit stays 0 rather than dividing by 0
    return out


def feature_names(n: int) -> list[str]:
    """Column names of the AE features, numbered from 1 like the paper's "AE #30"."""
    return [f"ae_{i + 1:02d}" for i in range(n)]
