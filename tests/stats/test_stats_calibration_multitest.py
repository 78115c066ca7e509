"""Calibration (Brier, intercept, slope), decision curves, and multiplicity adjustment."""
import numpy as np
import pytest
import statsmodels.api as sm
from sklearn.metrics import brier_score_loss
from statsmodels.stats.multitest import multipletests

from cardio.stats import StatsError, adjust_pvalues, calibration, decision_curve


def _cohort(n=4000, seed=0, squash=1.0):
    rng = np.random.default_rng(seed)
    lp = rng.normal(0, 1.5, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-lp))).astype(int)
    p = 1 / (1 + np.exp(-squash * lp))  # squash > 1: over-confident risks
    return y, p


def test_well_calibrated_risks_give_slope_one_and_intercept_zero():
    y, p = _cohort()
    c = calibration(y, p, n_resamples=200)
    assert c["calibration_slope"].ci_low < 1 < c["calibration_slope"].ci_high
    assert c["calibration_intercept"].ci_low < 0 < c["calibration_intercept"].ci_high
    assert c["brier"].estimate == pytest.approx(brier_score_loss(y, p))


def test_over_confident_risks_give_a_slope_below_one():
    y, p = _cohort(squash=2.0)
    c = calibration(y, p, n_resamples=200)
    assert c["calibration_slope"].ci_high < 1
    assert c["calibration_slope"].estimate == pytest.approx(0.5, abs=0.08)


def test_slope_matches_statsmodels_logit_refit():
    y, p = _cohort(n=500, seed=3)
    lp = np.log(p / (1 - p))
    ref = sm.Logit(y, sm.add_constant(lp)).fit(disp=0)
    c = calibration(y, p, n_resamples=200)
    assert c["calibration_slope"].estimate == pytest.approx(ref.params[1], rel=1e-6)


def test_decision_curve_limits():
    y = np.array([1, 1, 0, 0, 0, 1, 0, 0])
    perfect = decision_curve(y, y.astype(float), thresholds=[0.1, 0.5])
    assert np.allclose(perfect["model"], y.mean())  # treating exactly the responders
    assert perfect["treat_all"].iloc[0] == pytest.approx(y.mean() - (1 - y.mean()) * 0.1 / 0.9)
    assert (perfect["treat_none"] == 0).all()
    with pytest.raises(StatsError):
        decision_curve(y, y.astype(float), thresholds=[0.0])


def test_adjust_pvalues_holm_and_bh_as_statsmodels_with_nans_left_out():
    p = np.array([0.01, 0.04, np.nan, 0.03, 0.2])
    holm = adjust_pvalues(p)
    ok = np.isfinite(p)
    assert np.allclose(holm[ok], multipletests(p[ok], method="holm")[1]) and np.isnan(holm[2])
    assert np.allclose(adjust_pvalues(p, "bh")[ok], multipletests(p[ok], method="fdr_bh")[1])
    assert (holm[ok] >= p[ok]).all()
    with pytest.raises(StatsError):
        adjust_pvalues(p, "magic")
