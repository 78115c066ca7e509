"""Calibration (Brier, intercept, slope), decision curves, and multiplicity adjustment."""
import numpy as np
import pytest
import statsmodels.api as sm
from scipy.stats import t as t_dist
from sklearn.metrics import brier_score_loss
from statsmodels.stats.multitest import multipletests

from cardio_stats import StatsError, adjust_pvalues, calibration, decision_curve
from cardio_stats.calibration import ERROR_LOSS, FEW_ERRORS, LOG_T_FEW_ERRORS
from cardio_stats.clustered import LOG_T


def _cohort(n=4000, seed=0, squash=1.0):
    rng = np.random.default_rng(seed)
    lp = rng.normal(0, 1.5, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-lp))).astype(int)
    p = 1 / (1 + np.exp(-squash * lp))  # squash > 1: over-confident risks
    return y, p


def test_well_calibrated_risks_give_slope_one_and_intercept_zero():
    y, p = _cohort()
    c = calibration(y, p, n_resamples=200)
    slope, intercept = c["calibration_slope"], c["calibration_intercept"]
    assert slope.ci_low is not None and slope.ci_high is not None and slope.ci_low < 1 < slope.ci_high
    assert intercept.ci_low is not None and intercept.ci_high is not None and intercept.ci_low < 0 < intercept.ci_high
    assert c["brier"].estimate == pytest.approx(brier_score_loss(y, p))


def test_over_confident_risks_give_a_slope_below_one():
    y, p = _cohort(squash=2.0)
    c = calibration(y, p, n_resamples=200)
    high = c["calibration_slope"].ci_high
    assert high is not None and high < 1
    assert c["calibration_slope"].estimate == pytest.approx(0.5, abs=0.08)


def test_slope_matches_statsmodels_logit_refit():
    y, p = _cohort(n=500, seed=3)
    lp = np.log(p / (1 - p))
    ref = sm.Logit(y, sm.add_constant(lp)).fit(disp=0)
    c = calibration(y, p, n_resamples=200)
    assert c["calibration_slope"].estimate == pytest.approx(ref.params[1], rel=1e-6)


def test_brier_of_a_cohort_without_a_misclassified_patient_still_reaches_up():
    """A separating model on 29 patients (mmode_septal_flash's holdout): every loss near 0, the log-t's upper limit
    with it; the score bound for unseen errors takes the upper limit to about q^2 c / g."""
    y = np.r_[np.ones(12), np.zeros(17)].astype(int)
    p = np.where(y == 1, 0.999, 0.001)
    brier = calibration(y, p)["brier"]
    q = t_dist.ppf(0.975, 28)
    assert brier.estimate == pytest.approx(1e-6) and brier.method == LOG_T_FEW_ERRORS
    assert brier.ci_low == pytest.approx(1e-6) and brier.extra["misclassified_patients"] == 0
    assert brier.ci_high == pytest.approx(q * q * ERROR_LOSS / 29, rel=0.01)
    assert brier.ci_high == pytest.approx(calibration(y, p)["brier"].ci_high)  # no resampling: the same each time


def test_brier_with_enough_misclassified_patients_keeps_the_log_t():
    y, p = _cohort(n=300, seed=5)
    brier = calibration(y, p)["brier"]
    m, loss = brier.estimate, (p - y) ** 2
    q, se = t_dist.ppf(0.975, y.size - 1), loss.std(ddof=1) / np.sqrt(y.size)
    assert brier.method == LOG_T and brier.extra["misclassified_patients"] >= FEW_ERRORS
    assert (brier.ci_low, brier.ci_high) == pytest.approx((m * np.exp(-q * se / m), m * np.exp(q * se / m)))


def test_brier_counts_misclassified_patients_not_records():
    """Three wrong-side records of one patient are one misclassified patient (the bound's count), three without
    patient ids; where the log-t reaches further than the bound (one large loss is a wide log-t), it stands."""
    rng = np.random.default_rng(2)
    y = np.r_[np.ones(20), np.zeros(40)].astype(int)
    p = np.where(y == 1, rng.uniform(0.8, 0.99, 60), rng.uniform(0.01, 0.2, 60))
    p[:3] = 0.1  # three wrong-side records of patient 0
    by_patient = calibration(y, p, groups=np.r_[np.zeros(3), np.arange(1, 58)])["brier"]
    by_record = calibration(y, p)["brier"]
    assert by_patient.extra["misclassified_patients"] == 1 and by_record.extra["misclassified_patients"] == 3
    assert by_patient.method == LOG_T and by_patient.extra["n_groups"] == 58


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


def test_holm_by_hand_equals_statsmodels_and_collects_no_garbage(monkeypatch):
    """cardio's Holm (statsmodels' Holm branch runs gc.collect() on each call) gives statsmodels' adjusted p-values,
    ties, ones and zeros included, without a garbage collection."""
    rng = np.random.default_rng(7)
    families = [rng.uniform(size=n) for n in (1, 2, 5, 17, 60)]
    families += [np.round(rng.uniform(size=30), 1), np.array([0.0, 1.0, 0.04, 0.04, 0.5]), rng.uniform(0, 1e-4, 9)]
    expected = [multipletests(p, method="holm")[1] for p in families]
    import gc

    calls: list[tuple] = []

    def collect(*args: int) -> int:
        calls.append(args)
        return 0

    monkeypatch.setattr(gc, "collect", collect)
    for p, want in zip(families, expected):
        np.testing.assert_allclose(adjust_pvalues(p, "holm"), want, rtol=0, atol=1e-15)
    assert not calls


def test_an_unstable_recalibration_is_flagged_not_printed():
    """Issue 26 item 4: scores that separate the classes give a slope like 481 [-707128, 708091]; it is reported
    as not estimable, with the reason, and a usable fit is unchanged."""
    import numpy as np

    from cardio_stats import calibration

    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(10), np.ones(10)]
    p = np.r_[np.full(10, 0.4999), np.full(10, 0.5001)] + rng.normal(0, 1e-6, 20)
    slope = calibration(y, p, n_resamples=200)["calibration_slope"]
    assert np.isnan(slope.estimate) and slope.ci_low is None and slope.extra["unstable"]
    assert "unstable" in slope.warnings[0] and "not reported" in slope.warnings[0]
    y = (rng.random(200) < 0.3).astype(int)
    fine = calibration(y, np.clip(rng.random(200), 0.01, 0.99), n_resamples=200)["calibration_slope"]
    assert np.isfinite(fine.estimate) and not fine.extra.get("unstable")
