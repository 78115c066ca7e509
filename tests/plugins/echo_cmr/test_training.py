"""View fusion: fitted on training rows only (a leak would change it)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cardio_echo_cmr")

from cardio_echo_cmr.training import fit_fusion


def test_fusion_uses_training_rows_only():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(60, 3))
    y = (scores.sum(1) + rng.normal(size=60) > 0).astype(int)
    train = np.arange(40)
    a = fit_fusion(scores, y, train)
    leaked = y.copy()
    leaked[40:] = 1 - leaked[40:]   # flip every test label: a fit that saw them would move
    b = fit_fusion(scores, leaked, train)
    assert np.allclose(a.coef_, b.coef_) and np.allclose(a.intercept_, b.intercept_)
    c = fit_fusion(scores, leaked, np.arange(60))  # the check can fail: using all rows does move the fit
    assert not np.allclose(a.coef_, c.coef_)


def test_fusion_weights_are_never_negative_and_export_as_logistic_regression():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(80, 3))
    y = (scores[:, 0] - scores[:, 2] + rng.normal(size=80) > 0).astype(int)  # the third view ranks backwards
    fitted = fit_fusion(scores, y, np.arange(80))
    assert fitted.coef_[0, 0] > 0 and fitted.coef_[0, 2] == 0  # a sign flip is not learned from the views
    p = 1 / (1 + np.exp(-(scores @ fitted.coef_[0] + fitted.intercept_[0])))
    assert np.allclose(fitted.predict_proba(scores)[:, 1], p)  # scikit-learn's form, as bundle.py exports it
    linear = fit_fusion(scores, scores[:, 1] * 2.0 - scores[:, 0], np.arange(80), binary=False)
    assert linear.coef_[1] > 0 and linear.coef_[0] == 0
