"""AUC, DeLong and bootstrap: against sklearn, the O(n^2) DeLong definition, and scipy.stats.bootstrap."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import f1_score, roc_auc_score, roc_curve

from cardio_stats import (
    StatsError,
    auc,
    auc_from_indices,
    bootstrap_ci,
    bootstrap_metric,
    delong_ci,
    delong_test,
    resample_indices,
    roc_curve_band,
)


def _data(n=150, prev=0.3, effect=1.0, decimals=1, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < prev).astype(int)
    y[:2], y[2:4] = 1, 0
    s = np.round(rng.normal(size=n) + effect * y, decimals)  # rounding makes ties
    return y, s


def _delong_var_quadratic(y, s):
    """DeLong, DeLong & Clarke-Pearson (1988) straight from the definition, O(m n): the check for the fast one."""
    x, z = s[y == 1], s[y == 0]
    psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return psi.mean(), np.var(v10, ddof=1) / x.size + np.var(v01, ddof=1) / z.size


@pytest.mark.parametrize("seed,decimals", [(0, 1), (1, 0), (2, 3), (3, 2)])
def test_auc_and_delong_variance_against_definitions(seed, decimals):
    y, s = _data(seed=seed, decimals=decimals)
    a, var = _delong_var_quadratic(y, s)
    assert auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    est = delong_ci(y, s)
    assert est.estimate == pytest.approx(a, abs=1e-12)
    assert est.extra["var"] == pytest.approx(var, abs=1e-12)
    z = sps.norm.ppf(0.975)
    assert est.ci_low == pytest.approx(a - z * var**0.5, abs=1e-12)
    assert (est.method, est.n, est.extra["n_pos"]) == ("delong", y.size, int(y.sum()))


def test_auc_accepts_bool_labels_and_lists():
    y, s = _data()
    assert auc(y.astype(bool), s) == auc(list(y), list(s)) == auc(y.astype(float), s)


def test_delong_ties_give_no_interval_and_perfect_separation_gets_a_score_interval():
    """Tied scores: no interval, and why (pROC prints [0.5, 0.5]). Separated classes printed pROC's [1, 1]; every
    interval now gives the AUCs θ with (1 - θ)^2 <= z^2 h(θ), h Hanley & McNeil's variance at 3 and 3 patients,
    saying the classes do not overlap. It agrees with the exact chance of separation: 1 in 20 at 3 and 3 patients
    puts 0.5 just outside a 95% interval, 1 in 6 at 2 and 2 inside it."""
    y = np.array([0, 0, 0, 1, 1, 1])
    for interval in ("normal", "logit"):
        tied = delong_ci(y, [0.5] * 6, interval=interval)
        assert (tied.estimate, tied.ci_low, tied.ci_high) == (0.5, None, None)
        assert tied.warnings == ["no interval: the DeLong variance is 0 (AUC = 0.5: the scores are tied)"]
        est = delong_ci(y, [0.1, 0.2, 0.3, 0.7, 0.8, 0.9], interval=interval)
        assert (est.estimate, est.ci_high) == (1.0, 1.0) and est.ci_low is not None
        q1, q2 = est.ci_low / (2 - est.ci_low), 2 * est.ci_low**2 / (1 + est.ci_low)
        h = (est.ci_low * (1 - est.ci_low) + 2 * (q1 - est.ci_low**2) + 2 * (q2 - est.ci_low**2)) / 9
        assert (1 - est.ci_low) ** 2 == pytest.approx(1.959964**2 * h, rel=1e-5)
        assert any("do not overlap" in w for w in est.warnings)
        assert 0.5 < est.ci_low < 0.51
        two = delong_ci([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], interval=interval)
        assert two.ci_low is not None and two.ci_low < 0.5


def test_delong_ci_is_clipped_to_unit_interval():
    y = np.array([0] * 5 + [1] * 5)
    est = delong_ci(y, [1, 2, 3, 4, 6, 5, 7, 8, 9, 10])
    assert est.ci_high == 1.0 and est.ci_low is not None and est.ci_low < est.estimate


def test_paired_delong_is_antisymmetric_and_identical_scores_give_p1():
    y, s = _data()
    s2 = s + np.random.default_rng(5).normal(size=s.size)
    t12, t21 = delong_test(y, s, s2), delong_test(y, s2, s)
    assert t12.statistic == pytest.approx(-t21.statistic)
    assert t12.p_value == pytest.approx(t21.p_value)
    assert t12.extra["diff_ci_low"] < t12.extra["diff"] < t12.extra["diff_ci_high"]
    same = delong_test(y, s, s)
    assert (same.statistic, same.p_value) == (0.0, 1.0) and same.warnings


def test_paired_delong_score_interval_agrees_with_its_test_and_reaches_away_from_the_bound():
    """interval="score": 0 lies outside the interval exactly when the score test's p < 0.05, A - B and B - A mirror
    each other, a floor only widens it, and with A near 1 it reaches further above the difference than the normal
    one (where the normal interval missed near separation: benchmarks/coverage.py); identical scores keep the
    normal test's no-width answer, and an unknown interval is refused."""
    rng = np.random.default_rng(3)
    for shift, shift_b in ((0.4, 0.3), (0.6, 0.0), (2.4, 1.4)):
        y = (rng.random(200) < 0.4).astype(int)
        a, b = rng.normal(size=200) + shift * y, rng.normal(size=200) + shift_b * y
        t, back = delong_test(y, a, b, interval="score"), delong_test(y, b, a, interval="score")
        lo, hi = t.extra["diff_ci_low"], t.extra["diff_ci_high"]
        assert t.method == "delong-paired-score" and lo <= t.extra["diff"] <= hi
        assert (lo > 0 or hi < 0) == (t.p_value < 0.05)
        assert (back.extra["diff_ci_low"], back.extra["diff_ci_high"]) == pytest.approx((-hi, -lo), abs=1e-6)
        wide = delong_test(y, a, b, interval="score", floor=1.0)
        assert wide.extra["diff_ci_low"] <= lo + 1e-9 and wide.extra["diff_ci_high"] >= hi - 1e-9
    normal = delong_test(y, a, b)
    assert hi - t.extra["diff"] > normal.extra["diff_ci_high"] - normal.extra["diff"]  # A about 0.96, B 0.76
    same = delong_test(y, a, a, interval="score")
    assert (same.method, same.p_value, same.extra["diff_ci_low"]) == ("delong-paired", 1.0, 0.0)
    with pytest.raises(StatsError, match="unknown paired DeLong interval"):
        delong_test(y, a, b, interval="logit")


