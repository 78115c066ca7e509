"""Statistics that count patients: bootstraps that resample patients, and Obuchowski's clustered DeLong.

References computed here independently: sklearn's AUC on the expanded resamples, leave-one-patient-out
AUCs, and Obuchowski's (1997) formula written out pair by pair.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats as sps
from sklearn.metrics import roc_auc_score
from statsmodels.stats.proportion import proportion_confint

from cardio_stats import (
    StatsError,
    agreement,
    binary_metrics,
    bootstrap_ci,
    bootstrap_metric,
    calibration,
    delong_ci,
    delong_test,
    evaluate_predictions,
    reclassification,
    resample_indices,
    roc_curve_band,
)
from cardio_stats.bootstrap import _auc_from_draws, _auc_jackknife, _unit_blocks, patients_of
from cardio_stats.calibration import SCORE_INTERCEPT
from cardio_stats.clustered import (
    CLASS_DIFFERENCE_T,
    EXACT_EFFECTIVE,
    LOG_T,
    _bias_reduced,
    log_t_estimate,
    wilson_ratio_mean,
)
from cardio_stats.roc import _clustered_cov, _delong_cov, _structural_components

CLUSTERED = "delong-clustered (Obuchowski 1997)"


def _clustered_data(n_patients=80, seed=0, decimals=1, max_records=3):
    """Patients with 1..max_records records, a patient effect shared by their records, ties from rounding."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, max_records + 1, n_patients)
    groups = np.repeat(np.arange(n_patients), sizes)
    rng.shuffle(groups)  # a patient's records need not be next to each other
    y = (rng.random(groups.size) < 0.4).astype(int)
    y[:2], y[2:4] = 1, 0
    s = np.round(rng.normal(size=groups.size) + y + 0.8 * rng.normal(size=n_patients)[groups], decimals)
    return y, s, np.array([f"pt{g}" for g in groups])


def _record_data(n=150, seed=2024):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    y[:2], y[2:4] = 1, 0
    return y, np.round(rng.normal(size=n) + y, 1)


def _without_unit(d: dict) -> dict:
    d = dict(d)
    d["extra"] = {k: v for k, v in d["extra"].items() if k not in ("resampled", "n_groups")}
    return d


# --- groups=None: the numbers of cardio 0.1, to the last bit ---------------------------------------------------

@pytest.mark.parametrize("kwargs,lo,hi", [
    ({}, 0.7049872819767442, 0.8453261264534884),
    ({"method": "bca"}, 0.7035552867622895, 0.8442591300490601),
    ({"stratified": False}, 0.6942669028887141, 0.8471518969941348),
])
def test_ungrouped_auc_bootstrap_is_unchanged_for_the_same_seed(kwargs, lo, hi):
    y, s = _record_data()
    est = bootstrap_ci(y, s, n_resamples=500, seed=7, **kwargs)
    assert (est.ci_low, est.ci_high) == (lo, hi)
    assert "resampled" not in est.extra and "n_groups" not in est.extra


def test_ungrouped_metric_bootstrap_and_band_are_unchanged_for_the_same_seed():
    y, s = _record_data()

    def diff(a, b):
        return float(np.mean(b[a == 1]) - np.mean(b[a == 0]))

    est = bootstrap_metric(diff, y, s, n_resamples=300, seed=7, stratify=y)
    assert (est.ci_low, est.ci_high) == (0.7106440770348839, 1.389520348837209)
    band = roc_curve_band(y, s, n_resamples=200, seed=7)
    # since the band joins positives and negatives tied at a threshold with a line, as the drawn curve does (this
    # data's scores are rounded: 0.546484375, 0.8753906250000001 as a step)
    assert (band["lo"][30], band["hi"][30]) == (0.57484375, 0.890625)


# --- one record per patient: groups change nothing but the note of the unit ------------------------------------

@pytest.mark.parametrize("kwargs", [{}, {"method": "bca"}, {"stratified": False}, {"level": 0.9}])
def test_one_record_per_patient_gives_the_record_level_numbers(kwargs):
    y, s = _record_data()
    ids = np.random.default_rng(1).permutation(y.size).astype(str)  # any labels, any order
    plain = bootstrap_ci(y, s, n_resamples=300, seed=3, **kwargs)
    grouped = bootstrap_ci(y, s, n_resamples=300, seed=3, groups=ids, **kwargs)
    assert _without_unit(grouped.to_dict()) == plain.to_dict()
    assert grouped.extra["resampled"] == "patients" and grouped.extra["n_groups"] == y.size


