"""The fusion stacker: a ridge logistic regression on standardized scores whose weights cannot be negative."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from cardio_stats import StatsError, fit_stacker


def _data(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)) * [1.0, 3.0, 0.5] + [0.0, 2.0, -1.0]
    y = (x[:, 0] - 0.5 * (x[:, 2] + 1) / 0.5 + rng.normal(size=n) > 0).astype(int)  # column 2 ranks backwards
    return x, y


def test_unconstrained_is_scikit_learns_logistic_regression_at_c_1():
    x, y = _data()
    st = fit_stacker(x, y, nonnegative=False)
    ref = LogisticRegression(C=1.0, max_iter=2000, tol=1e-10).fit(StandardScaler().fit_transform(x), y)
    assert np.allclose(st.coef, ref.coef_[0], atol=1e-4) and st.intercept == pytest.approx(ref.intercept_[0], abs=1e-4)
    assert np.allclose(st.predict_proba(x), ref.predict_proba(StandardScaler().fit(x).transform(x)), atol=1e-5)


def test_a_score_that_ranks_backwards_gets_weight_zero_not_a_sign_flip():
    x, y = _data()
    free, nonneg = fit_stacker(x, y, nonnegative=False), fit_stacker(x, y)
    assert free.coef[2] < -0.5 and nonneg.coef[2] == 0.0 and nonneg.coef[0] > 0.5
    assert (nonneg.coef >= 0).all()
    covariate = fit_stacker(x, y, nonnegative=[True, True, False])  # a clinical covariate may weigh either way
    assert covariate.coef[2] < -0.5
    p = nonneg.predict_proba(x)
    assert p.shape == (200, 2) and np.allclose(p.sum(1), 1.0)


def test_bad_input_is_one_clear_error():
    x, y = _data()
    with pytest.raises(StatsError, match="both classes"):
        fit_stacker(x, np.zeros(200))
    with pytest.raises(StatsError, match="one row of scores per label"):
        fit_stacker(x, y[:10])
    with pytest.raises(StatsError, match="2 flags for 3 columns"):
        fit_stacker(x, y, nonnegative=[True, False])


def test_a_stacker_written_into_a_bundle_reads_back_to_the_same_scores(tmp_path):
    """Stacker.to_arrays as a ModelState part, through the bundle's safetensors file and back: the same float64 arrays
    and scores, bit for bit; a missing or mis-shaped array is one StatsError naming it."""
    pytest.importorskip("cardio_deploy", reason="the cardio kernel and its deploy service are not installed (a "
                                                "stats-only venv)")
    from cardio import ModelState
    from cardio.study.bundle import write_state
    from cardio_deploy.bundle import read_state
    from cardio_stats import Stacker, StatsError

    rng = np.random.default_rng(4)
    x = rng.normal(size=(50, 3)).astype(np.float32)  # scores as a network gives them
    stacker = fit_stacker(x, (x[:, 0] + rng.normal(size=50) > 0).astype(int))
    write_state(tmp_path, ModelState(stacker.to_arrays("fusion.responder"), {}), "test")
    tensors = read_state(tmp_path).tensors
    back = Stacker.from_arrays(tensors, "fusion.responder")
    assert all(np.array_equal(getattr(back, k), getattr(stacker, k)) for k in ("mean", "sd", "coef"))
    assert back.intercept == stacker.intercept
    assert np.array_equal(back.predict_proba(x), stacker.predict_proba(x))
    with pytest.raises(StatsError, match="fusion.responder.coef are missing"):
        Stacker.from_arrays({k: v for k, v in tensors.items() if not k.endswith("coef")}, "fusion.responder")
    with pytest.raises(StatsError, match="do not fit together"):
        Stacker.from_arrays({**tensors, "fusion.responder.sd": np.ones(2)}, "fusion.responder")
