"""The fold-level rows of a K-fold run (issue 53): thresholded proportions, Brier score, calibration slope and
intercept, IDI and NRI, a continuous target's MAE, RMSE, R² and Bland–Altman rows, each the mean of its per-fold
values; the interval, where one is printed, the corrected t of those values (the MAE's and RMSE's: their records'
noise and the folds' excess spread). Each test fails if the method were the pooled one or computed otherwise."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit
from scipy.stats import beta
from scipy.stats import t as t_dist

from cardio_stats import (
    calibration,
    cv_agreement,
    cv_binary_metrics,
    cv_calibration,
    cv_reclassification,
    evaluate_predictions,
)
from cardio_stats.clustered import LOG_T
from cardio_stats.cv_metrics import (
    BRIER_NOISE_FACTOR,
    FOLD_MEAN,
    FOLD_MEAN_CONTROL,
    FOLD_MEAN_EXACT_EQUAL,
    FOLD_MEAN_EXACT_NOISE,
    FOLD_MEAN_MOVER,
    FOLD_MEAN_NOISE,
    FOLD_MEAN_ONLY,
    FOLD_MEAN_WILSON,
    FOLD_MEAN_WILSON_EQUAL,
    FOLD_MEAN_WILSON_NOISE,
    LOA_NOISE_FACTOR,
    NOISE_FACTORS,
    PROPORTION_NOISE_FACTORS,
    WHY_NOT,
    firth_slope,
)
from cardio_stats.thresholds import EXACT


def _corrected_t(values: list[float] | np.ndarray, k: int) -> tuple[float, float, float]:
    """Nadeau & Bengio's interval of K equal folds, by hand: var = (1/K + 1/(K-1)) S^2, t with K-1 df."""
    v = np.asarray(values)
    se = np.sqrt((1 / k + 1 / (k - 1)) * v.var(ddof=1))
    q = t_dist.ppf(0.975, k - 1)
    return v.mean(), v.mean() - q * se, v.mean() + q * se


def _binomial(p: float, var: float, df: float, records: float, exact: bool = False) -> tuple[float, float]:
    """A proportion's interval at its effective sample size, by hand: n = min(p (1 - p) / var, records); Wilson's
    score interval with t's quantile, or (`exact`) Clopper-Pearson's beta quantiles at n (z / t)² trials."""
    n, q = min(p * (1 - p) / var, records), float(t_dist.ppf(0.975, df))
    if exact:
        n *= (1.959964 / q) ** 2
        x = p * n
        return float(beta.ppf(0.025, x, n - x + 1)), float(beta.ppf(0.975, x + 1, n - x))
    centre, half = p + q * q / (2 * n), q * np.sqrt(p * (1 - p) / n + q * q / (4 * n * n))
    return (centre - half) / (1 + q * q / n), (centre + half) / (1 + q * q / n)


def _noisy(k: np.ndarray, d: np.ndarray, c: float, exact: bool = False) -> tuple[float, float]:
    """A proportion's interval over K folds of d records (one a patient; test/train 1/4), k hits each, by hand: each
    fold's noise the variance of the hits' mean about p~ = (k + 1/2)/(d + 1), d/(d-1) Σ (hit - p~)² / d²;
    var = c v/K + (1/K + 1/(K-1)) max(0, S² - v) of the proportions, Satterthwaite's df."""
    p = (k + 0.5) / (d + 1)
    noise = d / (d - 1) * (k * (1 - p) ** 2 + (d - k) * p**2) / d**2
    r, kf = k / d, k.size
    a, b = c * noise.mean() / kf, (1 / kf + 1 / (kf - 1)) * max(0.0, float(np.var(r, ddof=1)) - noise.mean())
    df = (kf - 1) * ((a + b) / b) ** 2 if b > 0 else np.inf
    return _binomial(float(r.mean()), a + b, df, float(d.sum()), exact)


def _corrected_binomial(k: np.ndarray, d: np.ndarray, ratio: float) -> tuple[float, float]:
    """Wilson's interval at the effective sample size of the corrected t's variance (1/K + ratio) S², K - 1 df."""
    r = k / d
    return _binomial(float(r.mean()), (1 / r.size + ratio) * float(np.var(r, ddof=1)), r.size - 1, float(d.sum()))