def test_one_record_per_patient_every_other_bootstrap_and_delong_unchanged():
    y, s = _record_data()
    ids = np.arange(y.size)[::-1]
    prob = 1 / (1 + np.exp(-s))
    pairs = [
        (bootstrap_metric(np.mean, s, n_resamples=200, seed=1, method="bca"),
         bootstrap_metric(np.mean, s, n_resamples=200, seed=1, method="bca", groups=ids)),
        (bootstrap_ci(y, s, statistic=lambda a, b: float(np.mean(b[a == 1])), n_resamples=200, seed=1),
         bootstrap_ci(y, s, statistic=lambda a, b: float(np.mean(b[a == 1])), n_resamples=200, seed=1, groups=ids)),
        *zip(agreement(s, s + y, n_resamples=200).values(), agreement(s, s + y, n_resamples=200, groups=ids).values()),
        *zip(calibration(y, prob, n_resamples=200).values(),
             calibration(y, prob, n_resamples=200, groups=ids).values()),
        *zip(binary_metrics(y, s, 0.5, n_resamples=200).values(),
             binary_metrics(y, s, 0.5, n_resamples=200, groups=ids).values()),
        (delong_ci(y, s), delong_ci(y, s, groups=ids)),
    ]
    for plain, grouped in pairs:
        d = _without_unit(grouped.to_dict())
        assert d == plain.to_dict(), plain.metric
    t0, t1 = delong_test(y, s, s * 0.5 + y), delong_test(y, s, s * 0.5 + y, groups=ids)
    assert (t0.statistic, t0.p_value) == (t1.statistic, t1.p_value)
    b0, b1 = roc_curve_band(y, s, n_resamples=100), roc_curve_band(y, s, n_resamples=100, groups=ids)
    assert all(np.array_equal(b0[k], b1[k]) for k in ("tpr", "lo", "hi"))


def test_grouped_indices_with_one_record_each_equal_record_indices():
    y, _ = _record_data(n=60)
    plain = resample_indices(y.size, 40, 5, strata=y)
    grouped = resample_indices(y.size, 40, 5, strata=y, groups=[f"p{i}" for i in range(y.size)])
    assert np.array_equal(np.array(grouped), plain)


# --- patients resampled ------------------------------------------------------------------------------------------

def test_resampled_patients_bring_all_their_records_and_strata_hold():
    y, _, groups = _clustered_data()
    codes, ids = pd.factorize(groups)
    sizes = np.bincount(codes)
    positive_patient = np.bincount(codes, weights=y) > 0  # a patient is positive if any record is
    for i in resample_indices(y.size, 200, 0, strata=y, groups=groups):
        per_record = np.bincount(i, minlength=y.size)
        drawn = np.bincount(codes[i], minlength=ids.size) // sizes  # times each patient was drawn
        assert np.array_equal(per_record, drawn[codes])  # every record of a patient drawn k times, k times
        assert drawn[positive_patient].sum() == positive_patient.sum()  # stratified by patient class
        assert drawn.sum() == ids.size


