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
