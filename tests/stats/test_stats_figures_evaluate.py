"""Figures render without pyplot; evaluate_predictions on a long predictions table (pooled, per fold, tests)."""
from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from statsmodels.stats.multitest import multipletests

from cardio_stats import (
    StatsError,
    delong_ci,
    delong_test,
    evaluate_predictions,
    plot_bland_altman,
    plot_calibration,
    plot_forest,
    plot_roc,
    univariate_screen,
)
from cardio_stats.agreement import BIAS_T, LOA_EXACT
from cardio_stats.clustered import EXACT_EFFECTIVE, LOG_T
from cardio_stats.cv_metrics import FOLD_MEAN_ONLY


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def test_figures_render_to_png():
    rng = np.random.default_rng(0)
    y = (rng.random(120) < 0.4).astype(int)
    a, b = rng.normal(size=120) + y, rng.normal(size=120) + 0.4 * y
    fig = plot_roc({"cnn": (y, a)}, n_resamples=100, title="t")
    legend = fig.axes[0].get_legend()
    assert legend is not None
    labels = [t.get_text() for t in legend.get_texts()]
    est = delong_ci(y, a)
    assert labels[0] == (f"cnn: AUC {est.estimate:.3f} [{est.ci_low:.3f}–{est.ci_high:.3f}]\n"
                         f"n = {y.sum()} positive, {(1 - y).sum()} negative")
    prob = 1 / (1 + np.exp(-a))
    df = pd.DataFrame({"y": y, "a": a, "b": b})
    for f in (fig, plot_roc({"cnn": (y, a), "qrs": (y, b)}, n_resamples=100), plot_calibration(y, prob, n_bins=8),
              plot_bland_altman(a, a + rng.normal(size=120)), plot_forest(univariate_screen(df, "y", ["a", "b"]))):
        assert isinstance(f, Figure) and _png(f).startswith(b"\x89PNG")
    with pytest.raises(StatsError, match=r"\[0, 1\]"):
        plot_calibration(y, a)


def _predictions(seed=0, n=240, folds=4):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    rows = []
    for model, effect in (("cnn", 1.2), ("logistic", 0.7), ("qrs", 0.3)):
        score = 1 / (1 + np.exp(-(rng.normal(size=n) + effect * y - 0.4)))
        rows.append(pd.DataFrame({
            "record_id": np.arange(n), "patient_id": np.arange(n) // 2, "model": model, "task": "crt",
            "kind": "binary", "y_true": y, "y_score": score, "fold": np.arange(n) % folds,
            "threshold": np.where(np.arange(n) % folds == 0, 0.45, 0.5)}))
    lvef = rng.normal(30, 7, n)
    rows.append(pd.DataFrame({"record_id": np.arange(n), "patient_id": np.arange(n) // 2, "model": "cnn",
                              "task": "lvef", "kind": "regression", "y_true": lvef,
                              "y_score": lvef + rng.normal(0, 4, n), "fold": np.arange(n) % folds,
                              "threshold": np.nan}))
    return pd.concat(rows, ignore_index=True)


def test_evaluate_predictions_pooled_per_fold_and_paired_tests():
    pred = _predictions()
    est, tests = evaluate_predictions(pred, n_resamples=200, seed=1)
    json.dumps(est, allow_nan=False)
    json.dumps(tests, allow_nan=False)
    cnn = pred[(pred.model == "cnn") & (pred.task == "crt")]
    pooled = [e for e in est if e["model"] == "cnn" and e["task"] == "crt" and e["fold"] == "pooled"]
    by_method = {(e["metric"], e["method"]): e for e in pooled}
    # two records per patient: the DeLong variance is clustered by patient, the bootstraps resample patients
    ref = delong_ci(cnn.y_true, cnn.y_score, groups=cnn.patient_id)
    assert by_method[("auc", "delong")]["estimate"] == pytest.approx(ref.estimate)
    assert by_method[("auc", "delong")]["ci_low"] == pytest.approx(ref.ci_low)
    assert by_method[("auc", "delong")]["extra"]["variance"] == "delong-clustered (Obuchowski 1997)"
    assert by_method[("auc", "delong")]["extra"]["n_groups"] == 120
    assert by_method[("auc", "bootstrap-percentile")]["n_resamples"] == 200
    assert by_method[("auc", "bootstrap-percentile")]["extra"]["resampled"] == "patients"
    assert {m for m, _ in by_method} == {"auc", "accuracy", "sensitivity", "specificity", "ppv", "npv", "f1",
                                         "brier", "calibration_intercept", "calibration_slope"}
    # K folds: the thresholded and calibration rows are fold means; one model's intervals, which resample
    # patients, are kept under extra.pooled
    sens = by_method[("sensitivity", FOLD_MEAN_ONLY)]  # four folds: no interval (cv_metrics.MIN_FOLDS)
    assert sens["warnings"][0].startswith("no interval: 4 folds")
    assert sens["extra"]["pooled"]["method"] == EXACT_EFFECTIVE  # two records a patient
    assert by_method[("f1", FOLD_MEAN_ONLY)]["extra"]["pooled"]["method"] == EXACT_EFFECTIVE
    assert by_method[("calibration_slope", FOLD_MEAN_ONLY)]["extra"]["pooled"]["method"] == (
        "logistic recalibration (Wald, cluster-robust by patient)")
    pos = cnn[cnn.y_true == 1]
    assert sens["extra"]["pooled"]["estimate"] == pytest.approx(np.mean(pos.y_score >= pos.threshold))
    assert sens["estimate"] == pytest.approx(np.mean([np.mean(g.y_score >= g.threshold)
                                                      for _, g in pos.groupby("fold")]))
    assert all(e["subgroup"] is None for e in est)
    assert not any("independent" in w for e in est for w in e["warnings"])
    per_fold = [e for e in est if e["model"] == "cnn" and e["task"] == "crt" and e["fold"] != "pooled"]
    assert sorted(e["fold"] for e in per_fold) == ["0", "1", "2", "3"]
    assert all(e["metric"] == "auc" and e["method"] == "delong" for e in per_fold)
    f0 = cnn[cnn.fold == 0]
    assert [e for e in per_fold if e["fold"] == "0"][0]["estimate"] == pytest.approx(
        delong_ci(f0.y_true, f0.y_score).estimate)
    lvef = {e["metric"] for e in est if e["task"] == "lvef"}
    assert lvef == {"mae", "rmse", "r2", "ba_bias", "ba_loa_low", "ba_loa_high"}
    # K folds: fold means (four folds: no interval), one model's intervals of the pooled values under extra.pooled
    assert all(e["method"] == FOLD_MEAN_ONLY for e in est if e["task"] == "lvef")
    assert {e["extra"]["pooled"]["method"] for e in est if e["task"] == "lvef"} == {LOG_T, BIAS_T, LOA_EXACT,
                                                                                      "no interval"}
    assert len(tests) == 3  # three models, one binary task
    t = [t for t in tests if (t["model_a"], t["model_b"]) == ("cnn", "logistic")][0]
    lg = pred[(pred.model == "logistic") & (pred.task == "crt")]
    # four folds: no cross-validated interval (it needs 5), so the row says why; the pooled DeLong test is its variant
    assert t["method"] == "cv: no interval" and t["ci_low"] is None and any("at least 5" in w for w in t["warnings"])
    assert t["extra"]["delong"]["statistic"] == pytest.approx(delong_test(cnn.y_true, cnn.y_score, lg.y_score,
                                                                          groups=cnn.patient_id).statistic)
    assert t["extra"]["variance"] == "delong-clustered (Obuchowski 1997)"
    assert t["task"] == "crt" and t["extra"]["model_b"] == "logistic"
    # the three paired tests of the task are one family: Holm-adjusted p beside the raw one
    raw = [x["extra"]["delong"]["p_value"] for x in tests]
    assert [x["extra"]["delong"]["p_adjusted"] for x in tests] == pytest.approx(
        list(multipletests(raw, method="holm")[1]))
    assert all("holm over the 3 paired test(s)" in x["adjustment"] for x in tests)