@pytest.mark.parametrize("stratified", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grouped_auc_equals_sklearn_on_the_expanded_resamples(stratified, seed):
    y, s, groups = _clustered_data(seed=seed)
    patients = patients_of(groups, y.size)
    blocks = _unit_blocks(y.size, 150, seed, y if stratified else None, patients)
    fast = _auc_from_draws(y, s, blocks, patients)
    idx = resample_indices(y.size, 150, seed, strata=y if stratified else None, groups=groups)
    ref = [roc_auc_score(y[i], s[i]) if 0 < y[i].sum() < i.size else np.nan for i in idx]
    np.testing.assert_allclose(fast, ref, atol=1e-12, rtol=0)
    est = bootstrap_ci(y, s, n_resamples=150, seed=seed, stratified=stratified, groups=groups)
    valid = np.asarray(ref)[np.isfinite(ref)]
    assert est.ci_low == pytest.approx(np.percentile(valid, 2.5), abs=1e-12)
    assert est.ci_high == pytest.approx(np.percentile(valid, 97.5), abs=1e-12)
    assert est.extra["resampled"] == "patients" and est.extra["n_groups"] == len(set(groups))


def test_grouped_jackknife_leaves_one_patient_out():
    y, s, groups = _clustered_data(seed=4)
    patients = patients_of(groups, y.size)
    assert patients is not None
    jack = _auc_jackknife(y, s, patients)
    ref = [roc_auc_score(y[patients.codes != g], s[patients.codes != g]) for g in range(patients.n_groups)]
    np.testing.assert_allclose(jack, ref, atol=1e-12, rtol=0)
    est = bootstrap_ci(y, s, n_resamples=300, seed=0, method="bca", groups=groups)
    assert est.ci_low is not None and est.ci_high is not None
    assert est.method == "bootstrap-bca" and est.ci_low < est.estimate < est.ci_high


def test_grouped_metric_bootstrap_resamples_patients_and_bca_leaves_patients_out():
    y, s, groups = _clustered_data(seed=5)

    def mean_pos(a, b):
        return float(np.mean(b[a == 1]))

    est = bootstrap_metric(mean_pos, y, s, n_resamples=200, seed=2, stratify=y, groups=groups)
    idx = resample_indices(y.size, 200, 2, strata=y, groups=groups)
    dist = [mean_pos(y[i], s[i]) for i in idx]
    assert (est.ci_low, est.ci_high) == tuple(np.percentile(dist, [2.5, 97.5]))
    bca = bootstrap_metric(mean_pos, y, s, n_resamples=200, seed=2, stratify=y, groups=groups, method="bca")
    assert bca.method == "bootstrap-bca" and bca.extra["n_groups"] == len(set(groups))


def test_duplicating_every_record_keeps_the_patient_interval_and_narrows_the_record_one():
    """Each patient now has 2 identical records: no new patients, so no new evidence."""
    y, s = _record_data(n=400, seed=11)
    ids = np.arange(y.size)
    y2, s2, ids2 = np.repeat(y, 2), np.repeat(s, 2), np.repeat(ids, 2)

    def width(e):
        return e.ci_high - e.ci_low

    base = width(bootstrap_ci(y, s, n_resamples=2000, seed=0))
    patients = width(bootstrap_ci(y2, s2, n_resamples=2000, seed=0, groups=ids2))
    records = width(bootstrap_ci(y2, s2, n_resamples=2000, seed=0))
    assert abs(patients / base - 1) < 0.05
    assert 1.25 <= base / records <= 1.6  # about sqrt(2): records counted as independent
    d1, d2 = delong_ci(y, s), delong_ci(y2, s2, groups=ids2)
    assert d2.extra["var"] == pytest.approx(d1.extra["var"], rel=1e-12)


def test_grouped_agreement_and_proportions_match_loops_over_expanded_resamples():
    y, s, groups = _clustered_data(seed=6)
    t = s * 10 + 30
    p = t + np.random.default_rng(0).normal(0, 3, t.size)
    out = agreement(t, p, n_resamples=200, seed=4, groups=groups)
    codes = np.unique(groups, return_inverse=True)[1]
    d, g = p - t, codes.max() + 1
    u = np.bincount(codes, weights=d - d.mean())
    var_mean = g / (g - 1) * (u @ u) / d.size**2  # the mean difference's patient-clustered variance
    q = sps.t.ppf(0.975, g - 1)
    assert (out["ba_bias"].ci_low, out["ba_bias"].ci_high) == pytest.approx(
        (d.mean() - q * np.sqrt(var_mean), d.mean() + q * np.sqrt(var_mean)))
    # the limits: bias + SD x noncentral t quantiles / sqrt(n_eff), n_eff = SD^2 / var_mean (Carkeet 2015)
    sd = d.std(ddof=1)
    n_eff = min(d.size, sd**2 / var_mean)
    k = sps.nct.ppf(0.975, n_eff - 1, sps.norm.ppf(0.975) * np.sqrt(n_eff)) / np.sqrt(n_eff)
    assert out["ba_loa_high"].ci_high == pytest.approx(d.mean() + sd * k)
    assert n_eff <= d.size and out["mae"].extra["n_groups"] == g
    assert out["rmse"].ci_low is None and out["rmse"].warnings

    m = binary_metrics(y, s, 0.5, n_resamples=200, seed=4, groups=groups)
    pred = s >= 0.5
    codes = np.unique(groups, return_inverse=True)[1]
    # a proportion of records, patients the units: Clopper-Pearson's interval at p (1 - p) over the ratio's clustered
    # variance
    for name, den, num in (("sensitivity", y == 1, pred), ("npv", ~pred, y == 0)):
        k, d = np.bincount(codes, weights=den & num), np.bincount(codes, weights=den)
        p, used = k.sum() / d.sum(), d > 0
        g = used.sum()
        n_eff = min(d.sum(), p * (1 - p) / (g / (g - 1) * np.sum((k[used] - p * d[used]) ** 2) / d.sum() ** 2))
        assert m[name].estimate == pytest.approx(p) and m[name].extra["n_effective"] == pytest.approx(n_eff)
        assert (m[name].ci_low, m[name].ci_high) == pytest.approx(
            proportion_confint(p * n_eff, n_eff, method="beta"), abs=1e-12)
        assert n_eff <= d.sum()  # never more trials than records
    assert m["sensitivity"].method == EXACT_EFFECTIVE and m["sensitivity"].extra["n_groups"] == codes.max() + 1
    assert m["f1"].method == EXACT_EFFECTIVE


def test_few_units_variance_is_unbiased_and_its_df_bell_mccaffrey_under_the_working_model():
    """A ratio over 10 records of very unequal size, each record's ratio normal about 0.8 with variance
    0.8 * 0.2 / beats (the working model): the bias-reduced variance's mean is the ratio's true variance
    0.16 / total beats, where the plain clustered one falls short, and 2 E[v]^2 / Var(v) (the variance's own df)
    is the Bell-McCaffrey df it states, short of g - 1 = 9."""
    den = np.array([[2000.0], [600], [300], [150], [80], [60], [40], [30], [20], [10]])
    truth, rng = 0.16 / den.sum(), np.random.default_rng(0)
    cr2, plain, dfs = [], [], []
    for _ in range(6000):
        num = den * (0.8 + rng.normal(0, np.sqrt(0.16 / den)))
        ratios = num.sum(axis=0) / den.sum(axis=0)
        v, df = _bias_reduced(num, den, ratios)
        infl = (num - ratios * den)[:, 0] / den.sum()
        cr2.append(v)
        dfs.append(df)
        plain.append(10 / 9 * infl @ infl)
    assert np.mean(cr2) == pytest.approx(truth, rel=0.04) and np.mean(plain) < 0.8 * truth
    assert 2 * np.mean(cr2) ** 2 / np.var(cr2) == pytest.approx(np.mean(dfs), rel=0.1) and np.mean(dfs) < 4
    # equal records: the plain variance with g / (g - 1) and t with g - 1 df, to the bit
    num, den = np.array([[90.0], [70], [85], [60]]), np.full((4, 1), 100.0)
    ratios = num.sum(axis=0) / den.sum(axis=0)
    v, df = _bias_reduced(num, den, ratios)
    infl = (num - ratios * den)[:, 0] / den.sum()
    assert v == pytest.approx(4 / 3 * infl @ infl) and df == pytest.approx(3)
    r = wilson_ratio_mean(num, den, 0.95, few_units=True)
    q = sps.t.ppf(0.975, 3)
    assert (r.low, r.high) == pytest.approx(proportion_confint(
        r.estimate * r.n_effective, r.n_effective, alpha=2 * sps.norm.sf(q), method="wilson"))
    with pytest.raises(StatsError, match="at least 2 units"):
        wilson_ratio_mean(num[:1], den[:1], 0.95, few_units=True)


def test_grouped_calibration_uses_cluster_robust_wald_and_patient_brier():
    y, s, groups = _clustered_data(seed=7)
    prob = 1 / (1 + np.exp(-s))
    out = calibration(y, prob, n_resamples=200, groups=groups)
    # the Brier score: exp(log m -+ t SE / m), SE the patient-clustered SE of the mean loss, t with patients - 1 df
    loss, codes = (prob - y) ** 2, np.unique(groups, return_inverse=True)[1]
    m, g = loss.mean(), codes.max() + 1
    u = np.bincount(codes, weights=loss - m)
    se = np.sqrt(g / (g - 1) * (u @ u)) / loss.size
    q = sps.t.ppf(0.975, g - 1)
    brier = out["brier"]
    assert (brier.estimate, brier.ci_low, brier.ci_high) == pytest.approx((m, m * np.exp(-q * se / m),
                                                                           m * np.exp(q * se / m)))
    assert brier.method == LOG_T and brier.extra["n_groups"] == g
    assert out["calibration_slope"].method == "logistic recalibration (Wald, cluster-robust by patient)"
    slope = out["calibration_slope"]
    assert slope.ci_low is not None and slope.ci_high is not None and slope.ci_low < slope.estimate < slope.ci_high


def test_calibration_intercept_is_the_score_interval_with_the_larger_variance():
    """At each limit the patient-clustered score statistic of logit P = a + lp (its variance the larger of the
    robust and the model-based one, at that a) is exactly -+z, and the estimate is where the score is 0."""
    y, s, groups = _clustered_data(seed=7)
    prob = 1 / (1 + np.exp(-0.7 * s))  # under-confident: the slope is not 1
    codes = np.unique(groups, return_inverse=True)[1]
    g = codes.max() + 1
    lp = np.log(prob / (1 - prob))

    def score(a: float) -> float:
        p = 1 / (1 + np.exp(-(a + lp)))
        sums = np.bincount(codes, weights=y - p)
        return (y - p).sum() / np.sqrt(max(g / (g - 1) * (sums @ sums), (p * (1 - p)).sum()))

    icpt = calibration(y, prob, groups=groups)["calibration_intercept"]
    assert icpt.method == SCORE_INTERCEPT and icpt.extra["n_groups"] == g
    assert icpt.ci_low is not None and icpt.ci_high is not None
    assert score(icpt.estimate) == pytest.approx(0, abs=1e-6)
    assert (score(icpt.ci_low), score(icpt.ci_high)) == pytest.approx((sps.norm.ppf(0.975), -sps.norm.ppf(0.975)))


def test_calibration_intercept_far_from_separation_is_close_to_the_wald_interval():
    """One record a patient and risks far from 0 and 1: the score interval lies within 3% of the Wald interval with
    the larger of the HC0 and model-based SEs, which it replaced."""
    rng = np.random.default_rng(4)
    lp = rng.normal(-0.3, 1.0, 400)
    y = (rng.random(400) < 1 / (1 + np.exp(-0.8 * lp))).astype(int)
    prob = 1 / (1 + np.exp(-lp))
    icpt = calibration(y, prob)["calibration_intercept"]
    fit = sm.GLM(y, np.ones((400, 1)), family=sm.families.Binomial(), offset=lp)
    se = max(float(fit.fit().bse[0]), float(fit.fit(cov_type="HC0").bse[0]))
    wald = (icpt.estimate - sps.norm.ppf(0.975) * se, icpt.estimate + sps.norm.ppf(0.975) * se)
    assert (icpt.ci_low, icpt.ci_high) == pytest.approx(wald, rel=0.03)


def test_log_t_estimate_counts_patients_and_refuses_a_constant():
    values = np.array([0.2, 0.25, 0.4, 0.1, 0.3, 0.35])
    one = log_t_estimate(values, "score")  # one record a patient: the record-level log-t
    m, se, q = values.mean(), values.std(ddof=1) / np.sqrt(6), sps.t.ppf(0.975, 5)
    assert (one.estimate, one.ci_low, one.ci_high) == pytest.approx((m, m * np.exp(-q * se / m),
                                                                     m * np.exp(q * se / m)))
    assert one.method == LOG_T and "n_groups" not in one.extra
    two = log_t_estimate(values, "score", groups=np.array([0, 0, 1, 1, 2, 2]))
    assert two.ci_low is not None and two.ci_high is not None and one.ci_low is not None and one.ci_high is not None
    assert two.extra["n_groups"] == 3 and two.ci_high - two.ci_low > one.ci_high - one.ci_low  # 2 df, not 5
    flat = log_t_estimate(np.full(4, 0.3), "score", groups=np.arange(4))
    assert flat.ci_low is None and flat.warnings == ["no interval: every value the same"]


def test_grouped_band_brackets_the_curve():
    y, s, groups = _clustered_data(seed=8)
    band = roc_curve_band(y, s, n_resamples=200, seed=1, groups=groups)
    assert np.all(band["lo"] <= band["hi"]) and band["resampled"] == "patients"
    assert np.mean((band["lo"] <= band["tpr"] + 1e-12) & (band["tpr"] <= band["hi"] + 1e-12)) > 0.9


def test_group_argument_errors():
    y, s = _record_data(n=30)
    with pytest.raises(StatsError, match="length mismatch: groups"):
        bootstrap_ci(y, s, n_resamples=20, groups=np.arange(29))
    with pytest.raises(StatsError, match="missing patient id"):
        bootstrap_ci(y, s, n_resamples=20, groups=[None] + list(range(29)))
    with pytest.raises(StatsError, match="at least 2 patients"):
        bootstrap_ci(y, s, n_resamples=20, groups=np.zeros(30))
    with pytest.raises(StatsError, match="2 patients with positive"):
        delong_ci(y, s, groups=np.where(y == 1, 0, np.arange(30)))


# --- Obuchowski's clustered DeLong -------------------------------------------------------------------------------

def _obuchowski(y, scores, groups):
    """Obuchowski (1997) covariance of the AUCs of the rows of ``scores``, written out pair by pair, O(M N)."""
    pos, neg = y == 1, y == 0
    big_m, big_n = pos.sum(), neg.sum()
    clusters = np.unique(groups)
    i_all = clusters.size
    i10, i01 = np.unique(groups[pos]).size, np.unique(groups[neg]).size
    comps = []
    for s in scores:
        x, z = s[pos], s[neg]
        psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
        auc = psi.mean()
        v10 = np.array([psi[groups[pos] == c].sum() / big_n for c in clusters])
        v01 = np.array([psi[:, groups[neg] == c].sum() / big_m for c in clusters])
        m_i = np.array([np.sum(groups[pos] == c) for c in clusters])
        n_i = np.array([np.sum(groups[neg] == c) for c in clusters])
        comps.append((auc, v10 - m_i * auc, v01 - n_i * auc))
    k = len(scores)
    cov = np.empty((k, k))
    for r in range(k):
        for c in range(k):
            s10 = i10 / ((i10 - 1) * big_m) * np.sum(comps[r][1] * comps[c][1])
            s01 = i01 / ((i01 - 1) * big_n) * np.sum(comps[r][2] * comps[c][2])
            s11_rc = i_all / (i_all - 1) * np.sum(comps[r][1] * comps[c][2])
            s11_cr = i_all / (i_all - 1) * np.sum(comps[c][1] * comps[r][2])
            cov[r, c] = s10 / big_m + s01 / big_n + (s11_rc + s11_cr) / (big_m * big_n)
    return np.array([a for a, _, _ in comps]), cov


@pytest.mark.parametrize("seed,decimals", [(0, 1), (1, 0), (2, 2)])
def test_clustered_delong_matches_obuchowski_written_out(seed, decimals):
    y, s, groups = _clustered_data(seed=seed, decimals=decimals)
    s2 = np.round(s + np.random.default_rng(seed).normal(size=s.size), decimals)
    aucs, cov = _obuchowski(y, [s, s2], groups)
    est = delong_ci(y, s, groups=groups)
    assert est.estimate == pytest.approx(aucs[0], abs=1e-12)
    assert est.extra["var"] == pytest.approx(cov[0, 0], rel=1e-10)
    assert est.extra["variance"] == CLUSTERED and est.method == "delong"
    z = sps.norm.ppf(0.975)
    assert est.ci_low == pytest.approx(max(0.0, aucs[0] - z * cov[0, 0] ** 0.5), abs=1e-12)
    test = delong_test(y, s, s2, groups=groups)
    var_diff = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    assert test.extra["se_diff"] == pytest.approx(var_diff**0.5, rel=1e-10)
    assert test.statistic == pytest.approx((aucs[0] - aucs[1]) / var_diff**0.5, rel=1e-10)
    assert test.extra["cov"] == pytest.approx(cov[0, 1], rel=1e-10) and test.extra["variance"] == CLUSTERED


def test_clustered_delong_with_one_record_per_cluster_is_delong():
    y, s = _record_data()
    s2 = s + np.random.default_rng(0).normal(size=s.size)
    scores = np.vstack([s, s2])
    aucs, v10, v01 = _structural_components(y, scores)
    singletons = patients_of(np.arange(y.size), y.size)
    assert singletons is not None
    clustered = _clustered_cov(y, aucs, v10, v01, singletons)
    _, plain, _, _ = _delong_cov(y, scores)
    np.testing.assert_allclose(clustered, plain, rtol=1e-12, atol=0)
    # through the public functions the numbers are identical to the bit
    assert _without_unit(delong_ci(y, s, groups=np.arange(y.size)).to_dict()) == delong_ci(y, s).to_dict()


def test_clustered_variance_is_unchanged_by_duplicating_every_record_and_grows_with_shared_effects():
    y, s, groups = _clustered_data(seed=9)
    one = delong_ci(y, s, groups=groups)
    two = delong_ci(np.repeat(y, 2), np.repeat(s, 2), groups=np.repeat(groups, 2))
    assert two.extra["var"] == pytest.approx(one.extra["var"], rel=1e-12)
    assert two.ci_low == pytest.approx(one.ci_low, abs=1e-12)
    naive = delong_ci(np.repeat(y, 2), np.repeat(s, 2))
    assert naive.extra["var"] < 0.6 * one.extra["var"]  # records as independent: about half the variance


def test_evaluate_groups_only_tasks_with_more_records_than_patients():
    rng = np.random.default_rng(0)
    n = 160
    y = (rng.random(n) < 0.4).astype(int)
    score = 1 / (1 + np.exp(-(rng.normal(size=n) + y)))
    base = pd.DataFrame({"record_id": np.arange(n), "model": "m", "task": "t", "kind": "binary", "y_true": y,
                         "y_score": score, "fold": np.arange(n) % 4})
    one_each, _ = evaluate_predictions(base.assign(patient_id=np.arange(n)), n_resamples=100)
    assert not any("resampled" in e["extra"] or "variance" in e["extra"] for e in one_each)
    auc = [e for e in one_each if e["metric"] == "auc" and e["method"] == "delong" and e["fold"] == "pooled"][0]
    assert auc["ci_low"] == delong_ci(y, score).ci_low
    boot = [e for e in one_each if e["method"] == "bootstrap-percentile" and e["metric"] == "auc"][0]
    assert boot["ci_low"] == bootstrap_ci(y, score, n_resamples=100, seed=0).ci_low
    pairs, _ = evaluate_predictions(base.assign(patient_id=np.arange(n) % 80), n_resamples=100)
    auc = [e for e in pairs if e["metric"] == "auc" and e["method"] == "delong" and e["fold"] == "pooled"][0]
    assert auc["extra"]["variance"] == CLUSTERED and auc["extra"]["n_groups"] == 80
    assert all(e["extra"].get("resampled") == "patients" for e in pairs if e["method"].startswith("bootstrap"))


def test_one_pairs_idi_is_a_difference_of_class_means_with_its_linearised_t_interval():
    """IDI = mean gain among events - among non-events; its SE from each record's linearised term (one record a
    patient: the two classes' sample variances over their counts, times n / (n - 1)), t with n - 1 df."""
    rng = np.random.default_rng(11)
    y = (rng.random(80) < 0.4).astype(int)
    old = rng.random(80)
    new = np.clip(old + 0.15 * y - 0.05 + rng.normal(0, 0.05, 80), 0, 1)
    est = {e.metric: e for e in reclassification(y, old, new)}
    gain, n = new - old, y.size
    pos, neg = gain[y == 1], gain[y == 0]
    se = np.sqrt(n / (n - 1) * (((pos - pos.mean()) ** 2).sum() / pos.size**2
                                + ((neg - neg.mean()) ** 2).sum() / neg.size**2))
    q = sps.t.ppf(0.975, n - 1)
    value = pos.mean() - neg.mean()
    assert (est["idi"].estimate, est["idi"].ci_low, est["idi"].ci_high) == pytest.approx(
        (value, value - q * se, value + q * se))
    assert est["idi"].method == CLASS_DIFFERENCE_T and est["nri"].method == CLASS_DIFFERENCE_T
    # each patient's two records the same: the same estimate, the patients counted once each
    ids = np.repeat(np.arange(80), 2)
    grouped = {e.metric: e for e in reclassification(y[ids], old[ids], new[ids], groups=ids)}
    assert grouped["idi"].estimate == pytest.approx(value) and grouped["idi"].extra["n_groups"] == 80
    # (80 clusters of two identical records: the linearised SE is the one-record SE, t with the same df)
    assert (grouped["idi"].ci_low, grouped["idi"].ci_high) == pytest.approx((est["idi"].ci_low, est["idi"].ci_high))
