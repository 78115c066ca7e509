"""Regression agreement against sklearn/NumPy, subgroup analysis with a one-class subgroup, fold summaries."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import nct
from scipy.stats import t as t_dist
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from cardio_stats import (
    Estimate,
    StatsError,
    SubgroupSkipped,
    agreement,
    by_subgroup,
    delong_ci,
    summarize_folds,
)


def test_agreement_point_values_and_intervals():
    rng = np.random.default_rng(0)
    t = rng.normal(35, 8, 200)
    p = t + rng.normal(1.5, 4, 200)
    out = agreement(t, p, n_resamples=400, seed=3)
    d = p - t
    assert out["mae"].estimate == pytest.approx(mean_absolute_error(t, p))
    assert out["rmse"].estimate == pytest.approx(mean_squared_error(t, p) ** 0.5)
    assert out["r2"].estimate == pytest.approx(r2_score(t, p))
    assert out["ba_bias"].estimate == pytest.approx(d.mean())
    assert out["ba_loa_high"].estimate == pytest.approx(d.mean() + 1.959963984540054 * d.std(ddof=1))
    assert out["ba_loa_low"].estimate == pytest.approx(d.mean() - 1.959963984540054 * d.std(ddof=1))
    # one record a patient: the MAE's log-scale t, the bias's t, the limits' exact interval (Carkeet 2015)
    m, se, q = np.abs(d).mean(), np.abs(d).std(ddof=1) / np.sqrt(d.size), t_dist.ppf(0.975, d.size - 1)
    assert (out["mae"].ci_low, out["mae"].ci_high) == pytest.approx((m * np.exp(-q * se / m), m * np.exp(q * se / m)))
    se_bias = d.std(ddof=1) / np.sqrt(d.size)
    assert (out["ba_bias"].ci_low, out["ba_bias"].ci_high) == pytest.approx(
        (d.mean() - q * se_bias, d.mean() + q * se_bias))
    k = nct.ppf([0.025, 0.975], d.size - 1, -1.959963984540054 * np.sqrt(d.size)) / np.sqrt(d.size)
    assert (out["ba_loa_low"].ci_low, out["ba_loa_low"].ci_high) == pytest.approx(d.mean() + d.std(ddof=1) * k)
    for e in out.values():
        if e.metric in ("rmse", "r2"):
            assert e.ci_low is None and e.warnings[0].startswith("no interval")
        else:
            assert e.ci_low is not None and e.ci_high is not None and e.ci_low < e.estimate < e.ci_high


def test_agreement_constant_truth_gives_recorded_warning_for_r2():
    out = agreement([5.0, 5.0, 5.0, 5.0], [4.0, 5.0, 6.0, 5.5], n_resamples=50)
    assert np.isnan(out["r2"].estimate) and "constant" in out["r2"].warnings[0]
    assert out["mae"].estimate == pytest.approx(0.625)


def test_agreement_errors():
    with pytest.raises(StatsError, match="length mismatch"):
        agreement([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(StatsError, match="1 NaN"):
        agreement([1.0, 2.0, np.nan], [1.0, 2.0, 3.0])
    with pytest.raises(StatsError, match="at least 3"):
        agreement([1.0, 2.0], [1.0, 2.0])


def test_subgroup_with_one_class_is_recorded_not_raised():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"sex": ["F"] * 30 + ["M"] * 40 + [None] * 6, "y": 0, "score": rng.random(76)})
    df.loc[30:69, "y"] = (rng.random(40) < 0.5).astype(int)  # men: both classes; women: all 0
    df.loc[70:72, "y"] = 1
    out = by_subgroup(df, "sex", lambda sub: delong_ci(sub.y, sub.score))
    assert set(out) == {"F", "M", "(missing)"}
    assert isinstance(out["M"], Estimate)
    skipped = out["F"]
    assert isinstance(skipped, SubgroupSkipped) and skipped.n == 30
    assert "sex=F" in skipped.warnings[0] and "only one class" in skipped.warnings[0]
    json.dumps(skipped.to_dict())
    with pytest.raises(StatsError, match="not found"):
        by_subgroup(df, "site", len)


def test_summarize_folds():
    folds = [Estimate("auc", v, None, None) for v in (0.7, 0.8, 0.9)]
    folds.append(Estimate("auc", float("nan"), None, None, warnings=["one class"]))
    s = summarize_folds(folds)
    assert (s["mean"], s["min"], s["max"], s["n_folds"], s["n_used"]) == (pytest.approx(0.8), 0.7, 0.9, 4, 3)
    assert s["sd"] == pytest.approx(0.1) and len(s["per_fold"]) == 4 and s["warnings"]
    json.dumps(s, allow_nan=False)
    with pytest.raises(StatsError, match="different metrics"):
        summarize_folds([Estimate("auc", 0.7, None, None), Estimate("mae", 1.0, None, None)])
    with pytest.raises(StatsError, match="no folds"):
        summarize_folds([])
