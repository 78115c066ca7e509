"""Nested cross-validation (Bates, Hastie & Tibshirani 2023) for the AUC of a pipeline cheap to refit, and for the
paired difference of two such pipelines.

A K-fold estimate varies from data set to data set more than its K test folds suggest, and no formula recovers that
spread from one K-fold run (Bengio & Grandvalet 2004). A pipeline that can be refitted (a logistic regression, a
forest, a stacker) can measure it instead. For each of R random K-fold splits (repeat 0 is the run's own) and each
outer fold k, the pipeline is fitted without fold k and scored on it (e_out: the outer AUC, with its within-fold
DeLong variance b), and fitted without folds k and j for every other j and scored on j, an inner K - 1-fold
cross-validation of the data without fold k (e_in: the mean of its fold AUCs). Then

    MSE-hat = mean over (r, k) of (e_in - e_out)^2  -  mean of b,

the mean squared error of a cross-validated AUC against the AUC it stands for, less the holdout's own noise. The
interval is the repeated-CV estimate (the mean of the R x K outer AUCs) +- z sqrt((K - 1)/K x MSE-hat): the inner
cross-validations see (K - 1)/K of the patients, and an error of a mean falls as 1/n. That SE is inverted as a score
interval, as the fold intervals' (cardio_stats.cv_auc): the AUC's with Hanley & McNeil's shape, a difference's over
its two AUCs (symmetric, it missed 7.6% at 100 patients with A about 0.99). As in Bates et al.'s
`nestedcv` the SE is kept between the naive SE (sqrt(mean b / K), the test folds' noise alone) and sqrt(K) times
it, with two departures, each chosen on a grid (benchmarks/nested_floor.py: the refitted kinds of
benchmarks/coverage.py, seeds 0 and 1 pooled, 2,000 data sets a cell, each floor scored on the interval this module
prints; every cell to hold misses <= 5.0% and each tail <= 3.5%, then the most power; docs/statistics.md has the
grid; checked on seed 2; the difference's spread rule chosen on seeds 0 and 1, checked on seed 2 at 300 patients):
- an AUC's floor is FLOOR["auc"] = 1.1 naive SEs, not 1. MSE-hat is noisy: in the 18-42% of simulated data sets
  where it fell under the naive SE, the interval missed 5.3-15.5% (2.4-3.7% in the others; at 300 patients without
  signal the true SE is 1.3 times the naive one, which leaves out that another training set gives another model).
- a difference's SE is measured for the mean of R repeats, not for one: MSE-hat is the error of one K-fold run, and
  of the R runs' mean less (1 - 1/R) times their spread, the variance of the repeats' K-fold estimates
  (`NestedTerms.spread`; the deep ΔAUC's repeated K-fold takes out the same, cardio_stats.cv_auc). Its floor is
  sqrt((FLOOR["auc_difference"] naive SE)^2 + SPREAD_FLOOR x that spread), 0.9 naive SEs and 2 spreads: a floor in
  naive SEs alone (1.15 until issue 53's last change) was too low for two models on disjoint features without
  signal (the naive SE 0.81 of the estimate's true SD: training sets give other models) and too high with signal
  (0.98), which left those data sets 1.7% false positives at 1.22 times the oracle; the repeats' spread is large
  exactly where another training set gives another model (at 300 patients 0.53-0.56 of the true SD without signal,
  0.22-0.28 with it), and it is measured on 19 degrees of freedom where MSE-hat is noisy. The SE is also kept at
  least PAIR_FLOOR = 0.55 times the SE it would have were its two AUCs independent, sqrt((mean b_A + mean b_B) / K).
  The naive SE of a difference shrinks as the two models' scores agree; for nested models (B's features a subset
  of A's) it shrinks most in the data sets whose estimate is lowest (correlation +0.78 to +0.83 across data sets),
  so a floor in naive SEs is smallest where the upper bound most needs room. The independent-AUC SE does not move
  with the estimate: the pair floor holds that tail, and binds nowhere for models on disjoint features, whose scores
  do not agree. The AUC keeps its floor in naive SEs: the same spread rule screened there needed a floor of 1.25
  naive SEs to hold and gave no width.
Fits: R x (K + K(K - 1)/2), 15 R at K = 5, each a fit on (K - 1)/K or (K - 2)/K of the patients.

Adapted to the AUC: e_in and e_out are means of per-fold AUCs (cardio's cross-validated AUC), b is the clustered
DeLong variance of the outer fold's AUC (patients, not records, are the units), folds are cardio's patient-grouped,
stratified ones, which the caller passes as a `NestedPlan` (the kernel's `cardio.study.refits.nested_plan`; the
service has no split of its own). The centre is not moved by Bates et al.'s bias correction: that
extrapolates to a model trained on all n patients, while cardio's cross-validated AUC estimates the procedure at a
training fold's size (docs/statistics.md), for which the repeated-CV mean is unbiased; `extra.ncv` and
`extra.bias_to_full_size` report it. Coverage, width against the oracle and the repeats needed:
`benchmarks/coverage.py`. Hand-written: no Python library implements nested CV for an interval.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from cardio_stats.bootstrap import patients_of
from cardio_stats.cv_auc import (
    DIFF_SHAPE,
    ESTIMAND,
    FOLD_FACTOR,
    MIN_FOLDS,
    at_bound,
    class_patients,
    clustered_variance,
    constant_difference,
    fold_weights,
    influence,
    zero_noise,
)
from cardio_stats.result import Estimate, StatsError
from cardio_stats.roc import _structural_components, hm_diff_score_interval, hm_score_interval
from cardio_stats.validation import as_binary_labels, check_level

NESTED_METHOD = "nested CV (Bates, Hastie & Tibshirani 2023)"
#: The SE's floor in naive SEs, per metric (module docstring); the AUC's chosen on seeds 0 and 1, checked on seed 2,
#: the difference's with SPREAD_FLOOR on seeds 0 and 1, checked on seed 2 at 300 patients.
FLOOR = {"auc": 1.1, "auc_difference": 0.9}
#: A difference's floor also holds this many times the repeats' spread, in variance (docstring).
SPREAD_FLOOR = 2.0
#: A difference's SE is at least this share of the SE it would have were its two AUCs independent (docstring).
PAIR_FLOOR = 0.55
Refit = Callable[[np.ndarray, np.ndarray], Any]
#: Every outer fold's classes separate: no spread to measure; the caller takes the run's folds' interval
#: (cardio_stats.cv_auc.AT_BOUND, Hanley & McNeil's).
AT_BOUND_NESTED = ("every outer fold's AUC is at its bound (the classes do not overlap): nested CV has no spread to "
                   "measure")


def plan_fits(folds: int, repeats: int) -> list[tuple[int, tuple[int, ...]]]:
    """(repeat, folds left out) of every fit of nested CV: per repeat the K outer fits, then the K(K - 1)/2 pairs."""
    k = folds
    return [(r, e) for r in range(repeats)
            for e in [(j,) for j in range(k)] + [(i, j) for i in range(k) for j in range(i + 1, k)]]


@dataclass(frozen=True)
class NestedPlan:
    """The splits nested CV fits on: each record's fold in each repeat (rows: repeats; -1: in no fold)."""

    fold: np.ndarray

    @property
    def repeats(self) -> int:
        return int(self.fold.shape[0])

    @property
    def folds(self) -> int:
        return int(self.fold.max()) + 1

    @property
    def fits(self) -> list[tuple[int, tuple[int, ...]]]:
        return plan_fits(self.folds, self.repeats)

    def split(self, fit: tuple[int, tuple[int, ...]]) -> tuple[np.ndarray, np.ndarray]:
        """Training and test records of one fit: the test records are those of the folds left out."""
        r, out = fit
        held = np.isin(self.fold[r], out)
        return np.flatnonzero(~held & (self.fold[r] >= 0)), np.flatnonzero(held)

    @classmethod
    def of_folds(cls, split: Sequence[Any], n: int) -> NestedPlan:
        """The plan of folds that each carry their `.repeat` and `.test` rows (cardio's `make_folds` with repeats)."""
        repeats = max(f.repeat for f in split) + 1
        fold = np.full((repeats, n), -1)
        seen = [0] * repeats
        for f in split:
            fold[f.repeat, f.test] = seen[f.repeat]
            seen[f.repeat] += 1
        return cls(fold)