def test_paired_score_interval_against_a_constant_score_is_the_other_aucs_own_less_a_half():
    """A score the same for every patient (a rule every test patient meets) has AUC 0.5 in any cohort: the pair's
    score interval is the other model's own score interval (delong_ci's) less 0.5, its test that AUC's score test at
    0.5, mirrored when the constant comes first; a perfect model against it is tested (its DeLong difference has
    variance 0: pROC's normal test cannot say, and still refuses)."""
    rng = np.random.default_rng(8)
    y = np.tile([1, 0, 0], 20)
    for a in (rng.normal(size=60) + 0.8 * y, y.astype(float)):
        t, back = delong_test(y, a, np.ones(60), interval="score"), delong_test(y, np.ones(60), a, interval="score")
        own = delong_ci(y, a, interval="score")
        assert own.ci_low is not None and own.ci_high is not None
        assert (t.extra["diff_ci_low"], t.extra["diff_ci_high"]) == pytest.approx((own.ci_low - 0.5, own.ci_high - 0.5))
        assert (back.extra["diff_ci_low"], back.extra["diff_ci_high"]) == pytest.approx((0.5 - own.ci_high,
                                                                                         0.5 - own.ci_low))
        assert t.extra["constant"] == "score2" and back.extra["constant"] == "score1"
        assert t.statistic == pytest.approx(-back.statistic) and 0 < t.p_value < 0.05
        assert (t.extra["diff_ci_low"] > 0) == (t.p_value < 0.05) and "same for every patient" in t.warnings[0]
    with pytest.raises(StatsError, match="variance of the AUC difference is 0 while the AUCs differ"):
        delong_test(y, y.astype(float), np.ones(60))


