"""Thresholds and metrics at a threshold: Wilson against statsmodels and the formula, counts against sklearn."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import confusion_matrix, f1_score
from statsmodels.stats.proportion import proportion_confint

from cardio_stats import StatsError, binary_metrics, threshold_for_sensitivity, wilson_ci, youden_threshold
from cardio_stats.clustered import EXACT_EFFECTIVE
from cardio_stats.thresholds import EXACT


def _data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.35).astype(int)
    return y, np.round(rng.normal(size=n) + 1.2 * y, 2)


@pytest.mark.parametrize("k,n", [(0, 10), (1, 10), (5, 10), (10, 10), (81, 263), (37, 1000), (999, 1000)])
@pytest.mark.parametrize("level", [0.95, 0.90, 0.99])
def test_wilson_matches_statsmodels_and_formula(k, n, level):
    lo, hi = wilson_ci(k, n, level)
    ref = proportion_confint(k, n, alpha=1 - level, method="wilson")
    assert (lo, hi) == pytest.approx(ref, abs=1e-12)
    z, p = norm.ppf(0.5 + level / 2), k / n  # Wilson (1927) score interval written out
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert (lo, hi) == pytest.approx((centre - half, centre + half), abs=1e-12)


def test_wilson_published_example():
    # Newcombe (1998) Stat Med 17:857, example 81/263: Wilson 0.2553 to 0.3662
    lo, hi = wilson_ci(81, 263)
    assert round(lo, 4) == 0.2553 and round(hi, 4) == 0.3662


@pytest.mark.parametrize("k,n", [(-1, 10), (11, 10), (3, 0), (2.5, 10)])
def test_wilson_bad_counts(k, n):
    with pytest.raises(StatsError):
        wilson_ci(k, n)


def test_youden_threshold_is_the_brute_force_maximum():
    y, s = _data()
    t = youden_threshold(y, s)
    best = max(np.unique(s), key=lambda c: (np.mean(s[y == 1] >= c) + np.mean(s[y == 0] < c), c))
    j = np.mean(s[y == 1] >= t) + np.mean(s[y == 0] < t)
    assert j == pytest.approx(np.mean(s[y == 1] >= best) + np.mean(s[y == 0] < best))
    assert t in s


@pytest.mark.parametrize("target", [0.5, 0.8, 0.9, 1.0])
def test_threshold_for_sensitivity_reaches_target_with_best_specificity(target):
    y, s = _data(seed=3)
    t = threshold_for_sensitivity(y, s, target)
    assert np.mean(s[y == 1] >= t) >= target
    higher = np.unique(s)[np.unique(s) > t]
    if higher.size:  # any higher cut-off misses the target
        assert np.mean(s[y == 1] >= higher.min()) < target
    with pytest.raises(StatsError, match="target"):
        threshold_for_sensitivity(y, s, 1.5)


def test_binary_metrics_counts_and_intervals():
    y, s = _data(seed=1)
    out = binary_metrics(y, s, 0.6, n_resamples=200)
    pred = (s >= 0.6).astype(int)
    tn, fp, fn, tp = confusion_matrix(y, pred).ravel()
    expected = {"accuracy": (tp + tn, y.size), "sensitivity": (tp, tp + fn), "specificity": (tn, tn + fp),
                "ppv": (tp, tp + fp), "npv": (tn, tn + fn)}
    for name, (k, n) in expected.items():
        e = out[name]
        assert e.estimate == pytest.approx(k / n)
        assert (e.ci_low, e.ci_high) == pytest.approx(proportion_confint(k, n, method="beta"), abs=1e-12)
        assert e.method == EXACT and e.extra["threshold"] == 0.6
        assert (e.extra["tp"], e.extra["fp"], e.extra["tn"], e.extra["fn"]) == (tp, fp, tn, fn)
    f1 = out["f1"]
    assert f1.estimate == pytest.approx(f1_score(y, pred))
    # F1 = sum a / sum b over records (a = 2 tp, b = 2 tp + fp + fn): Clopper-Pearson's interval at
    # n_eff = F (1 - F) / v, v the ratio's linearised variance, each record its own unit (at most sum b)
    a = 2.0 * ((y == 1) & (pred == 1))
    b = a + ((y == 0) & (pred == 1)) + ((y == 1) & (pred == 0))
    used = b > 0
    f, g = a.sum() / b.sum(), used.sum()
    v = g / (g - 1) * np.sum((a[used] - f * b[used]) ** 2) / b.sum() ** 2
    n_eff = min(b.sum(), f * (1 - f) / v)
    assert f1.extra["n_effective"] == pytest.approx(n_eff)
    assert (f1.ci_low, f1.ci_high) == pytest.approx(proportion_confint(f * n_eff, n_eff, method="beta"), abs=1e-12)
    assert f1.method == EXACT_EFFECTIVE and f1.ci_low is not None and f1.ci_high is not None
    assert f1.ci_low <= f1.estimate <= f1.ci_high
    assert set(out) == {"accuracy", "sensitivity", "specificity", "ppv", "npv", "f1"}


def test_binary_metrics_per_record_thresholds():
    y, s = _data(seed=2)
    thr = np.where(np.arange(y.size) < 100, 0.3, 0.7)
    out = binary_metrics(y, s, thr, n_resamples=50)
    pred = s >= thr
    assert out["sensitivity"].estimate == pytest.approx(np.mean(pred[y == 1]))
    assert out["ppv"].extra["threshold"] == [0.3, 0.7]
    with pytest.raises(StatsError, match="threshold"):
        binary_metrics(y, s, thr[:10])


def test_undefined_ppv_is_a_warning_not_a_silent_nan():
    y, s = _data()
    out = binary_metrics(y, s, s.max() + 1, n_resamples=50)  # nobody predicted positive
    ppv = out["ppv"]
    assert np.isnan(ppv.estimate) and ppv.ci_low is None
    assert "no records predicted positive" in ppv.warnings[0]
    assert ppv.to_dict()["estimate"] is None
    assert out["specificity"].estimate == 1.0