def refit_scores(plan: NestedPlan, refit: Refit) -> np.ndarray:
    """Every fit of the plan: ``refit(train, test)`` -> scores of the test records, as rows (NaN off the test)."""
    fits = plan.fits
    out = np.full((len(fits), plan.fold.shape[1]), np.nan)
    for i, fit in enumerate(fits):
        train, test = plan.split(fit)
        s = np.asarray(refit(train, test), dtype=np.float64).ravel()
        if s.shape != test.shape:
            raise StatsError(f"refit returned {s.size} scores for the {test.size} test records of repeat {fit[0]}, "
                             f"folds {fit[1]} left out")
        out[i, test] = s
    return out


def _fold_terms(y: np.ndarray, codes: np.ndarray, rows: list[np.ndarray], weights: Sequence[float],
                where: str) -> tuple[np.ndarray, float, list[tuple[float, float]]]:
    """The statistic (an AUC, or a weighted difference) of each score row on one fold's records, the clustered
    DeLong variance of the first row's, and each model's own first-row AUC and its variance."""
    local = np.unique(codes, return_inverse=True)[1]
    for cls, name in ((1, "positive"), (0, "negative")):
        have = np.unique(local[y == cls]).size
        if have < 2:
            raise StatsError(f"{where} holds {have} patient(s) with {name} records: its AUC has no variance; "
                             "stratify the folds or use fewer")
    stat, pos, neg = np.zeros(rows[0].shape[0]), np.zeros(local.max() + 1), np.zeros(local.max() + 1)
    own = []
    for s, w in zip(rows, weights):
        if not np.isfinite(s).all():
            raise StatsError(f"{where}: a refit left {int((~np.isfinite(s)).sum())} score(s) missing or non-finite")
        aucs, v10, v01 = _structural_components(y, s)
        stat += w * aucs
        a, b = influence(y, float(aucs[0]), v10[0], v01[0], local)
        pos, neg = pos + w * a, neg + w * b
        own.append((float(aucs[0]), clustered_variance(a, b, y, local) if len(rows) > 1 else 0.0))
    return stat, clustered_variance(pos, neg, y, local), own