def _drawn_roc(fpr: np.ndarray, tpr: np.ndarray, f: float) -> float:
    """TPR of the curve sklearn's vertices draw at FPR f: the highest point at or left of f, or on a sloped segment
    (tied positives and negatives) across f."""
    best = float(tpr[fpr <= f + 1e-12].max())
    for x0, y0, x1, y1 in zip(fpr, tpr, fpr[1:], tpr[1:]):
        if x0 < f < x1:
            best = max(best, y0 + (f - x0) / (x1 - x0) * (y1 - y0))
    return best


@pytest.mark.parametrize("decimals", [1, 8])
def test_roc_band_point_curve_is_the_drawn_roc_and_band_brackets_it(decimals):
    """The band's own curve is the one plot_roc draws from sklearn's roc_curve: steps between untied scores, a
    line across tied positives and negatives (rounded scores tie often)."""
    y, s = _data(n=300, decimals=decimals)
    band = roc_curve_band(y, s, n_resamples=300, seed=1)
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    expected = [_drawn_roc(fpr, tpr, f) for f in band["fpr"]]
    np.testing.assert_allclose(band["tpr"], expected, atol=1e-12)
    assert np.all(band["lo"] <= band["hi"])
    assert np.mean((band["lo"] <= band["tpr"] + 1e-12) & (band["tpr"] <= band["hi"] + 1e-12)) > 0.95
    assert np.all(np.diff(band["lo"]) >= -1e-12) and band["hi"][-1] == 1.0


def test_a_two_valued_rule_has_its_band_around_its_two_segments():
    """A rule's 0/1 score: its ROC is (0, 0) -> (its FPR, its TPR) -> (1, 1); the band follows both segments instead
    of reading 0 until the rule's own false-positive rate."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    rule = (rng.uniform(size=200) < np.where(y == 1, 0.75, 0.4)).astype(float)
    band = roc_curve_band(y, rule, n_resamples=300, seed=2)
    fa, ta = rule[y == 0].mean(), rule[y == 1].mean()
    np.testing.assert_allclose(band["tpr"], np.interp(band["fpr"], [0, fa, 1], [0, ta, 1]), atol=1e-12)
    inside = (band["fpr"] > 0.05) & (band["fpr"] < fa - 0.05)
    assert (band["hi"][inside] > 0).all() and (band["lo"][inside] > 0).all()


@pytest.mark.parametrize("strata", ["y", None])
def test_vectorized_auc_equals_sklearn_loop_over_same_indices(strata):
    y, s = _data(n=120, prev=0.25, decimals=1, seed=7)
    idx = resample_indices(y.size, 120, seed=3, strata=y if strata else None)
    assert isinstance(idx, np.ndarray)  # records, not patients: one array of resamples
    fast = auc_from_indices(y, s, idx)
    loop = []
    for i in idx:
        loop.append(roc_auc_score(y[i], s[i]) if 0 < y[i].sum() < y.size else np.nan)
    np.testing.assert_allclose(fast, loop, atol=1e-12, rtol=0)


def test_stratified_resamples_keep_class_counts():
    y, _ = _data(n=90, prev=0.2)
    idx = resample_indices(y.size, 200, seed=0, strata=y)
    assert isinstance(idx, np.ndarray)
    assert np.all(y[idx].sum(axis=1) == y.sum())
    assert idx.shape == (200, y.size)


def test_percentile_interval_is_2_5_and_97_5_percentiles_and_seeded():
    y, s = _data()
    est = bootstrap_ci(y, s, n_resamples=500, seed=11)
    idx = resample_indices(y.size, 500, 11, strata=y)
    assert isinstance(idx, np.ndarray)
    dist = auc_from_indices(y, s, idx)
    lo, hi = np.percentile(dist, [2.5, 97.5])
    assert (est.ci_low, est.ci_high) == (lo, hi)
    assert est.method == "bootstrap-percentile" and est.seed == 11 and est.n_resamples == 500
    assert bootstrap_ci(y, s, n_resamples=500, seed=11).to_dict() == est.to_dict()
    assert bootstrap_ci(y, s, n_resamples=500, seed=12).ci_low != est.ci_low


def _scipy_bca(data, statistic, dist, level=0.95):
    """scipy.stats.bootstrap's own BCa from our bootstrap distribution (n_resamples=0 reuses it)."""
    prior = sps._resampling.BootstrapResult(confidence_interval=None, bootstrap_distribution=dist,
                                            standard_error=None)
    res = sps.bootstrap(data, statistic, n_resamples=0, bootstrap_result=prior, paired=True, vectorized=False,
                        method="BCa", confidence_level=level)
    return res.confidence_interval


