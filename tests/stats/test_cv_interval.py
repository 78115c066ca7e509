"""The interval of a cross-validated AUC (cardio.stats.cv_auc): formula, callables, the run's rows, the legend."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import t as t_dist
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from cardio import CardioError
from cardio.stats import (
    CV_METHOD,
    StatsError,
    cross_validated_auc,
    cross_validated_auc_difference,
    cv_auc_difference,
    cv_auc_interval,
    delong_ci,
    evaluate_predictions,
    format_ci,
    paired_test,
    plot_roc,
)

ROOT = Path(__file__).resolve().parents[2]


def _data(n: int = 60, seed: int = 0, shift: float = 1.0):
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n // 2), np.zeros(n - n // 2)].astype(int)
    x = rng.normal(size=(n, 3)) + shift * y[:, None] * np.array([1.0, 0.0, 0.0])
    return x, y


def test_corrected_interval_is_the_formula_written_out():
    rng = np.random.default_rng(1)
    y = np.tile([1, 0, 0], 40)
    s = y * 0.7 + rng.normal(size=y.size)
    fold = np.arange(y.size) % 5
    est = cv_auc_interval(y, s, fold)
    per = np.array([roc_auc_score(y[fold == f], s[fold == f]) for f in range(5)])
    var = (1 / 5 + 24 / 96) * per.var(ddof=1)  # n_test / n_train = 24 / 96 patients
    q = t_dist.ppf(0.975, 4)
    assert est.estimate == pytest.approx(per.mean(), abs=1e-12)
    assert (est.ci_low, est.ci_high) == pytest.approx((per.mean() - q * var**0.5, per.mean() + q * var**0.5))
    assert est.method == CV_METHOD and est.extra["df"] == 4 and est.extra["per_fold"] == pytest.approx(per)
    s2 = rng.normal(size=y.size)
    ab, ba = cv_auc_difference(y, s, s2, fold), cv_auc_difference(y, s2, s, fold)
    assert (ab.estimate, ab.ci_low, ab.extra["p_value"]) == pytest.approx((-ba.estimate, -ba.ci_high,
                                                                           ba.extra["p_value"]))


def test_difference_of_two_targets_reads_each_score_against_its_own_labels():
    """y_b: one model's AUC for one target minus its AUC for another (echo_cmr's WMA - LGE), fold by fold."""
    rng = np.random.default_rng(2)
    y = np.tile([1, 0, 0, 1], 30)
    y_b = rng.permutation(y)
    s, s_b = y * 1.5 + rng.normal(size=y.size), rng.normal(size=y.size)
    fold = np.arange(y.size) % 5
    d = cv_auc_difference(y, s, s_b, fold, y_b=y_b)
    per = np.array([roc_auc_score(y[fold == f], s[fold == f]) - roc_auc_score(y_b[fold == f], s_b[fold == f])
                    for f in range(5)])
    q, se = t_dist.ppf(0.975, 4), ((1 / 5 + 24 / 96) * per.var(ddof=1)) ** 0.5
    assert d.estimate == pytest.approx(per.mean(), abs=1e-12) and d.extra["per_fold"] == pytest.approx(per)
    assert (d.ci_low, d.ci_high) == pytest.approx((per.mean() - q * se, per.mean() + q * se))
    same = cv_auc_difference(y, s, s_b, fold)
    assert cv_auc_difference(y, s, s_b, fold, y_b=y).estimate == same.estimate != d.estimate
    one_class = np.where(fold == 3, 0, y_b)
    with pytest.raises(StatsError, match="fold 3 holds records of one class of y_b only"):
        cv_auc_difference(y, s, s_b, fold, y_b=one_class)
    with pytest.raises(StatsError, match="y_b has 119 values"):
        cv_auc_difference(y, s, s_b, fold, y_b=y_b[1:])


def test_callable_is_fitted_in_cardios_patient_folds_and_the_difference_is_paired():
    x, y = _data(80, shift=2.0)
    ids = np.repeat(np.arange(40), 2)  # two records per patient: folds never split a patient
    seen = []

    def lr(cols):
        def fit_predict(train, test):
            seen.append((set(ids[train]), set(ids[test])))
            return LogisticRegression().fit(x[train][:, cols], y[train]).decision_function(x[test][:, cols])
        return fit_predict

    a = cross_validated_auc(y, ids, lr([0, 1]), seed=3)
    assert all(not (tr & te) for tr, te in seen) and len(seen) == 5
    b = cross_validated_auc(y, ids, lr([1, 2]), seed=3)
    d = cross_validated_auc_difference(y, ids, lr([0, 1]), lr([1, 2]), seed=3)
    assert d.estimate == pytest.approx(a.estimate - b.estimate, abs=1e-12)
    assert d.ci_low < d.estimate < d.ci_high and 0 <= d.extra["p_value"] <= 1
    assert a.ci_low > 0.5 and a.n == 80  # a real signal is found
    rep = cross_validated_auc(y, ids, lr([0, 1]), repeats=3, seed=3)
    assert rep.extra["n_folds"] == 15 and rep.extra["df"] == 4  # K - 1: the repeats average the variance


def test_bad_inputs_are_one_clear_error():
    y = np.tile([1, 0], 10)
    with pytest.raises(StatsError, match="one class only"):
        cv_auc_interval(y, np.arange(20.0), np.where(y == 1, 0, np.arange(20) % 3 + 1))
    with pytest.raises(StatsError, match="at least 2 folds"):
        cv_auc_interval(y, np.arange(20.0), np.zeros(20))
    with pytest.raises(StatsError, match="returned 1 scores"):
        cross_validated_auc(y, None, lambda tr, te: np.zeros(1), folds=2)


def _predictions(folds: int) -> pd.DataFrame:
    n = 300
    x, y = _data(n, seed=4, shift=2.0)
    fold = np.arange(n) % folds
    frames = [pd.DataFrame({"record_id": [f"r{i}" for i in range(n)], "patient_id": [f"p{i}" for i in range(n)],
                            "model": m, "task": "crt", "kind": "binary", "y_true": y, "y_score": x[:, c],
                            "fold": [f"fold{f}" for f in fold]}) for m, c in (("a", 0), ("b", 1))]
    return pd.concat(frames, ignore_index=True)


def test_evaluation_leads_with_the_cross_validated_auc_and_difference():
    est, tests = evaluate_predictions(_predictions(5), n_resamples=100)
    a = [e for e in est if e["model"] == "a" and e["metric"] == "auc" and e["fold"] == "pooled"]
    assert [e["method"] for e in a] == [CV_METHOD, "delong", "bootstrap-percentile"]
    assert a[1]["extra"]["training_variability"].startswith("ignored")
    [t] = tests
    assert t["extra"]["cv_method"] == CV_METHOD and t["extra"]["cv_diff_ci_low"] > 0  # a carries the signal
    assert t["extra"]["cv_p_adjusted"] == pytest.approx(t["extra"]["cv_p_value"])  # one test: Holm changes nothing
    ba = paired_test(tests, "b", "a", interval="cv")
    assert (ba["diff"], ba["low"], ba["p"]) == (-t["extra"]["cv_diff"], -t["extra"]["cv_diff_ci_high"],
                                                t["extra"]["cv_p_value"])
    assert paired_test(tests, "a", "b")["high"] == t["extra"]["diff_ci_high"]  # DeLong's, as plugins read it


def test_one_fold_gets_the_small_sample_delong_headline():
    est, tests = evaluate_predictions(_predictions(1), n_resamples=100)
    head = [e for e in est if e["model"] == "a" and e["metric"] == "auc"][0]
    ref = delong_ci(_predictions(1).query("model == 'a'")["y_true"], _predictions(1).query("model == 'a'")["y_score"],
                    interval="logit")
    assert head["method"] == "delong-logit" and head["ci_low"] == pytest.approx(ref.ci_low)
    assert "cv_diff" not in tests[0]["extra"]


def test_logit_interval_is_the_back_transformed_wald_interval():
    rng = np.random.default_rng(2)
    y = np.tile([1, 0], 20)
    s = y + rng.normal(size=40)
    plain, logit = delong_ci(y, s), delong_ci(y, s, interval="logit")
    a, se = plain.estimate, plain.extra["se"]
    lo, hi = np.log(a / (1 - a)) + np.array([-1, 1]) * 1.959963984540054 * se / (a * (1 - a))
    assert (logit.ci_low, logit.ci_high) == pytest.approx((1 / (1 + np.exp(-lo)), 1 / (1 + np.exp(-hi))))
    assert logit.estimate == a and 0 < logit.ci_low < a < logit.ci_high < 1
    with pytest.raises(StatsError, match="unknown DeLong interval"):
        delong_ci(y, s, interval="wald")


def test_roc_legend_carries_the_tables_interval():
    x, y = _data(60)
    fold = np.arange(60) % 5
    shown = cv_auc_interval(y, x[:, 0], fold)
    fig = plot_roc({"model": (y, x[:, 0])}, aucs={"model": shown}, n_resamples=20)
    legend = fig.axes[0].get_legend()
    texts = " ".join(t.get_text() for t in legend.get_texts())
    assert format_ci(shown, sep="–") in texts and CV_METHOD in legend.get_title().get_text()
    assert format_ci(delong_ci(y, x[:, 0]), sep="–") not in texts


def test_performance_table_and_estimate_table_show_the_headline():
    from cardio.report.performance import HEADLINE_AUC
    from cardio.stats import estimate_table
    from cardio.stats.formatting import HEADLINE_AUC as ORDER

    assert tuple(HEADLINE_AUC) == ORDER and ORDER[0] == CV_METHOD  # the names, kept without importing scipy
    est, _ = evaluate_predictions(_predictions(5), n_resamples=100)
    head = [e for e in est if e["model"] == "a" and e["method"] == CV_METHOD][0]
    assert estimate_table(est, metric="auc").set_index("model").loc["a", "auc"] == format_ci(head)


def test_testing_reads_the_headline_rows_a_control_asserts_on():
    from cardio.testing import headline, paired, pooled

    est, tests = evaluate_predictions(_predictions(5), n_resamples=100)
    metrics = {"estimates": est, "tests": tests}
    head = headline(metrics, "auc", model="a")
    assert head["method"] == CV_METHOD and head["extra"]["df"] == 4
    assert pooled(metrics, "auc", model="a")[0]["method"] == "delong"  # pooled's default: the fixed-model row
    [t] = tests
    ab, ba = paired(metrics, "a", "b"), paired(metrics, "b", "a")
    assert ab["method"] == CV_METHOD and (ab["estimate"], ab["ci_low"]) == (t["extra"]["cv_diff"],
                                                                            t["extra"]["cv_diff_ci_low"])
    assert (ba["estimate"], ba["ci_low"], ba["ci_high"]) == (-ab["estimate"], -ab["ci_high"], -ab["ci_low"])
    one = evaluate_predictions(_predictions(1), n_resamples=100)
    assert headline({"estimates": one[0], "tests": one[1]}, "auc", model="a")["method"] == "delong-logit"
    with pytest.raises(CardioError, match="no paired test of a and c"):
        paired(metrics, "a", "c")


def test_coverage_benchmark_smoke():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "cv_coverage.py"), "--smoke"],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    assert "AUC: cv-corrected t (after)" in out and "ΔAUC: paired DeLong (before)" in out
    assert "fixed scores: clustered DeLong, logit" in out