def _nested_terms(y: np.ndarray, codes: np.ndarray, plan: NestedPlan, scores: Sequence[np.ndarray],
                  weights: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(e_out, e_in, b), each (R, K): outer fold AUC, the inner CV AUC without that fold, the outer's variance; and
    (models, R, K, 2) each model's own outer AUC and its variance (variance 0 for one model)."""
    k, fits = plan.folds, plan.fits
    index = {fit: i for i, fit in enumerate(fits)}
    e_out, e_in, b = (np.empty((plan.repeats, k)) for _ in range(3))
    own = np.zeros((len(scores), plan.repeats, k, 2))
    for r in range(plan.repeats):
        inner = np.full((k, k), np.nan)  # [j, i]: the fit without folds i and j, scored on fold j
        for j in range(k):
            test = np.flatnonzero(plan.fold[r] == j)
            others = [i for i in range(k) if i != j]
            rows = [index[(r, (j,))]] + [index[(r, (min(i, j), max(i, j)))] for i in others]
            stat, b[r, j], own[:, r, j] = _fold_terms(y[test], codes[test], [s[rows][:, test] for s in scores],
                                                      weights, f"repeat {r}, fold {j}")
            e_out[r, j] = stat[0]
            inner[j, others] = stat[1:]
        e_in[r] = [np.nanmean(inner[:, i]) for i in range(k)]
    return e_out, e_in, b, own


def nested_se(mse: float, naive: float, folds: int, floor: float, pair: float = 0.0, spread: float = 0.0,
              spread_floor: float = 0.0) -> float:
    """The SE from MSE-hat less the repeats' `spread` (a difference's; 0 for an AUC), kept between
    sqrt((`floor` naive SEs)^2 + `spread_floor` x spread) and sqrt(K) naive SEs, and at least `pair` (a
    difference's: PAIR_FLOOR times its independent-AUC SE; module docstring)."""
    low = max(np.sqrt((floor * naive) ** 2 + spread_floor * spread), pair)
    measured = np.sqrt(max(max(mse, 0.0) * (folds - 1) / folds - spread, 0.0))
    return float(np.clip(measured, low, max(np.sqrt(folds) * naive, low)))


@dataclass(frozen=True)
class NestedTerms:
    """What one nested CV measured, each (R, K): the outer folds' statistic e_out (an AUC or a weighted difference),
    the inner CVs' e_in, the outer's DeLong variance b; `own` (models, R, K, 2): each model's own outer AUC and its
    variance (0 for one model); `outer`: each outer fold's patients per class."""

    e_out: np.ndarray
    e_in: np.ndarray
    b: np.ndarray
    own: np.ndarray
    outer: tuple[np.ndarray, np.ndarray]

    @property
    def folds(self) -> int:
        return int(self.e_out.shape[1])

    @property
    def estimate(self) -> float:
        return float(self.e_out.mean())

    @property
    def mse(self) -> float:
        return float(np.mean((self.e_in - self.e_out) ** 2) - self.b.mean())

    @property
    def spread(self) -> float:
        """What one K-fold run's error holds that the mean of R has not: (1 - 1/R) times the variance of the
        repeats' K-fold estimates (0 for one repeat)."""
        r = self.e_out.shape[0]
        return float((1 - 1 / r) * np.var(self.e_out.mean(axis=1), ddof=1)) if r > 1 else 0.0

    @property
    def naive(self) -> float:
        """The test folds' noise alone: sqrt(mean b / K)."""
        return float(np.sqrt(self.b.mean() / self.folds))

    @property
    def independent(self) -> float:
        """A difference's SE were its two AUCs independent (0 for one model)."""
        return float(np.sqrt(self.own[..., 1].mean(axis=(1, 2)).sum() / self.folds))


def nested_terms(y: Any, groups: Any, plan: NestedPlan, scores: Sequence[np.ndarray],
                 weights: Sequence[float] = (1.0,)) -> NestedTerms:
    """Nested CV's measurements of an AUC (one score matrix) or a paired difference (two, weights (1, -1)) from the
    refitted scores: rows in `plan.fits` order, columns the records, NaN off each fit's test folds."""
    yy = as_binary_labels(y)
    if plan.fold.shape[1] != yy.size or any(np.shape(s) != (len(plan.fits), yy.size) for s in scores):
        raise StatsError(f"nested CV needs one score row per fit ({len(plan.fits)}) over the {yy.size} records")
    if plan.folds < MIN_FOLDS:
        raise StatsError(f"{plan.folds} fold(s): a cross-validated interval needs at least {MIN_FOLDS}")
    patients = patients_of(groups, yy.size)
    codes = np.arange(yy.size) if patients is None else patients.codes
    e_out, e_in, b, own = _nested_terms(yy, codes, plan, scores, weights)
    outer = class_patients(yy, codes, [np.flatnonzero(plan.fold[r] == j) for r in range(plan.repeats)
                                       for j in range(plan.folds)])
    return NestedTerms(e_out, e_in, b, own, outer)


def nested_interval(terms: NestedTerms, se: float, level: float, metric: str = "auc"
                    ) -> tuple[float, float, float, float]:
    """The interval at this SE, as the fold intervals' (cardio_stats.cv_auc), and for a difference its score test's
    statistic at 0 and the correlation kept: (low, high, z, rho); z and rho are NaN for an AUC."""
    est, k = terms.estimate, terms.folds
    if metric == "auc":  # Hanley & McNeil's shape at the outer folds
        low, high, _ = hm_score_interval(est, se**2, *terms.outer, level)
        return low, high, float("nan"), float("nan")
    # each AUC's own variance as the fold interval's (FOLD_FACTOR x its mean outer-fold DeLong variance / K)
    own = terms.own
    var_a, var_b = (FOLD_FACTOR * float(own[m, ..., 1].mean()) / k for m in (0, 1))
    return hm_diff_score_interval(float(own[0, ..., 0].mean()), float(own[1, ..., 0].mean()), se**2, var_a, var_b,
                                  terms.outer, terms.outer, level,
                                  fold_weights(np.repeat(np.arange(terms.e_out.shape[0]), k)))


def nested_cv_estimate(y: Any, groups: Any, plan: NestedPlan, scores: Sequence[np.ndarray],
                       weights: Sequence[float] = (1.0,), level: float = 0.95, metric: str = "auc") -> Estimate:
    """Nested CV of an AUC (one score matrix) or a paired difference (two, weights (1, -1)) from the refitted
    scores: rows in `plan.fits` order, columns the records, NaN off each fit's test folds (module docstring). A
    difference where one model scores every patient of each fit's test fold alike is the other's nested AUC less
    0.5 (``_against_constant``)."""
    level = check_level(level)
    if metric != "auc":
        flat = [_flat(plan, np.asarray(s, dtype=float)) for s in scores]
        if all(flat):
            raise StatsError("both scores are the same for every patient within every fold of every fit: each AUC "
                             "is 0.5 and the difference 0 by construction, with nothing to test")
        if any(flat):
            return _against_constant(y, groups, plan, scores[1] if flat[0] else scores[0], -1.0 if flat[0] else 1.0,
                                     level)
    return _from_terms(nested_terms(y, groups, plan, scores, weights), plan, int(np.size(y)), level, metric)


def _from_terms(terms: NestedTerms, plan: NestedPlan, n: int, level: float, metric: str) -> Estimate:
    """nested_cv_estimate's Estimate from what the nested CV measured."""
    k, naive = terms.folds, terms.naive
    if naive == 0.0:  # the SE is kept within [floor, sqrt(K)] naive SEs: zero; the folds' interval says why
        raise StatsError(zero_noise(terms.e_out.ravel()) if metric != "auc" or not at_bound(terms.e_out)
                         else AT_BOUND_NESTED)
    independent = terms.independent  # 0 for one model: its own variance is not taken
    spread = terms.spread if metric != "auc" else 0.0
    se = nested_se(terms.mse, naive, k, FLOOR[metric], PAIR_FLOOR * independent, spread, SPREAD_FLOOR)
    low, high, z, rho = nested_interval(terms, se, level, metric)
    est, ncv = terms.estimate, float(terms.e_in.mean())
    extra = {"se": se, "mse": terms.mse, "se_naive": naive,
             **({"se_independent": independent, "spread": spread} if metric != "auc" else {}),
             "repeats": plan.repeats, "n_folds": k,
             "fits": len(plan.fits), "per_fold": terms.e_out[0].tolist(), "ncv": ncv,
             "bias_to_full_size": (1 + ((k - 2) / k) ** 1.5) * (ncv - est), "estimand": ESTIMAND}
    if metric != "auc":  # the score test's at 0 (se > 0: a zero naive SE was refused above)
        extra.update({"p_value": float(2.0 * norm.sf(abs(z))), "score_statistic": z, "correlation": rho,
                      "shape": DIFF_SHAPE})
    return Estimate(metric=metric, estimate=est, ci_low=low, ci_high=high, level=level, method=NESTED_METHOD,
                    n=n, extra=extra)


def _flat(plan: NestedPlan, scores: np.ndarray) -> bool:
    """Whether every fit scores all the records of each fold it left out alike (NaN counts as a difference)."""
    return all(np.ptp(scores[i, plan.fold[r] == j]) == 0.0 for i, (r, out) in enumerate(plan.fits) for j in out)


def _against_constant(y: Any, groups: Any, plan: NestedPlan, score: np.ndarray, sign: float,
                      level: float) -> Estimate:
    """A - B where one model scores every patient of each fit's test fold alike (a fused head that learned nothing,
    a rule every patient meets): its AUC is 0.5 in every fold of every fit, so the difference is the other's nested
    AUC less 0.5 (`sign` +1: B is constant) or 0.5 less it (-1), its interval the other's own, shifted so (whose
    coverage benchmarks/coverage.py measures), and its test that AUC's score test at 0.5. The difference's own
    interval would take the pair floor and the two AUCs' correlation from a model with no variance. The K-fold
    twin: ``cardio_stats.cv_auc._against_constant``."""
    terms = nested_terms(y, groups, plan, [score])
    return constant_difference(_from_terms(terms, plan, int(np.size(y)), level, "auc"), terms.outer,
                               fold_weights(np.repeat(np.arange(plan.repeats), plan.folds)), sign, NESTED_METHOD,
                               "{constant}'s score is the same for every patient within every fold of every fit: its "
                               "AUC is 0.5 in each, so the difference's interval is {other}'s own nested-CV AUC "
                               "interval less 0.5")


def cross_validated_auc(y: Any, groups: Any, refit: Refit, plan: NestedPlan, level: float = 0.95) -> Estimate:
    """Cross-validated AUC of a pipeline cheap to refit, ``refit(train_idx, test_idx) -> scores of test_idx``, with
    the nested-CV interval: the pipeline is refitted R x (K + K(K - 1)/2) times on the plan's R K-fold splits (the
    caller's: cardio's patient-grouped ones from `cardio.study.refits.nested_plan`, or any `NestedPlan(fold)`)."""
    return nested_cv_estimate(y, groups, plan, [refit_scores(plan, refit)], level=level)


def cross_validated_auc_difference(y: Any, groups: Any, refit_a: Refit, refit_b: Refit, plan: NestedPlan,
                                   level: float = 0.95) -> Estimate:
    """Paired cross-validated AUC difference A - B of two pipelines refitted on the same splits, nested-CV interval
    and its p-value (``extra.p_value``)."""
    return nested_cv_estimate(y, groups, plan, [refit_scores(plan, refit_a), refit_scores(plan, refit_b)],
                              weights=(1.0, -1.0), level=level, metric="auc_difference")


@dataclass(frozen=True)
class Refitted:
    """The scores of a run's models cheap to refit, refitted on nested CV's splits (its plugin's `cardio_refit`):
    one row per fit (its index in the plan's `fits`), model, task and scored unit (`record_id` at the level the run
    is evaluated, as its predictions). `seconds`: the refits' wall time, which the report states."""

    table: pd.DataFrame
    folds: int
    repeats: int
    seconds: float = 0.0

    def has(self, model: Any, task: Any) -> bool:
        return bool(((self.table["model"] == model) & (self.table["task"] == task)).any())

    def arrays(self, model: Any, task: Any, units: Any) -> tuple[NestedPlan, np.ndarray]:
        """The plan and the score rows of one model and task over `units` (the record ids its estimate uses): each
        unit's fold in each repeat is the outer fit that scored it. An error names a unit no outer fit scored."""
        fits = plan_fits(self.folds, self.repeats)
        sub = self.table[(self.table["model"] == model) & (self.table["task"] == task)]
        units = pd.Index(np.asarray(units).astype(str))
        pos = units.get_indexer(sub["record_id"].astype(str))
        sub, pos = sub[pos >= 0], pos[pos >= 0]
        fit = sub["fit"].to_numpy(dtype=int)
        scores = np.full((len(fits), units.size), np.nan)
        scores[fit, pos] = sub["y_score"].to_numpy(dtype=float)
        fold = np.full((self.repeats, units.size), -1)
        for i, (r, out) in enumerate(fits):
            if len(out) == 1:
                fold[r, np.isfinite(scores[i])] = out[0]
        missing = int((fold < 0).any(axis=0).sum())
        if missing:
            raise StatsError(f"{missing} of {units.size} records were not scored by the refits of every repeat")
        return NestedPlan(fold), scores