def test_thresholded_proportions_are_the_mean_of_the_per_fold_ones_with_their_intervals():
    # five folds of 20 patients (one record each: 10 positive, 10 negative), each fold's own threshold; fold f
    # calls hits[f] of its positives and false[f] of its negatives positive
    hits, false, thr = [7, 6, 8, 7, 9], [2, 3, 1, 2, 2], [0.5, 0.4, 0.6, 0.45, 0.55]
    y = np.tile(np.r_[np.ones(10), np.zeros(10)], 5)
    score = np.concatenate([np.where(np.r_[np.arange(10) < h, np.arange(10) < f], t + 0.01, t - 0.01)
                            for h, f, t in zip(hits, false, thr)])
    fold = np.repeat(["a", "b", "c", "d", "e"], 20)
    out = cv_binary_metrics(y, score, np.repeat(thr, 20), fold)
    sens = out["sensitivity"]
    assert sens.extra["per_fold"] == pytest.approx([.7, .6, .8, .7, .9])
    # Wilson's interval at the effective sample size of the corrected t's variance; the estimate the plain mean
    assert (sens.estimate, sens.ci_low, sens.ci_high) == pytest.approx(
        (0.74, *_corrected_binomial(np.array(hits, dtype=float), np.full(5, 10.0), 1 / 4)))
    assert sens.method == FOLD_MEAN_WILSON and sens.extra["df"] == 4
    assert out["specificity"].extra["per_fold"] == pytest.approx([.8, .7, .9, .8, .8])
    # the PPV and accuracy read each fold's test noise (PROPORTION_NOISE_FACTORS), the sensitivity does not
    ppv, acc = out["ppv"], out["accuracy"]
    assert ppv.extra["per_fold"] == pytest.approx([7 / 9, 6 / 9, 8 / 9, 7 / 9, 9 / 11])
    tp, fp = np.array(hits, dtype=float), np.array(false, dtype=float)
    assert (ppv.ci_low, ppv.ci_high) == pytest.approx(_noisy(tp, tp + fp, PROPORTION_NOISE_FACTORS["ppv"],
                                                             exact=True))  # Clopper-Pearson's (PROPORTION_INTERVALS)
    assert (acc.ci_low, acc.ci_high) == pytest.approx(_noisy(tp + 10 - fp, np.full(5, 20.0),
                                                             PROPORTION_NOISE_FACTORS["accuracy"]))
    assert ppv.method == FOLD_MEAN_EXACT_NOISE and acc.method == FOLD_MEAN_WILSON_NOISE
    assert acc.extra["noise_factor"] == 1.75
    assert out["f1"].extra["per_fold"] == pytest.approx([14 / 19, 12 / 19, 16 / 19, 14 / 19, 18 / 21])
    assert out["f1"].ci_low is None and out["f1"].warnings == [WHY_NOT["f1"]]
    assert sens.extra["per_fold_counts"][1] == [6, 3, 7, 4]  # fold b's tp, fp, tn, fn


def test_a_fold_without_positives_leaves_the_row_without_a_cross_validated_value():
    y = np.r_[[1, 0, 0, 1], [0, 0, 0, 0], [1, 1, 0, 0]]
    out = cv_binary_metrics(y, np.linspace(0, 1, 12), 0.5, np.repeat(["f0", "f1", "f2"], 4))
    assert np.isnan(out["sensitivity"].estimate) and out["sensitivity"].ci_low is None
    assert "undefined in fold(s) f1" in out["sensitivity"].warnings[0]
    assert np.isfinite(out["specificity"].estimate)


def test_firth_slope_of_a_binary_score_is_the_log_odds_ratio_with_a_half_added_to_each_cell():
    # Firth's estimate with one binary covariate is the Haldane-corrected log odds ratio (Firth 1993), finite
    # even where a cell is empty (the maximum-likelihood slope is infinite there)
    x = np.r_[np.zeros(10), np.ones(10)]
    y = np.r_[[1] * 3 + [0] * 7, [1] * 6 + [0] * 4].astype(float)
    assert firth_slope(y, x) == pytest.approx(np.log((6.5 * 7.5) / (4.5 * 3.5)), abs=1e-5)
    y_sep = np.r_[[0] * 10, [1] * 7 + [0] * 3].astype(float)
    assert firth_slope(y_sep, x) == pytest.approx(np.log((7.5 * 10.5) / (3.5 * 0.5)), abs=1e-5)


def test_calibration_slope_of_folds_with_their_own_intercepts_is_theirs_not_the_pooled_one():
    # each fold's risks are exactly calibrated (slope 1) but the folds' models disagree on the intercept, as fold
    # models fitted on different training sets do: pooled, the slope is pulled below 1; fold by fold it is not
    rng = np.random.default_rng(3)
    n, shifts = 2000, [-1.5, -0.5, 0.5, 1.5]
    lp = rng.normal(size=4 * n)
    fold = np.repeat(np.arange(4), n)
    y = (rng.random(4 * n) < expit(lp)).astype(float)
    risk = expit(lp + np.repeat(shifts, n))  # reported risks: each fold's intercept off by its shift
    pooled = calibration(y, risk, n_resamples=100)["calibration_slope"].estimate
    cv = cv_calibration(y, risk, fold)
    slope = cv["calibration_slope"]
    assert pooled < 0.85
    assert slope.estimate == pytest.approx(1.0, abs=0.05)
    assert slope.ci_low is None and slope.method == FOLD_MEAN_ONLY and slope.warnings == [WHY_NOT["calibration_slope"]]
    intercept = cv["calibration_intercept"]
    assert intercept.extra["per_fold"] == pytest.approx([-s for s in shifts], abs=0.15)
    assert intercept.ci_low is None and intercept.warnings == [WHY_NOT["calibration_intercept"]]


