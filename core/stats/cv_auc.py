"""The interval of a cross-validated AUC that counts training variability, and of the paired difference of two.

Out-of-fold scores come from K models, each fitted on a different training sample. An interval that treats the
pooled scores as one fixed model's (DeLong, a bootstrap of the pooled scores) counts only which patients were
scored; it ignores that another training set gives another model, and with no signal it excluded chance in 14%
of data sets instead of 5% (issue 38). No unbiased estimator of the variance of a K-fold estimate exists
(Bengio & Grandvalet 2004, JMLR 5:1089); Nadeau & Bengio's (2003, Mach Learn 52:239) corrected variance is the
usual conservative answer, and needs only the per-fold AUCs the run already has (no refit):

    estimate = mean of the J per-fold AUCs,   var = (1/J + n_test/n_train) S²,   interval: Student t, J - 1 df,

with S² the sample variance of the per-fold AUCs and n_test/n_train counted in patients. Its coverage at 40, 100
and 300 patients, with 1-3 records per patient, is measured through this module by `benchmarks/cv_coverage.py`.
Hand-written: no SciPy/statsmodels/scikit-learn function computes it.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd
from scipy.stats import t as t_dist

from cardio.stats.bootstrap import patients_of
from cardio.stats.result import Estimate, StatsError
from cardio.stats.roc import auc as _auc
from cardio.stats.validation import as_binary_labels, as_scores, check_level

CV_METHOD = "cv-corrected t (Nadeau & Bengio 2003)"
FitPredict = Callable[[np.ndarray, np.ndarray], Any]
_SPLITS: dict[tuple, tuple[list, np.ndarray]] = {}  # the last split made (make_folds costs ~0.1 s)


def _fold_parts(fold: Any, n: int, groups: Any) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Record positions of each fold, each fold's n_test/n_train in patients, and each fold's repeat.

    Every distinct label is one fold; a label "r/name" puts the fold in repeat r, and the training patients of a
    fold are every other patient of its repeat."""
    labels = np.asarray(fold).astype(str)
    if labels.shape != (n,):
        raise StatsError(f"length mismatch: fold has {labels.size} values but there are {n} records")
    patients = patients_of(groups, n)
    codes = np.arange(n) if patients is None else patients.codes
    names = list(dict.fromkeys(labels.tolist()))
    if len(names) < 2:
        raise StatsError(f"a cross-validated interval needs at least 2 folds; got {len(names)}")
    repeat = np.array([lab.split("/", 1)[0] if "/" in lab else "" for lab in labels])
    parts, ratios, reps = [], [], []
    for name in names:
        idx = np.flatnonzero(labels == name)
        in_repeat = np.unique(codes[repeat == repeat[idx[0]]]).size
        n_test = np.unique(codes[idx]).size
        if n_test >= in_repeat:
            raise StatsError(f"fold {name!r} holds every patient of its repeat: it has no training patients")
        parts.append(idx)
        ratios.append(n_test / (in_repeat - n_test))
        reps.append(repeat[idx[0]])
    if min(np.unique(reps, return_counts=True)[1]) < 2:
        raise StatsError(f"a cross-validated interval needs at least 2 folds in each repeat; got {len(names)} "
                         f"fold(s) in {len(set(reps))} repeat(s)")
    return parts, np.array(ratios), np.array(reps)


def _corrected(values: np.ndarray, ratios: np.ndarray, reps: np.ndarray, level: float,
               bounds: tuple[float, float]) -> tuple:
    """Mean over all folds, corrected SE, t interval clipped to bounds, and df.

    Within one repeat of K folds: var = (1/K + n_test/n_train) S², t with K - 1 df. With R repeats the variance
    is the mean of the R single-repeat variances, still with K - 1 df (conservative for the R-fold mean): the
    textbook (1/(KR) + n_test/n_train) S² with KR - 1 df missed 14.5% at 40 patients with 5 x 5 folds
    (benchmarks/cv_coverage.py --repeats 5). No floor on S² either: floored at the mean within-fold DeLong
    variance (which small folds overstate) it missed 0.6% at 40 patients, at 1.7 times the oracle width."""
    terms, ks = [], []
    for r in np.unique(reps):
        v = values[reps == r]
        terms.append((1.0 / v.size + float(ratios[reps == r].mean())) * float(v.var(ddof=1)))
        ks.append(v.size)
    se, df = float(np.sqrt(np.mean(terms))), int(min(ks)) - 1
    mean = float(values.mean())
    q = float(t_dist.ppf(0.5 + level / 2.0, df))
    return mean, se, max(bounds[0], mean - q * se), min(bounds[1], mean + q * se), df


