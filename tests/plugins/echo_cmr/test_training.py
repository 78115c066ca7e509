"""View fusion: fitted on training rows only (a leak would change it); the bundle keeps the core's Stacker as its own
arrays, and reads a bundle of the older LogisticRegression form to the same scores."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cardio_echo_cmr")

import torch

from cardio import CardioError, ModelState
from cardio_echo_cmr import bundle
from cardio_echo_cmr.settings import EchoSettings
from cardio_echo_cmr.training import EchoModel, fit_fusion
from cardio_stats import Stacker


def test_fusion_uses_training_rows_only():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(60, 3))
    y = (scores.sum(1) + rng.normal(size=60) > 0).astype(int)
    train = np.arange(40)
    a = fit_fusion(scores, y, train)
    leaked = y.copy()
    leaked[40:] = 1 - leaked[40:]   # flip every test label: a fit that saw them would move
    b = fit_fusion(scores, leaked, train)
    assert np.allclose(a.coef, b.coef) and np.allclose(a.intercept, b.intercept)
    c = fit_fusion(scores, leaked, np.arange(60))  # the check can fail: using all rows does move the fit
    assert not np.allclose(a.coef, c.coef)


def test_fusion_weights_are_never_negative_and_the_bundle_keeps_the_stacker_bit_for_bit():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(80, 3))
    y = (scores[:, 0] - scores[:, 2] + rng.normal(size=80) > 0).astype(int)  # the third view ranks backwards
    fitted = fit_fusion(scores, y, np.arange(80))
    assert isinstance(fitted, Stacker)
    assert fitted.coef[0] > 0 and fitted.coef[2] == 0  # a sign flip is not learned from the views
    linear = fit_fusion(scores, scores[:, 1] * 2.0 - scores[:, 0], np.arange(80), binary=False)
    assert not isinstance(linear, Stacker)  # a regression target: scikit-learn's non-negative least squares
    assert linear.coef_[1] > 0 and linear.coef_[0] == 0

    state = bundle.export(EchoModel({}, {"lvef": (50.0, 10.0)}, {"wma": fitted, "lvef": linear}), EchoSettings())
    assert state.params["fusion"] == {"wma": "stacker", "lvef": "linear"}
    assert set(state.tensors) == {"fusion.wma.mean", "fusion.wma.sd", "fusion.wma.coef", "fusion.wma.intercept",
                                  "fusion.lvef.coef_", "fusion.lvef.intercept_"}
    tensors = {k: torch.as_tensor(v) for k, v in state.tensors.items()}  # as the bundle reads them back
    back = bundle._fusion(ModelState(tensors, state.params), "wma", "stacker", 3)
    assert np.array_equal(back.predict_proba(scores), fitted.predict_proba(scores))  # the same scores, bit for bit
    back_linear = bundle._fusion(ModelState(tensors), "lvef", "linear", 3)
    assert not isinstance(back_linear, Stacker)
    assert np.array_equal(back_linear.predict(scores), linear.predict(scores))
    with pytest.raises(CardioError, match="fusion of wma: the stacker's array"):
        bundle._fusion(ModelState({k: v for k, v in tensors.items() if k != "fusion.wma.sd"}), "wma", "stacker", 3)
    with pytest.raises(CardioError, match="weighs 3 views, the bundle has 2"):
        bundle._fusion(ModelState(tensors), "wma", "stacker", 2)


def test_a_bundle_of_the_logistic_regression_form_scores_as_its_stacker():
    """Bundles written before the Stacker was kept hold scikit-learn's LogisticRegression on the raw outputs
    (coefficient coef/sd, intercept - sum(coef * mean / sd)): they are read as before, to the stacker's scores."""
    rng = np.random.default_rng(2)
    scores = rng.normal(2.0, 3.0, size=(60, 2))
    stacker = fit_fusion(scores, (scores.sum(1) + rng.normal(size=60) > 4).astype(int), np.arange(60))
    intercept = stacker.intercept - float(np.sum(stacker.coef * stacker.mean / stacker.sd))
    old = {k: torch.as_tensor(np.asarray(v, dtype=np.float64)) for k, v in (  # float64, as export wrote them
        ("fusion.wma.coef_", (stacker.coef / stacker.sd)[None, :]), ("fusion.wma.intercept_", [intercept]),
        ("fusion.wma.classes_", [0, 1]))}
    read = bundle._fusion(ModelState(old), "wma", "logistic", 2)
    assert np.allclose(read.predict_proba(scores), stacker.predict_proba(scores), rtol=0, atol=1e-12)
