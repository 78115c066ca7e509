"""The phase-map autoencoder: four linear layers, 64 features from layer 2, trained by the core engine."""
from __future__ import annotations

from dataclasses import replace

import pytest

pytest.importorskip("cardio_spect_polar")

import numpy as np
import torch

from cardio import CardioError
from cardio_spect_polar import autoencoder as ae
from cardio_spect_polar.settings import Autoencoder
from cardio_testing.harness import train_settings


def phase_maps(n: int, pixels: int, seed: int = 0) -> np.ndarray:
    """Phase maps in degrees with two latent factors (an early and a late region), like dyssynchrony."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(2, pixels))
    z = rng.normal(size=(n, 2))
    return (140 + 30 * z[:, :1] * a + 20 * z[:, 1:] * b + rng.normal(0, 2, (n, pixels))) % 360


TRAIN = train_settings(cpu_threads=1)  # the plugin's default (its train.cpu_threads)
CFG = Autoencoder(hidden=32, features=64, activation="relu", iterations=40, batch_size=None, lr=1e-3)


def test_four_layers_and_layer_two_features(ctx):
    x = phase_maps(12, 48)
    fitted = ae.fit_autoencoder(x, [f"p{i}" for i in range(12)], CFG, ctx, train=TRAIN)
    model = fitted.model
    linear = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(48, 32), (32, 64), (64, 32), (32, 48)]
    feats = fitted.encode(x, ctx)
    assert feats.shape == (12, 64)
    std = fitted.transform(x, ctx)  # what the statistics see: per-SD units of the training maps
    np.testing.assert_allclose(std, (feats - feats.mean(0)) / feats.std(0), rtol=1e-4, atol=1e-4)
    # The features are exactly what layer 2 outputs on the scaled maps.
    seen: dict[str, torch.Tensor] = {}
    handle = model.layers[1].register_forward_hook(lambda mod, inp, out: seen.setdefault("out", out.detach()))
    with torch.no_grad():
        model(torch.as_tensor(x / 360.0, dtype=torch.float32))
    handle.remove()
    np.testing.assert_allclose(feats, seen["out"].numpy(), rtol=1e-5, atol=1e-6)


def test_training_reduces_reconstruction_error_through_the_engine(ctx, tmp_path):
    x = phase_maps(20, 40, seed=1)
    fitted = ae.fit_autoencoder(x, [f"p{i}" for i in range(20)], replace(CFG, iterations=150, lr=1e-2), ctx,
                                name="ae-test", train=TRAIN)
    losses = [h["train_loss"] for h in fitted.history]
    assert len(losses) == 150 and fitted.epochs == 150 and fitted.iterations == 150
    assert losses[-1] < 0.2 * losses[0]
    ctx.engine.flush_checkpoints()  # the engine's writer thread may still be writing the last one
    assert (tmp_path / "checkpoints" / "ae-test.pt").exists()  # the engine's checkpoint, not a hand loop
    recon = fitted.decode(fitted.encode(x, ctx), ctx)  # the decoder takes raw layer-2 outputs
    assert recon.shape == x.shape
    # two latent factors: the AE must reconstruct far better than the mean map does
    assert np.mean(np.abs(recon - x)) < 0.6 * np.mean(np.abs(x - x.mean(0)))


def test_iterations_map_onto_engine_epochs():
    assert ae.engine_schedule(82, 1000, None) == (1000, 82)   # full batch: one step per epoch
    assert ae.engine_schedule(82, 1000, 16) == (167, 16)      # 6 steps per epoch -> 1002 steps
    assert ae.engine_schedule(10, 5, 64) == (5, 10)
    with pytest.raises(CardioError):
        ae.engine_schedule(10, 0, None)


def test_minibatch_iterations_count(ctx):
    x = phase_maps(10, 20, seed=2)
    fitted = ae.fit_autoencoder(x, list("abcdefghij"), replace(CFG, iterations=9, batch_size=4), ctx, train=TRAIN)
    assert (fitted.epochs, fitted.batch_size, fitted.iterations) == (3, 4, 9)
    assert fitted.patients == list("abcdefghij")


def test_bad_inputs_are_clear_errors(ctx):
    with pytest.raises(CardioError, match="non-finite"):
        ae.fit_autoencoder(np.full((4, 8), np.nan), list("abcd"), CFG, ctx, train=TRAIN)
    with pytest.raises(CardioError, match="flattened"):
        ae.fit_autoencoder(np.zeros((4, 2, 2)), list("abcd"), CFG, ctx, train=TRAIN)
    with pytest.raises(CardioError, match="activation"):
        ae.PhaseAutoencoder(8, activation="gelu6")