def _per_fold_aucs(y: np.ndarray, scores: list[np.ndarray], parts: list[np.ndarray],
                   y_b: np.ndarray | None = None) -> np.ndarray:
    """AUC of every score vector in every fold (rows: folds), against y (with `y_b`: the second score against
    y_b); a fold with one class is an error naming it."""
    ys = [y] * len(scores) if y_b is None else [y, y_b]
    out = np.empty((len(parts), len(scores)))
    for f, idx in enumerate(parts):
        for name, yy in ({"": y} if y_b is None else {" of y": y, " of y_b": y_b}).items():
            if yy[idx].min() == yy[idx].max():
                raise StatsError(f"fold {f} holds records of one class{name} only ({idx.size} records): it has no "
                                 "AUC; stratify the folds or use fewer")
        out[f] = [_auc(yy[idx], s[idx]) for yy, s in zip(ys, scores)]
    return out


def cv_auc_interval(y: Any, score: Any, fold: Any, groups: Any = None, level: float = 0.95) -> Estimate:
    """Cross-validated AUC (mean of the per-fold AUCs) with Nadeau & Bengio's corrected t interval.

    ``score`` are out-of-fold scores, ``fold`` the fold of each record (labels "repeat/fold" for repeated
    K-fold), ``groups`` the patient ids (the train/test ratio counts patients). Counts training variability
    without refitting: what a run's K models already give."""
    level = check_level(level)
    yy = as_binary_labels(y)
    s = as_scores(score, n=yy.size)
    parts, ratios, reps = _fold_parts(fold, yy.size, groups)
    aucs = _per_fold_aucs(yy, [s], parts)
    mean, se, lo, hi, df = _corrected(aucs[:, 0], ratios, reps, level, (0.0, 1.0))
    return Estimate(metric="auc", estimate=mean, ci_low=lo, ci_high=hi, level=level, method=CV_METHOD,
                    n=int(yy.size), extra={"se": se, "df": df, "n_folds": len(parts),
                                           "test_train_ratio": float(ratios.mean()), "per_fold": aucs[:, 0].tolist(),
                                           "estimand": "mean of the per-fold AUCs"})


def cv_auc_difference(y: Any, score_a: Any, score_b: Any, fold: Any, groups: Any = None,
                      level: float = 0.95, y_b: Any = None) -> Estimate:
    """Paired cross-validated AUC difference (A - B: mean of the per-fold differences), corrected t interval
    and its two-sided p-value (``extra.p_value``, t with J - 1 df).

    ``y_b``: the labels score_b is read against, where it scores another target of the same records (default y):
    one model's AUC for one target minus its AUC for another, on the same patients and folds (echo_cmr's WMA -
    LGE). The per-fold difference is then of two targets; the correction is the same (it counts the folds'
    overlapping training sets, whatever the per-fold statistic)."""
    level = check_level(level)
    yy = as_binary_labels(y)
    a = as_scores(score_a, "score_a", n=yy.size)
    b = as_scores(score_b, "score_b", n=yy.size)
    parts, ratios, reps = _fold_parts(fold, yy.size, groups)
    yb = None if y_b is None else as_binary_labels(y_b, "y_b")
    if yb is not None and yb.size != yy.size:
        raise StatsError(f"length mismatch: y_b has {yb.size} values but y has {yy.size}")
    per_fold = _per_fold_aucs(yy, [a, b], parts, yb)
    diff = per_fold[:, 0] - per_fold[:, 1]
    mean, se, lo, hi, df = _corrected(diff, ratios, reps, level, (-1.0, 1.0))
    p = 1.0 if se == 0.0 and mean == 0.0 else (0.0 if se == 0.0 else float(2.0 * t_dist.sf(abs(mean) / se, df)))
    return Estimate(metric="auc_difference", estimate=mean, ci_low=lo, ci_high=hi, level=level, method=CV_METHOD,
                    n=int(yy.size), extra={"se": se, "df": df, "p_value": p, "n_folds": len(parts),
                                           "test_train_ratio": float(ratios.mean()),
                                           "auc_a": float(per_fold[:, 0].mean()),
                                           "auc_b": float(per_fold[:, 1].mean()), "per_fold": diff.tolist()})