def test_intercept_of_a_fold_with_constant_risk_is_the_logit_of_its_event_rate_and_brier_is_per_fold():
    y = np.r_[[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 0]].astype(float)
    risk = np.r_[np.full(16, 0.5), [0.9, 0.9, 0.9, 0.1]]
    fold = np.repeat(["a", "b", "c", "d", "e"], 4)
    out = cv_calibration(y, risk, fold)
    assert out["calibration_intercept"].extra["per_fold"][:4] == pytest.approx([logit(.25), 0, logit(.75), logit(.25)],
                                                                              abs=1e-6)
    brier = out["brier"]  # four folds hold one patient of a class: no noise to read, the corrected t
    assert brier.extra["per_fold"] == pytest.approx([0.25, 0.25, 0.25, 0.25, 0.01])
    assert (brier.estimate, brier.ci_low, brier.ci_high) == pytest.approx(_corrected_t([.25] * 4 + [.01], 5))
    assert brier.method == FOLD_MEAN and brier.warnings[-1].startswith("fold(s) a, c, d, e hold one patient of a class")


def test_brier_reads_each_folds_noise_within_its_classes_and_the_folds_excess_spread():
    """The Brier score's interval is the MAE's kind (factor BRIER_NOISE_FACTOR): each fold's noise the patient-
    clustered variance of each class's mean squared error, weighted (n_class / n)², by hand here."""
    pred = _kfold_predictions(seed=3)
    y, p = pred.y_true.to_numpy(float), pred.y_score.to_numpy()
    ids = np.arange(y.size) // 2  # two records a patient, 20 patients a fold
    fold = ids % 5
    out = cv_calibration(y, p, fold, groups=ids)["brier"]
    folds = [fold == f for f in range(5)]
    e = [(p[f] - y[f]) ** 2 for f in folds]
    noise = [sum((np.sum(y[f] == c) / f.sum()) ** 2 * _clustered_var(x[y[f] == c], ids[f][y[f] == c])
                 for c in (0, 1)) for x, f in zip(e, folds)]
    assert out.method == FOLD_MEAN_NOISE and out.extra["noise_factor"] == BRIER_NOISE_FACTOR == 1.75
    assert out.extra["per_fold_noise_var"] == pytest.approx(noise)
    assert (out.estimate, out.ci_low, out.ci_high) == pytest.approx(_noise_and_spread([x.mean() for x in e], noise, 5))
    # a model that learned little scores everyone near the event rate: a squared error of about 0.36 for every
    # event and 0.16 for every non-event. Over all records the noise counts that spread between the classes, which
    # a stratified fold fixes; within the classes it is the scores' own
    flat = 0.4 + 0.01 * np.random.default_rng(0).normal(size=y.size)
    within = cv_calibration(y, flat, fold, groups=ids)["brier"].extra["per_fold_noise_var"]
    overall = [_clustered_var((flat[f] - y[f]) ** 2, ids[f]) for f in folds]
    assert np.max(within) < 0.05 * np.min(overall)


def test_cross_validated_idi_and_nri_are_fold_means_without_an_interval():
    y = np.r_[[1, 1, 0, 0], [1, 0, 0, 1]].astype(float)
    old = np.r_[[.5, .5, .5, .5], [.4, .4, .4, .4]]
    new = np.r_[[.7, .6, .4, .5], [.5, .3, .3, .4]]
    fold = np.repeat(["x", "y"], 4)
    idi, nri = cv_reclassification(y, old, new, fold)
    # fold x: events gain (0.2 + 0.1) / 2, non-events (-0.1 + 0) / 2; fold y: events (0.1 + 0) / 2, non-events -0.1
    assert idi.extra["per_fold"] == pytest.approx([0.15 + 0.05, 0.05 + 0.1])
    assert idi.estimate == pytest.approx(0.175) and idi.ci_low is None
    assert nri.extra["per_fold"] == pytest.approx([1.0 + 0.5, 0.5 + 1.0])
    assert nri.ci_low is None and nri.warnings == [WHY_NOT["nri"]]


