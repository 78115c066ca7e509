"""A plugin's paper table pivots the core's estimates: one interval per number, the performance table's."""
from __future__ import annotations

from cardio_stats import estimate_table, pick


def _e(model, metric, est, lo, hi, method="delong", fold="pooled", **kw):
    return {"model": model, "task": "responder", "metric": metric, "method": method, "fold": fold, "estimate": est,
            "ci_low": lo, "ci_high": hi, "repeat": 0, **kw}


ESTIMATES = [_e("a", "auc", 0.8, 0.7, 0.9), _e("a", "auc", 0.8, 0.71, 0.88, method="bootstrap-percentile"),
             _e("b", "auc", 0.6, 0.5, 0.7), _e("b", "brier", 0.2, 0.1, 0.3, method="bootstrap-percentile"),
             _e("b", "auc", 0.65, 0.5, 0.8, fold="fold0"), _e("b", "auc", 0.9, 0.8, 1.0, subgroup="sex=F"),
             _e("b", "auc", 0.61, 0.51, 0.71, repeat=1)]


def test_the_table_shows_the_pooled_delong_auc_of_repeat_0_only():
    t = estimate_table(ESTIMATES)
    assert t.to_dict("records") == [{"model": "a", "auc": "0.800 [0.700, 0.900]", "brier": "–"},
                                    {"model": "b", "auc": "0.600 [0.500, 0.700]", "brier": "0.200 [0.100, 0.300]"}]
    assert estimate_table(ESTIMATES, metric="auc", method="bootstrap-percentile")["auc"].tolist() == [
        "0.800 [0.710, 0.880]"]
    fold0 = estimate_table(ESTIMATES, rows="fold", metric="auc", fold="fold0")
    assert fold0["auc"].tolist() == ["0.650 [0.500, 0.800]"]


def test_pick_matches_fields_and_extra():
    tagged = [{**ESTIMATES[0], "extra": {"over": "b"}}]
    assert pick(tagged, metric="auc", over="b") == tagged and pick(tagged, over="c") == []
    assert [e["estimate"] for e in pick(ESTIMATES, model="b", metric="auc", repeat=1)] == [0.61]
    assert [e["estimate"] for e in pick(ESTIMATES, model="b", metric="auc", subgroup="sex=F")] == [0.9]


def test_headline_auc_is_the_performance_tables_row_and_paired_test_names_its_interval():
    from cardio_stats import CV_METHOD, headline_auc, paired_test

    cv = _e("a", "auc", 0.78, 0.6, 0.95, method=CV_METHOD)
    assert headline_auc([*ESTIMATES, cv], model="a") == cv  # K folds: the cross-validated AUC, not DeLong's
    delong_row = headline_auc(ESTIMATES, model="a")
    assert delong_row is not None and delong_row["ci_low"] == 0.7  # no cv row: DeLong's, as the performance table
    assert headline_auc(ESTIMATES, model="a", fold="fold0") is None and headline_auc(ESTIMATES, model="c") is None
    # the top level is what the report prints (here the cross-validated difference), the pooled DeLong test a variant
    test = {"model_a": "a", "model_b": "b", "method": CV_METHOD, "estimate": 0.15, "ci_low": -0.05, "ci_high": 0.35,
            "p_value": 0.12, "p_adjusted": 0.24,
            "extra": {"diff": 0.15, "diff_ci_low": -0.05, "diff_ci_high": 0.35,
                      "delong": {"method": "delong-paired", "diff": 0.2, "diff_ci_low": 0.1, "diff_ci_high": 0.3,
                                 "p_value": 0.01, "p_adjusted": 0.02}}}
    shown = paired_test([test], "b", "a", interval="cv")
    assert shown is not None
    assert (shown["diff"], shown["low"], shown["high"]) == (-0.15, -0.35, 0.05)
    assert (shown["p"], shown["p_holm"], shown["method"]) == (0.12, 0.24, CV_METHOD)
    delong = paired_test([test], "a", "b")
    assert delong is not None
    assert (delong["p"], delong["p_holm"], delong["method"]) == (0.01, 0.02, "paired DeLong")


def test_a_difference_beside_aucs_it_was_not_formed_from_names_the_two_it_was():
    """A model refitted for nested CV (its AUC the mean over the refits' splits) against one that is not: their
    difference is paired on the run's folds, so a table printing both AUCs beside it adds the two it differences,
    read in the order asked; where the printed AUCs are those two, nothing is added."""
    from cardio_stats import CV_DIFF_METHOD, format_paired, paired_test

    test = {"model_a": "resnet", "model_b": "logistic", "method": CV_DIFF_METHOD, "estimate": -0.235,
            "ci_low": -0.348, "ci_high": -0.129, "p_value": 0.001, "p_adjusted": 0.002,
            "extra": {"auc_a": 0.6296, "auc_b": 0.8644}}
    turned = paired_test([test], "logistic", "resnet", interval="cv")
    assert turned is not None and turned["aucs"] == (0.8644, 0.6296)
    assert format_paired(turned, (0.841, 0.630)) == "+0.235 [+0.129, +0.348], from 0.864 − 0.630 on the run's folds"
    assert format_paired(turned, (0.8644, 0.6296)) == "+0.235 [+0.129, +0.348]"
    assert format_paired(turned, (0.841, None), interval=False) == "+0.235, from 0.864 − 0.630 on the run's folds"
    assert format_paired(None, (0.8, 0.7)) == "–"
    holdout = {**test, "method": "delong-paired", "extra": {}}  # one fold: no fold AUCs to name
    assert format_paired(paired_test([holdout], "resnet", "logistic"), (0.63, 0.84)) == "-0.235 [-0.348, -0.129]"
    from cardio_stats import paired_note

    assert paired_note(["0.8", format_paired(turned, (0.841, 0.630))]).startswith(" Where a model refitted")
    assert paired_note(["0.8", "+0.235 [+0.129, +0.348]"]) == ""