def test_evaluate_fold_with_one_class_is_warned_not_fatal():
    pred = _predictions(folds=4)
    pred.loc[(pred.fold == 2) & (pred.kind == "binary"), "y_true"] = 0
    est, _ = evaluate_predictions(pred[pred.kind == "binary"], n_resamples=50)
    fold2 = [e for e in est if e["model"] == "cnn" and e["fold"] == "2"][0]
    assert fold2["estimate"] is None and "only one class" in fold2["warnings"][0]


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_evaluate_non_finite_score_names_model_and_task(bad):
    pred = _predictions()
    pred.loc[(pred.model == "logistic") & (pred.record_id == 5), "y_score"] = bad
    with pytest.raises(StatsError, match=r"model=logistic, task=crt: y_score has"):
        evaluate_predictions(pred, n_resamples=50)


def test_evaluate_input_errors():
    pred = _predictions()
    with pytest.raises(StatsError, match="lacks column"):
        evaluate_predictions(pred.drop(columns="fold"))
    with pytest.raises(StatsError, match="unknown kind"):
        evaluate_predictions(pred.assign(kind="survival"))
    with pytest.raises(StatsError, match="more than once"):
        evaluate_predictions(pd.concat([pred, pred.iloc[:1]]), n_resamples=50)
    with pytest.raises(StatsError, match="task=crt.*two classes"):
        evaluate_predictions(pred[pred.kind == "binary"].assign(y_true=2), n_resamples=50)
    with pytest.raises(StatsError, match="empty"):
        evaluate_predictions(pred.iloc[:0])


def test_pooled_auc_below_chance_without_signal_is_flagged_beside_the_fold_mean():
    # No signal: each fold's "model" predicts the positive rate of the other folds (what a model that learned
    # nothing returns). Folds rich in positives get the lowest scores, so the pooled ranking falls below chance.
    rng = np.random.default_rng(3)
    n, folds = 200, 20
    y = (rng.random(n) < 0.4).astype(int)
    fold = rng.permutation(np.arange(n) % folds)
    score = np.array([y[fold != fold[i]].mean() for i in range(n)]) + rng.normal(0, 1e-4, n)
    pred = pd.DataFrame({"record_id": np.arange(n), "patient_id": np.arange(n), "model": "null", "task": "crt",
                         "kind": "binary", "y_true": y, "y_score": score, "fold": fold})
    est, _ = evaluate_predictions(pred, n_resamples=50)
    auc = [e for e in est if e["metric"] == "auc" and e["method"] == "delong" and e["fold"] == "pooled"][0]
    fold_mean = auc["extra"]["fold_summary"]["mean"]
    assert auc["ci_high"] < 0.5 and abs(fold_mean - 0.5) < 0.1
    assert any("below chance" in w and f"{fold_mean:.3f}" in w for w in auc["warnings"])
    assert auc["extra"]["below_chance"] is True
    # a model with signal gets no such warning
    strong, _ = evaluate_predictions(_predictions(), n_resamples=50)
    assert not any("below chance" in w for e in strong for w in e["warnings"])
    assert not any((e.get("extra") or {}).get("below_chance") for e in strong)