def _cv_folds(y: np.ndarray, groups: Any, folds: int, repeats: int, seed: int) -> tuple[list, np.ndarray]:
    """cardio's own patient-grouped, stratified K-fold split (`cardio.data.make_folds`) and each record's fold
    label "repeat/fold" in each repeat (rows: repeats)."""
    from cardio.data import make_folds  # lazily: the stats service stays importable without the run's modules

    ids = np.arange(y.size) if groups is None else np.asarray(groups)
    key = (y.tobytes(), ids.astype(str).tobytes(), folds, repeats, seed)
    if key in _SPLITS:  # the AUC and the paired difference of one data set: one split, made once
        return _SPLITS[key]
    table = pd.DataFrame({"patient_id": ids.astype(str), "record_id": np.arange(y.size).astype(str), "label": y})
    cv = {"method": "kfold", "folds": int(folds), "repeats": int(repeats), "stratify": True}
    split = make_folds(table, cv, "label", seed)
    label = np.empty((repeats, y.size), dtype=object)
    for f in split:
        label[f.repeat, f.test] = f"{f.repeat}/{f.name}"
    _SPLITS.clear()
    _SPLITS[key] = (split, label)
    return split, label


def _oof(fit_predict: FitPredict, split: list, n: int, repeats: int) -> np.ndarray:
    """Out-of-fold scores of one callable, one row per repeat."""
    out = np.full((repeats, n), np.nan)
    for f in split:
        s = np.asarray(fit_predict(f.train, f.test), dtype=np.float64).ravel()
        if s.shape != f.test.shape:
            raise StatsError(f"fit_predict returned {s.size} scores for the {f.test.size} test records of {f.name}")
        out[f.repeat, f.test] = s
    return out


def cross_validated_auc(y: Any, groups: Any, fit_predict: FitPredict, level: float = 0.95, folds: int = 5,
                        repeats: int = 1, seed: int = 0) -> Estimate:
    """Cross-validated AUC of a fit-and-score callable, ``fit_predict(train_idx, test_idx) -> scores of
    test_idx``, with the corrected t interval: the callable is fitted in each of cardio's patient-grouped folds
    (``repeats`` times over, each repeat a new split), and the interval counts both the scored patients and the
    training variability."""
    yy = as_binary_labels(y)
    split, label = _cv_folds(yy, groups, folds, repeats, seed)
    s = _oof(fit_predict, split, yy.size, repeats)
    return _stacked(cv_auc_interval, yy, [s], label, split, groups, level)


def cross_validated_auc_difference(y: Any, groups: Any, fit_predict_a: FitPredict, fit_predict_b: FitPredict,
                                   level: float = 0.95, folds: int = 5, repeats: int = 1,
                                   seed: int = 0) -> Estimate:
    """Paired cross-validated AUC difference A - B of two callables fitted on the same folds, corrected t
    interval (see ``cross_validated_auc``)."""
    yy = as_binary_labels(y)
    split, label = _cv_folds(yy, groups, folds, repeats, seed)
    sa = _oof(fit_predict_a, split, yy.size, repeats)
    sb = _oof(fit_predict_b, split, yy.size, repeats)
    return _stacked(cv_auc_difference, yy, [sa, sb], label, split, groups, level)


def _stacked(fn: Callable[..., Estimate], y: np.ndarray, scores: list[np.ndarray], label: np.ndarray, split: list,
             groups: Any, level: float) -> Estimate:
    """Every repeat's records stacked (each record once per repeat, its patient id made per repeat) so that one
    call sees all J folds."""
    repeats = label.shape[0]
    ids = (np.arange(y.size) if groups is None else np.asarray(groups)).astype(str)
    stacked_groups = [f"{r}:{i}" for r in range(repeats) for i in ids]
    est = fn(np.tile(y, repeats), *[s.ravel() for s in scores], fold=label.ravel().astype(str),
             groups=stacked_groups, level=level)
    est.n = int(y.size)
    est.extra.update({"repeats": repeats, "folds_per_repeat": len(split) // repeats})
    return est
