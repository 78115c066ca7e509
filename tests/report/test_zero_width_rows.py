"""A row whose interval has no width says why, in the report as in metrics.json (issue 53)."""
from __future__ import annotations

import numpy as np

from cardio_report.performance import _auc_cells, _diff

SEPARATED = ("the DeLong variance is 0 (AUC = 1: the classes do not overlap); the interval is Hanley & McNeil's score "
             "interval at 16 positive and 24 negative patients")
IDENTICAL = "the two AUCs and their DeLong components are identical; Z set to 0, p to 1"


def test_an_auc_at_its_bound_names_the_interval_it_carries():
    """A holdout's AUC of 1 printed [1, 1] (pROC's); it now carries the score interval of Hanley & McNeil's variance,
    and its interval column says why (the classes do not overlap); an interval elsewhere is named alone."""
    from cardio_stats import delong_ci

    y = np.r_[np.ones(16), np.zeros(24)]
    e = delong_ci(y, y + np.linspace(0, 0.5, 40), interval="score").to_dict()
    assert e["warnings"] == [SEPARATED] and 0.85 < e["ci_low"] < 0.92 and e["ci_high"] == 1.0
    row: dict = {}
    _auc_cells(row, e)
    assert row["auc"] == f"1.000 [{e['ci_low']:.3f}, 1.000]"
    assert row["auc_interval"] == f"DeLong, score interval; {SEPARATED}"
    row = {}
    _auc_cells(row, {"method": "delong-score", "estimate": 0.8, "ci_low": 0.7, "ci_high": 0.9, "warnings": []})
    assert row["auc_interval"] == "DeLong, score interval"


def test_a_difference_of_two_models_at_the_same_bound_prints_no_interval():
    """Two models both at AUC 1 on a holdout: the paired DeLong test printed +0.000 [+0.000, +0.000]; now the
    difference and why it has no interval."""
    t = {"estimate": 0.0, "ci_low": 0.0, "ci_high": 0.0, "warnings": [IDENTICAL]}
    assert _diff(t) == f"+0.000 (no interval: {IDENTICAL})"
    assert _diff({**t, "warnings": []}) == "+0.000 (no interval: zero width)"
    assert _diff({"estimate": 0.05, "ci_low": -0.01, "ci_high": 0.11}) == "+0.050 [-0.010, +0.110]"


def test_the_shared_difference_format_prints_no_zero_width_interval():
    """The plugins' captions (mmode's Table 1: "ΔAUC -0.000 [-0.000, -0.000]") format a difference through
    cardio_stats.format_difference: coinciding bounds are no interval, and a negative zero prints as +0.000."""
    from cardio_stats import format_difference

    assert format_difference(-0.0, -0.0, -0.0) == "+0.000 (no interval: zero width)"
    assert format_difference(0.05, None, None) == "+0.050 (no interval)"
    assert format_difference(0.05, -0.02, 0.12) == "+0.050 [-0.020, +0.120]"


def test_the_summary_names_each_interval_its_models_carry():
    """A run of deep and refitted models (ecg_transfer's default) printed "95% intervals: fold DeLong × 2" over
    every model, the refitted ones' nested CV included; each interval is now named with the models that carry it,
    and a zero-width difference is no interval."""
    from cardio_report.summary import _comparison, _intervals

    rows = [{"model": "resnet", "auc_interval": "fold DeLong × 2"}, {"model": "guideline", "auc_interval": "nested"},
            {"model": "svm-deep", "auc_interval": "fold DeLong × 2"}, {"model": "logistic", "auc_interval": "nested"},
            {"model": "resnet-scratch", "auc_interval": "fold DeLong × 2"}]
    level = "95% intervals"
    assert _intervals(rows, {}, level) == "95% intervals: fold DeLong × 2; nested for guideline, logistic"
    assert _intervals(rows[:1], {}, level) == "95% intervals: fold DeLong × 2"
    assert _intervals([{"model": "a"}], {}, level) == "95% intervals"
    # echo_cmr's 3 folds: "(95% intervals: no interval: 3 fold(s): ...)" read as if the run had intervals
    none = "no interval: 3 fold(s): a cross-validated interval needs at least 5"
    assert _intervals([{"model": "a", "auc_interval": none}, {"model": "b", "auc_interval": none}], {}, level) == none
    t = {"estimate": 0.0, "ci_low": 0.0, "ci_high": 0.0, "p_adjusted": 1.0, "extra": {"model_a": "a", "model_b": "b"}}
    assert _comparison(t, {}, {}) == "a − b +0.000 (no interval: zero width), p 1.000"


def test_a_value_the_service_refused_reads_not_estimable_not_a_dash():
    """mmode_septal_flash's default holdout separates its classes: the recalibration fits are unstable and the
    service reports the calibration slope and intercept as not estimable, with the reason; the calibration table
    printed "–", as for a metric never computed. It now says "not estimable", and a missing value stays "–"."""
    from cardio_report.performance import CALIBRATION, metric_rows, metric_table
    from cardio_stats import calibration

    y = np.r_[np.ones(11), np.zeros(18)]
    prob = np.r_[np.full(11, 0.999), np.full(18, 0.001)] + np.linspace(0, 1e-4, 29)
    rows = []
    for est in calibration(y, prob, n_resamples=200).values():
        rows.append({**est.to_dict(), "model": "m", "task": "t", "fold": "pooled", "subgroup": None})
    slope = next(r for r in rows if r["metric"] == "calibration_slope")
    assert slope["estimate"] is None and slope["warnings"][0].startswith("not estimable")
    table = metric_table(metric_rows(rows), CALIBRATION)
    assert table["calibration slope"].iloc[0] == "not estimable"
    assert table["Brier score"].iloc[0].startswith("0.0")
    # the shared format, which every table and legend prints through: an Estimate object and a NaN value too
    from cardio_stats import Estimate, format_ci

    refused = Estimate("calibration_slope", float("nan"), None, None, 0.95, "logistic recalibration", 29,
                       warnings=["not estimable: singular matrix"])
    assert format_ci(refused) == "not estimable"
    assert format_ci(Estimate("brier", float("nan"), None, None, 0.95, "x", 29, warnings=["no records"])) == "–"
    gone = [r for r in rows if r["metric"] != "calibration_intercept"]
    assert "calibration intercept" not in metric_table(metric_rows(gone), CALIBRATION)