def _kfold_predictions(seed: int = 0, n: int = 200, folds: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    fold = rng.permutation(np.arange(n) % folds)
    risk = expit(rng.normal(size=n) + 1.2 * y - 0.8 + 0.3 * (fold - 2))  # fold models' intercepts differ
    return pd.DataFrame({"record_id": np.arange(n), "patient_id": np.arange(n), "model": "m", "task": "t",
                         "kind": "binary", "y_true": y, "y_score": risk, "fold": fold,
                         "threshold": 0.4 + 0.02 * fold})


def test_a_k_fold_run_prints_the_fold_level_rows_and_keeps_the_pooled_ones_under_their_name():
    pred = _kfold_predictions()
    est = {e["metric"]: e for e in evaluate_predictions(pred, n_resamples=200)[0]
           if e["fold"] == "pooled" and e["metric"] != "auc"}
    sens = est["sensitivity"]
    assert sens["method"] == FOLD_MEAN_WILSON and sens["ci_low"] < sens["estimate"] < sens["ci_high"]
    per_fold = [np.mean(g.y_score[g.y_true == 1] >= g.threshold[g.y_true == 1]) for _, g in pred.groupby("fold")]
    assert sens["estimate"] == pytest.approx(np.mean(per_fold))
    assert sens["extra"]["pooled"]["method"] == EXACT
    assert sens["extra"]["pooled"]["estimate"] == pytest.approx(np.mean(
        pred.y_score[pred.y_true == 1] >= pred.threshold[pred.y_true == 1]))
    assert est["brier"]["method"] == FOLD_MEAN_NOISE and est["brier"]["extra"]["pooled"]["method"] == LOG_T
    slope = est["calibration_slope"]
    assert slope["ci_low"] is None and slope["warnings"][0].startswith("no interval")
    assert slope["extra"]["pooled"]["estimate"] < slope["estimate"]  # the folds' intercepts pull the pooled one down


def test_one_fold_keeps_the_intervals_of_one_models_predictions():
    pred = _kfold_predictions().assign(fold="holdout")
    est = {e["metric"]: e for e in evaluate_predictions(pred, n_resamples=200)[0] if e["fold"] == "pooled"}
    assert est["sensitivity"]["method"] == EXACT
    assert est["calibration_slope"]["method"] == "logistic recalibration (Wald)"


def test_a_k_fold_row_whose_fold_lacks_the_metric_prints_the_pooled_value_without_an_interval():
    pred = _kfold_predictions()
    pred.loc[(pred.fold == 2), "y_score"] = 0.01  # fold 2 predicts nobody positive: its PPV is undefined
    ppv = next(e for e in evaluate_predictions(pred, n_resamples=200)[0] if e["metric"] == "ppv")
    assert ppv["method"] == "pooled (no interval)" and ppv["ci_low"] is None
    assert np.isfinite(ppv["estimate"]) and "undefined in fold(s) 2" in " ".join(ppv["warnings"])


def test_fewer_than_five_folds_give_the_fold_mean_without_an_interval():
    y = np.tile([1, 1, 0, 0, 0], 8)
    out = cv_binary_metrics(y, np.linspace(0, 1, 40), 0.5, np.repeat(["a", "b"], 20))
    assert out["sensitivity"].ci_low is None and np.isfinite(out["sensitivity"].estimate)
    assert out["sensitivity"].warnings[0].startswith("no interval: 2 folds")


def test_a_proportion_at_one_in_every_fold_takes_its_binomial_interval_at_the_denominators_patients():
    """Every fold's specificity 1 and PPV 1: no variance to read. The specificity printed a zero-width interval, on
    the logit scale 0.984 [0.984, 0.984], which left out its own estimate, then none (a PPV of 1 in every fold in 28
    of 500 data sets at 100 patients with the classes apart); now each row's own binomial interval at its
    denominator's patients, two records each here, so 25 trials, not 50: Wilson's for the specificity, with 1 as its
    upper bound exactly (statsmodels' is 1 - 1e-16), Clopper-Pearson's for the PPV."""
    hits = [7, 6, 8, 7, 9]  # the sensitivity varies by fold and keeps its interval
    y = np.tile(np.r_[np.ones(10), np.zeros(10)], 5)
    score = np.concatenate([np.r_[np.arange(10) < h, np.zeros(10, bool)] * 1.0 for h in hits])
    patients = np.repeat(np.arange(50), 2)  # records 2i and 2i + 1: patient i
    out = cv_binary_metrics(y, score, 0.5, np.repeat(["a", "b", "c", "d", "e"], 20), groups=patients)
    spec, ppv = out["specificity"], out["ppv"]
    z = 1.959964
    assert spec.estimate == 1.0 and spec.method == FOLD_MEAN_WILSON_EQUAL and spec.extra["n_effective"] == 25
    assert spec.ci_low == pytest.approx(25 / (25 + z * z)) and spec.ci_high == 1.0
    assert ppv.estimate == 1.0 and ppv.method == FOLD_MEAN_EXACT_EQUAL
    called = sum((h + 1) // 2 for h in hits)  # the called positives' patients: 20 for 37 records
    assert ppv.extra["n_effective"] == called
    assert ppv.ci_low == pytest.approx(0.025 ** (1 / called)) and ppv.ci_high == 1.0
    sens = out["sensitivity"]
    assert sens.ci_low is not None and sens.ci_high is not None
    assert sens.method == FOLD_MEAN_WILSON and sens.ci_low < sens.estimate < sens.ci_high


def test_a_proportion_equal_inside_zero_and_one_in_every_fold():
    """The sensitivity 7 of 10 in every fold reads no test noise and no spread: Wilson's interval at its 50
    patients. The accuracy 17 of 20 in every fold reads its test noise, which is there, and keeps its interval; an
    MAE equal in every fold, which has neither, prints none and says why."""
    y = np.tile(np.r_[np.ones(10), np.zeros(10)], 5)
    score = np.tile(np.r_[np.arange(10) < 7, np.arange(10) < 0], 5) * 1.0
    score[10::20] = 1.0  # one false positive a fold: the specificity 0.9 everywhere
    out = cv_binary_metrics(y, score, 0.5, np.repeat(["a", "b", "c", "d", "e"], 20))
    sens, acc = out["sensitivity"], out["accuracy"]
    z = 1.959964
    centre, half = 0.7 + z * z / 100, z * np.sqrt(0.21 / 50 + z * z / 10_000)
    assert sens.method == FOLD_MEAN_WILSON_EQUAL and sens.extra["n_effective"] == 50
    assert (sens.ci_low, sens.ci_high) == pytest.approx(((centre - half) / (1 + z * z / 50),
                                                          (centre + half) / (1 + z * z / 50)))
    assert acc.estimate == pytest.approx(0.8) and acc.method == FOLD_MEAN_WILSON_NOISE and acc.extra["df"] == np.inf
    assert acc.ci_low is not None and acc.ci_high is not None and acc.ci_low < 0.8 < acc.ci_high
    mae = cv_agreement(np.arange(50.0), np.arange(50.0) + np.tile([1.0, -1.0], 25),
                       np.repeat(["a", "b", "c", "d", "e"], 10))["mae"]
    assert mae.estimate == 1.0 and mae.ci_low is None and mae.method == FOLD_MEAN_ONLY
    assert mae.warnings == ["no interval: mae is 1 in every fold; the corrected t reads the folds' spread, and there "
                            "is none"]


def test_a_proportion_near_one_carries_an_interval_that_holds_its_estimate():
    """perfusion_polar's default run printed a specificity of 0.993 [0.950, 0.992]: four folds at 1 and one at
    29/30, whose logits of (k + 1/2) / (d + 1), on which the interval was centred, average to 0.980. Wilson's interval
    at the effective sample size holds its estimate and reaches further toward 1 than below it."""
    false = [0, 0, 1, 0, 0]
    y = np.tile(np.r_[np.ones(10), np.zeros(30)], 5)
    hits = [7, 6, 8, 7, 9]
    score = np.concatenate([np.r_[np.arange(10) < h, np.arange(30) < f] * 1.0 for h, f in zip(hits, false)])
    out = cv_binary_metrics(y, score, 0.5, np.repeat(["a", "b", "c", "d", "e"], 40))
    spec = out["specificity"]
    k = np.array([30, 30, 29, 30, 30], dtype=float)
    assert spec.estimate == pytest.approx(np.mean(k / 30))
    assert (spec.ci_low, spec.ci_high) == pytest.approx(_corrected_binomial(k, np.full(5, 30.0), 1 / 4))
    z = logit((k + 0.5) / 31)  # what it printed before: the corrected t of these logits, below the estimate
    half = t_dist.ppf(0.975, 4) * np.sqrt((1 / 5 + 1 / 4) * z.var(ddof=1))
    assert spec.ci_low is not None and spec.ci_high is not None
    assert expit(z.mean() + half) < spec.estimate < spec.ci_high < 1
    assert spec.ci_high - spec.estimate < spec.estimate - spec.ci_low and spec.method == FOLD_MEAN_WILSON


def test_a_proportion_whose_fold_holds_one_patient_takes_the_corrected_t_and_names_the_fold():
    """Fold e's predicted positives are one patient's records: no test noise to read there, so the PPV's variance
    is the corrected t's, and it says why; the NPV, whose records there are several patients', keeps its noise."""
    hits, false = [7, 6, 8, 7, 9], [2, 3, 1, 2, 2]
    y = np.tile(np.r_[np.ones(10), np.zeros(10)], 5)
    score = np.concatenate([np.r_[np.arange(10) < h, np.arange(10) < f] * 1.0 for h, f in zip(hits, false)])
    ids = np.arange(100)
    ids[np.r_[80:89, 90:92]] = 80  # fold e's eleven called positive (nine hits, two false): one patient
    out = cv_binary_metrics(y, score, 0.5, np.repeat(["a", "b", "c", "d", "e"], 20), groups=ids)
    ppv = out["ppv"]
    k, d = np.array(hits, dtype=float), np.array(hits, dtype=float) + false
    r = k / d  # the corrected t's variance at the folds' own test/train ratio of patients, Clopper-Pearson's interval
    var = (1 / 5 + ppv.extra["test_train_ratio"]) * r.var(ddof=1)
    assert ppv.method == ("fold mean, Clopper–Pearson's interval at the effective sample size of the corrected t's "
                          "variance")
    assert (ppv.ci_low, ppv.ci_high) == pytest.approx(_binomial(float(r.mean()), var, 4, float(d.sum()), exact=True))
    assert ppv.warnings == ["fold(s) e hold one patient among its denominator's records, whose test noise cannot be "
                            "read: the PPV takes the corrected t of its per-fold values"]
    assert out["npv"].method == FOLD_MEAN_WILSON_NOISE and not out["npv"].warnings


def _regression_folds() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Five folds of 8 patients (patient 0 of each with two records): truth, prediction, fold, patient."""
    rng = np.random.default_rng(4)
    ids = np.concatenate([[8 * f, 8 * f] + [8 * f + i for i in range(1, 8)] for f in range(5)])
    y = rng.normal(50, 10, size=ids.max() + 1)[ids]
    fold = np.repeat(list("abcde"), 9)
    pred = y + rng.normal(0, 4, size=y.size) + np.repeat([-2.0, 0.0, 1.0, 3.0, -1.0], 9)  # each fold its own bias
    return y, pred, fold, ids


def _noise_and_spread(values: list[float], noise: list[float], k: int, c: float = 1.75) -> tuple[float, float, float]:
    """The MAE's and RMSE's interval of K equal folds, by hand: var = c v/K + (1/K + 1/(K-1)) max(0, S² - v),
    t with Satterthwaite's df (K - 1) (var / b)², on the log scale."""
    m, v, s2 = float(np.mean(values)), float(np.mean(noise)), float(np.var(values, ddof=1))
    a, b = c * v / k, (1 / k + 1 / (k - 1)) * max(0.0, s2 - v)
    q = float(t_dist.ppf(0.975, (k - 1) * ((a + b) / b) ** 2)) if b > 0 else 1.959964
    return m, m * float(np.exp(-q * np.sqrt(a + b) / m)), m * float(np.exp(q * np.sqrt(a + b) / m))


def _clustered_var(x: np.ndarray, ids: np.ndarray) -> float:
    """The patient-clustered variance of the mean of x, by hand: g/(g-1) Σ (patient's sum of deviations)² / n²."""
    sums = np.array([(x[ids == i] - x.mean()).sum() for i in np.unique(ids)])
    return len(sums) / (len(sums) - 1) * float(sums @ sums) / x.size**2


def _control_by_hand(y: np.ndarray, pred: np.ndarray, fold: np.ndarray, ids: np.ndarray) -> tuple[float, float, float]:
    """The bias's fold mean and interval by hand for one repeat: each fold's bias regressed (np.polyfit) on its
    training records' mean target less its test records', the residuals' variance on K - 2 df over K, plus the
    folds' mean patient-clustered variance of their mean difference over K; t at Satterthwaite's df."""
    names = list(dict.fromkeys(fold))
    k = len(names)
    bias = np.array([(pred - y)[fold == f].mean() for f in names])
    contrast = np.array([y[fold != f].mean() - y[fold == f].mean() for f in names])
    residual = bias - np.polyval(np.polyfit(contrast, bias, 1), contrast)
    spread = float(residual @ residual) / (k - 2) / k
    noise = float(np.mean([_clustered_var((pred - y)[fold == f], ids[fold == f]) for f in names])) / k
    df = (spread + noise) ** 2 * (k - 2) / spread**2
    half = float(t_dist.ppf(0.975, df)) * np.sqrt(spread + noise)
    return float(bias.mean()), float(bias.mean()) - half, float(bias.mean()) + half


def test_the_bias_of_a_learner_that_ignores_its_training_mean_is_covered_and_of_one_that_fits_it_is_narrow():
    """Two learners on the same 300 data sets of 60 patients, y ~ N(1, 1) and nothing to learn. One predicts a
    constant 1 whatever it trained on: its folds' biases are exactly linear in their target contrasts, no residual
    is left, and its bias 1 - mean(y) must be covered at 95% by the test-noise term alone (the residuals' spread
    alone would print a zero-width interval). One predicts its training folds' mean target (a fitted intercept),
    whose cross-validated bias is 0 by construction: its interval must be narrower than the corrected t of its
    whole per-fold biases."""
    rng = np.random.default_rng(53)
    fold = np.repeat(list("abcde"), 12)
    ids = np.arange(60)
    covered, ratio = 0, []
    for _ in range(300):
        y = rng.normal(1.0, 1.0, 60)
        fixed = cv_agreement(y, np.ones(60), fold, groups=ids)["ba_bias"]
        assert fixed.ci_low is not None and fixed.ci_high is not None
        assert fixed.extra["df"] > 1e6  # no residual spread (to rounding): the normal's quantile
        covered += fixed.ci_low <= 0.0 <= fixed.ci_high
        fitted = np.concatenate([np.full(12, y[fold != f].mean()) for f in "abcde"])
        est = cv_agreement(y, fitted, fold, groups=ids)["ba_bias"]
        assert est.ci_low is not None and est.ci_high is not None
        whole = _corrected_t([(fitted - y)[fold == f].mean() for f in "abcde"], 5)
        ratio.append((est.ci_high - est.ci_low) / (whole[2] - whole[1]))
    assert 0.92 <= covered / 300 <= 0.98
    assert np.median(ratio) < 0.5


def test_agreement_rows_are_the_mean_of_the_per_fold_ones_and_r2_has_no_interval():
    y, pred, fold, ids = _regression_folds()
    out = cv_agreement(y, pred, fold, groups=ids)
    d = [pred[fold == f] - y[fold == f] for f in "abcde"]
    pid = [ids[fold == f] for f in "abcde"]
    # MAE and RMSE: each fold's test noise from its records (patient 0 of each fold has two), the folds' spread
    # beyond it corrected as Nadeau & Bengio's; 8 test patients against 32 training ones in every fold: ratio 1/4
    mae = [np.abs(x).mean() for x in d]
    expected = _noise_and_spread(mae, [_clustered_var(np.abs(x), i) for x, i in zip(d, pid)], 5, NOISE_FACTORS["mae"])
    assert (out["mae"].estimate, out["mae"].ci_low, out["mae"].ci_high) == pytest.approx(expected)
    assert out["mae"].method == FOLD_MEAN_NOISE and out["mae"].extra["per_fold"] == pytest.approx(mae)
    rmse = [np.sqrt((x * x).mean()) for x in d]
    noise = [_clustered_var(x * x / (2 * r), i) for x, i, r in zip(d, pid, rmse)]
    assert (out["rmse"].estimate, out["rmse"].ci_low, out["rmse"].ci_high) == pytest.approx(
        _noise_and_spread(rmse, noise, 5, c=NOISE_FACTORS["rmse"]))
    assert (out["mae"].extra["noise_factor"], out["rmse"].extra["noise_factor"]) == (1.0, 1.25)  # NOISE_FACTORS
    assert out["rmse"].extra["per_fold_noise_var"] == pytest.approx(noise)
    # R² against the run's variance of the truth, not each fold's own, without an interval, saying why
    assert out["r2"].extra["per_fold"] == pytest.approx([1 - (x * x).mean() / y.var() for x in d])
    assert out["r2"].ci_low is None and out["r2"].warnings == [WHY_NOT["r2"]]
    # the bias: the mean of the per-fold values, its interval from their regression on the target contrasts
    bias = [x.mean() for x in d]
    assert out["ba_bias"].method == FOLD_MEAN_CONTROL
    assert (out["ba_bias"].estimate, out["ba_bias"].ci_low, out["ba_bias"].ci_high) == pytest.approx(
        _control_by_hand(y, pred, fold, ids))
    low = [x.mean() - 1.959964 * x.std(ddof=1) for x in d]
    assert out["ba_loa_low"].extra["per_fold"] == pytest.approx(low, rel=1e-6)
    # the limits: the bias's and the SD's intervals by hand, combined by MOVER on each side
    sd = [x.std(ddof=1) for x in d]
    c = LOA_NOISE_FACTOR
    m, s_lo, s_hi = _noise_and_spread(sd, [_clustered_var((x - x.mean()) ** 2 / (2 * v), i)
                                           for x, v, i in zip(d, sd, pid)], 5, c)
    v_b, s2_b = float(np.mean([_clustered_var(x, i) for x, i in zip(d, pid)])), float(np.var(bias, ddof=1))
    a, b = c * v_b / 5, (1 / 5 + 1 / 4) * max(0.0, s2_b - v_b)
    half_b = float(t_dist.ppf(0.975, 4 * ((a + b) / b) ** 2 if b > 0 else np.inf)) * np.sqrt(a + b)
    z, mean_b = 1.959964, float(np.mean(bias))
    lower = out["ba_loa_low"]
    assert lower.method == FOLD_MEAN_MOVER and lower.estimate == pytest.approx(mean_b - z * m, rel=1e-6)
    assert (lower.ci_low, lower.ci_high) == pytest.approx((mean_b - z * m - np.hypot(half_b, z * (s_hi - m)),
                                                           mean_b - z * m + np.hypot(half_b, z * (m - s_lo))), rel=1e-5)
    upper = out["ba_loa_high"]
    assert (upper.ci_low, upper.ci_high) == pytest.approx((mean_b + z * m - np.hypot(half_b, z * (m - s_lo)),
                                                           mean_b + z * m + np.hypot(half_b, z * (s_hi - m))), rel=1e-5)
    assert out["ba_loa_high"].extra["difference"] == "y_pred - y_true"


def test_the_error_interval_is_wider_above_its_estimate_than_below_and_the_noise_floor_holds_without_spread():
    y, pred, fold, ids = _regression_folds()
    out = cv_agreement(y, pred, fold, groups=ids)["mae"]
    assert out.ci_low is not None and out.ci_high is not None
    assert out.ci_high - out.estimate > out.estimate - out.ci_low > 0  # the log scale's skew
    # five folds whose errors differ less than their records' noise says: the normal's quantile at the noise term
    d = np.tile([-1.0, 1.0, -1.0, 1.0, -2.0, 2.0, -1.0, 1.0, -1.0], 5) + np.repeat([0, 1e-3, 2e-3, 3e-3, 4e-3], 9)
    flat = cv_agreement(np.zeros(45), d, fold, groups=ids)["mae"]
    noise = [_clustered_var(np.abs(d[fold == f]), ids[fold == f]) for f in "abcde"]
    assert flat.extra["df"] == np.inf
    half = 1.959964 * np.sqrt(NOISE_FACTORS["mae"] * np.mean(noise) / 5)
    assert flat.ci_high == pytest.approx(flat.estimate * np.exp(half / flat.estimate), rel=1e-6)


def test_an_error_row_whose_fold_holds_one_patient_takes_the_corrected_t_and_names_the_fold():
    y, pred, fold, ids = _regression_folds()
    one = np.where(fold == "e", 99, ids)  # fold e's nine records are one patient's
    out = cv_agreement(y, pred, fold, groups=one)
    for metric, row in (("mae", "MAE"), ("rmse", "RMSE")):  # no test noise to read there: the corrected t
        est = out[metric]
        assert est.method == FOLD_MEAN
        v, r = np.array(est.extra["per_fold"]), est.extra["test_train_ratio"]  # the folds' own test/train ratio
        half = t_dist.ppf(0.975, 4) * np.sqrt((1 / 5 + r) * v.var(ddof=1))
        assert (est.ci_low, est.ci_high) == pytest.approx((v.mean() - half, v.mean() + half))
        assert est.warnings == [f"fold(s) e hold one patient, whose test noise cannot be read: the {row} takes the "
                                "corrected t of its per-fold values"]
    assert out["ba_bias"].method == FOLD_MEAN and out["ba_bias"].warnings[-1] == (  # no noise there: the corrected t
        "fold(s) e hold one patient, whose test noise cannot be read: the bias takes the corrected t of its per-fold "
        "values")
    limit = out["ba_loa_high"]  # its parts' noise cannot be read there either: it keeps the corrected t, saying why
    assert limit.method == FOLD_MEAN and limit.ci_low is not None
    assert limit.warnings[-1] == ("fold(s) e hold one patient, whose test noise cannot be read: the limit takes "
                                  "the corrected t of its per-fold values")


def test_a_k_fold_regression_task_prints_the_fold_level_rows_and_a_holdout_one_models():
    y, pred, fold, ids = _regression_folds()
    table = pd.DataFrame({"record_id": np.arange(y.size), "patient_id": ids, "model": "m", "task": "lvesv",
                          "kind": "regression", "y_true": y, "y_score": pred, "fold": fold})
    est = {e["metric"]: e for e in evaluate_predictions(table, n_resamples=200)[0]}
    assert est["mae"]["method"] == FOLD_MEAN_NOISE and est["mae"]["ci_low"] is not None
    assert est["mae"]["extra"]["pooled"]["method"] == LOG_T
    assert est["mae"]["extra"]["pooled"]["estimate"] == pytest.approx(np.abs(pred - y).mean())
    assert est["r2"]["method"] == FOLD_MEAN_ONLY and est["r2"]["ci_low"] is None
    one = {e["metric"]: e for e in evaluate_predictions(table.assign(fold="holdout"), n_resamples=200)[0]}
    assert one["mae"]["method"] == LOG_T and one["r2"]["ci_low"] is None and one["ba_bias"]["ci_low"] is not None


def test_agreement_of_three_folds_gives_the_fold_means_without_an_interval():
    y, pred, fold, ids = _regression_folds()
    three = np.where(np.isin(fold, ["d", "e"]), "c", fold)
    out = cv_agreement(y, pred, three, groups=ids)
    assert np.isfinite(out["mae"].estimate) and out["mae"].ci_low is None
    assert out["mae"].warnings[0].startswith("no interval: 3 folds")


def test_the_effective_sample_size_is_capped_at_one_repeats_records():
    """Two repeats score every record twice: the binomial trials are capped at the denominator's records of one
    repeat (50 positives), not of both (100), which counted each record once per repeat."""
    hits = [7, 7, 7, 7, 8]  # the folds barely differ: p (1 - p) / v is about 224, over the cap
    y1 = np.tile(np.r_[np.ones(10), np.zeros(10)], 5)
    s1 = np.concatenate([np.r_[np.arange(10) < h, np.arange(10) < 2] * 1.0 for h in hits])
    y, score = np.r_[y1, y1], np.r_[s1, s1]
    fold = np.r_[[f"0/{f}" for f in np.repeat(list("abcde"), 20)], [f"1/{f}" for f in np.repeat(list("abcde"), 20)]]
    sens = cv_binary_metrics(y, score, 0.5, fold, groups=np.r_[np.arange(100), np.arange(100)])["sensitivity"]
    assert sens.estimate == pytest.approx(0.72) and sens.extra["n_effective"] == 50