@pytest.mark.parametrize("level", [0.95, 0.90])
def test_bca_auc_matches_scipy_bca(level):
    y, s = _data(n=80, prev=0.4, decimals=1, seed=4)
    est = bootstrap_ci(y, s, n_resamples=400, seed=2, method="bca", level=level)
    idx = resample_indices(y.size, 400, 2, strata=y)
    assert isinstance(idx, np.ndarray)
    dist = auc_from_indices(y, s, idx)
    ci = _scipy_bca((y, s), lambda a, b: roc_auc_score(a, b), dist, level)
    assert est.method == "bootstrap-bca"
    assert est.ci_low == pytest.approx(ci.low, abs=1e-12)
    assert est.ci_high == pytest.approx(ci.high, abs=1e-12)


def test_bca_generic_metric_matches_scipy_bca():
    rng = np.random.default_rng(9)
    x = rng.exponential(size=60)

    def mean(a):
        return float(np.mean(a))

    est = bootstrap_metric(mean, x, n_resamples=400, seed=5, method="bca")
    dist = np.array([x[i].mean() for i in resample_indices(x.size, 400, 5)])
    ci = _scipy_bca((x,), mean, dist)
    assert est.ci_low == pytest.approx(ci.low, abs=1e-12)
    assert est.ci_high == pytest.approx(ci.high, abs=1e-12)
    assert est.metric == "mean"


def test_bootstrap_ci_with_callable_statistic_f1():
    y, s = _data()
    pred_at = 0.5

    def f1(yy, ss):
        pred = ss >= pred_at
        tp = np.sum(pred & (yy == 1))
        return 2 * tp / (2 * tp + np.sum(pred != (yy == 1)))

    est = bootstrap_ci(y, s, statistic=f1, n_resamples=200, seed=0)
    assert est.estimate == pytest.approx(f1_score(y, (s >= pred_at).astype(int)))
    assert est.ci_low is not None and est.ci_high is not None
    assert est.ci_low <= est.estimate <= est.ci_high
    assert est.extra["n_pos"] == y.sum() and est.metric == "f1"


def test_unstratified_bootstrap_drops_resamples_without_a_class_with_warning():
    y = np.array([1, 1] + [0] * 28)
    s = np.linspace(0, 1, 30)
    est = bootstrap_ci(y, s, n_resamples=400, seed=0, stratified=False)
    assert est.extra["n_valid_resamples"] < 400
    assert any("undefined in" in w for w in est.warnings)


def test_bootstrap_argument_errors():
    y, s = _data()
    with pytest.raises(StatsError, match="method"):
        bootstrap_ci(y, s, method="basic")
    with pytest.raises(StatsError, match="n_resamples"):
        bootstrap_ci(y, s, n_resamples=5)
    with pytest.raises(StatsError, match="level"):
        bootstrap_ci(y, s, level=95)
    with pytest.raises(StatsError, match="statistic"):
        bootstrap_ci(y, s, statistic="brier")
    with pytest.raises(StatsError, match="length mismatch"):
        bootstrap_metric(np.mean, np.ones(5), np.ones(6))


def test_a_bootstrap_whose_bounds_coincide_gives_no_interval():
    """Separated classes give an AUC of 1 in every resample: the bounds coincide, and the row says so instead."""
    y = np.array([0] * 10 + [1] * 10)
    est = bootstrap_ci(y, np.arange(20.0), n_resamples=200)
    assert (est.estimate, est.ci_low, est.ci_high) == (1.0, None, None)
    assert est.warnings == ["no interval: 100% of the resamples give 1, so the bounds coincide"]
    noisy = bootstrap_ci(y, np.r_[np.arange(9.0), 15.0, np.arange(10.0, 20.0)], n_resamples=200)
    assert noisy.ci_low is not None and noisy.ci_high is not None
    assert noisy.ci_low < noisy.estimate <= noisy.ci_high and not noisy.warnings
