"""The core's default evaluation of a long predictions table: metrics with CIs per model/task/fold, paired tests."""
from __future__ import annotations

from collections.abc import Callable
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from cardio_stats.agreement import agreement
from cardio_stats.bootstrap import bootstrap_ci
from cardio_stats.calibration import calibration
from cardio_stats.cv import summarize_folds
from cardio_stats.cv_auc import CV_DIFF_METHOD, CV_METHOD, ESTIMAND, cv_auc_difference, cv_auc_interval
from cardio_stats.cv_metrics import cv_agreement, cv_binary_metrics, cv_calibration
from cardio_stats.multitest import adjust_pvalues
from cardio_stats.nested_cv import NESTED_METHOD, NestedPlan, Refitted, nested_cv_estimate
from cardio_stats.result import Estimate, StatsError
from cardio_stats.roc import auc, delong_ci, delong_test
from cardio_stats.thresholds import binary_metrics
from cardio_stats.validation import as_binary_labels, as_scores, check_level, check_n_resamples

REQUIRED_COLUMNS = ("record_id", "patient_id", "model", "task", "kind", "y_true", "y_score", "fold")
DEFAULT_THRESHOLD = 0.5
KINDS = ("binary", "regression")


def _label(keys: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in keys.items())


def _row(est: Estimate, keys: dict, fold: str) -> dict:
    return {**est.to_dict(), **keys, "fold": fold, "subgroup": None}


def _patient_ids(g: pd.DataFrame) -> np.ndarray | None:
    """Patient ids of the records when some patient has several records (intervals then count patients);
    None when every patient has one record, so those estimates stay exactly those of record-level methods."""
    return g["patient_id"].to_numpy() if g["patient_id"].nunique() < len(g) else None


def _fold_auc(y: np.ndarray, s: np.ndarray, level: float, groups: np.ndarray | None) -> Estimate:
    """DeLong AUC of one fold; a fold that cannot carry an AUC gives a NaN estimate with the reason, not a crash."""
    try:
        return delong_ci(y, s, level=level, groups=groups)
    except StatsError as exc:
        return Estimate(metric="auc", estimate=float("nan"), ci_low=None, ci_high=None, level=level, method="delong",
                        n=int(len(y)), warnings=[f"fold skipped: {exc}"])


FIXED_MODEL = ("ignored: the pooled out-of-fold scores are treated as one fixed model's, so the interval counts "
               "which patients were scored, not that another training set gives another model")
#: The headline row of a K-fold run that cannot carry a cross-validated interval (too few folds, a fold without
#: both classes, tied scores in every fold): the cross-validated estimate where it exists, no interval, and
#: why (never a silent fallback).
NO_INTERVAL = "cv: no interval"


def _nested_arrays(refits: Refitted | None, model: Any, task: Any, units: np.ndarray,
                   notes: list[str]) -> tuple[NestedPlan, np.ndarray] | None:
    """The refitted scores of a model cheap to refit (None: not refitted, or not usable, the reason in notes)."""
    if refits is None or not refits.has(model, task):
        return None
    try:
        return refits.arrays(model, task, units)
    except StatsError as exc:
        notes.append(f"no {NESTED_METHOD} interval ({exc}); the {CV_METHOD} interval of the run's folds instead")
        return None


POOLED_ONLY = "pooled (no interval)"


def _fold_level(cv: dict[str, Estimate], pooled: dict[str, Estimate]) -> dict[str, Estimate]:
    """The K-fold rows a report prints (the fold mean, docs/statistics.md), each with the pooled value and its
    interval (one fixed model's: ignores training variability) under ``extra["pooled"]``. Where a fold lacks the
    metric (no positive record in it, say) the row is the pooled value without an interval, and says why."""
    out = {}
    for name, est in cv.items():
        p = pooled[name]
        est.extra["pooled"] = {"estimate": p.estimate, "ci_low": p.ci_low, "ci_high": p.ci_high, "method": p.method,
                               "training_variability": FIXED_MODEL}
        if not np.isfinite(est.estimate) and np.isfinite(p.estimate):
            est = Estimate(name, p.estimate, None, None, est.level, POOLED_ONLY, est.n, extra=est.extra,
                           warnings=[*est.warnings, "the pooled value is shown without an interval: a pooled "
                                     "interval would ignore training variability"])
        out[name] = est
    return out


def _thresholded_and_calibration(y: np.ndarray, s: np.ndarray, thr: np.ndarray, folds: np.ndarray | None,
                                 patients: np.ndarray, level: float, n_resamples: int, seed: int | None,
                                 groups: np.ndarray | None) -> list[Estimate]:
    """Accuracy to F1 at the thresholds, and Brier score and calibration where the scores are risks: with K folds
    (`folds`) the fold-level rows (cv_metrics), else (holdout, external) one model's, with Clopper-Pearson, log-scale t,
    Wald (the slope) and score (the intercept) intervals."""
    thresholded = binary_metrics(y, s, thr, level=level, n_resamples=n_resamples, seed=seed, groups=groups)
    calibrated = (calibration(y, s, level=level, n_resamples=n_resamples, seed=seed, groups=groups)
                  if is_probabilistic(s) else {})
    if folds is not None:
        thresholded = _fold_level(cv_binary_metrics(y, s, thr, folds, groups=patients, level=level), thresholded)
        if calibrated:
            calibrated = _fold_level(cv_calibration(y, s, folds, groups=patients, level=level), calibrated)
    return [*thresholded.values(), *calibrated.values()]


def _agreement(g: pd.DataFrame, level: float, n_resamples: int, seed: int | None) -> list[Estimate]:
    """MAE, RMSE, R² and Bland–Altman of a regression task: with K folds the fold-level rows (cv_metrics.cv_agreement:
    the pooled patient bootstrap, which ignores training variability, missed 7.4-9.8% at 100 patients), each with the
    pooled value and one model's interval under ``extra["pooled"]``; with one fold (holdout, external) one
    model's (agreement: the intervals benchmarks/coverage.py's one-fixed-model kinds hold)."""
    y, s = g["y_true"].to_numpy(), g["y_score"].to_numpy()
    pooled = agreement(y, s, n_resamples=n_resamples, seed=seed, level=level, groups=_patient_ids(g))
    folds = g["fold"].astype(str).to_numpy()
    if np.unique(folds).size > 1:
        pooled = _fold_level(cv_agreement(y, s, folds, groups=g["patient_id"].to_numpy(), level=level), pooled)
    return list(pooled.values())


def _cv_auc(y: np.ndarray, s: np.ndarray, folds: np.ndarray, groups: np.ndarray | None, level: float,
            nested: tuple[NestedPlan, np.ndarray] | None, notes: list[str]) -> Estimate:
    """The headline AUC of K-fold out-of-fold scores: nested CV where the model was refitted on its splits, else
    the fold-DeLong interval of the run's K models; where neither can be given, the cross-validated estimate with
    no interval (method NO_INTERVAL) and the reason, never the pooled DeLong interval in its place."""
    if nested is not None:
        try:
            return nested_cv_estimate(y, groups, nested[0], [nested[1]], level=level)
        except StatsError as exc:
            notes.append(f"no {NESTED_METHOD} interval ({exc}); the {CV_METHOD} interval of the run's folds instead")
    try:
        est = cv_auc_interval(y, s, folds, groups=groups, level=level)
        est.warnings.extend(notes)
        return est
    except StatsError as exc:
        why = str(exc)
    value, whole = _fold_mean_or_pooled((y,), folds, lambda r: auc(y[r], s[r]))
    return Estimate(metric="auc", estimate=value, ci_low=None, ci_high=None, level=level, method=NO_INTERVAL,
                    n=int(y.size), warnings=[*notes, f"no interval: {why}"],
                    extra={"estimand": ESTIMAND if whole else "the AUC of the pooled out-of-fold scores (a fold has "
                                                                  "one class: no mean of per-fold AUCs exists)"})


def _headline(g: pd.DataFrame, y: np.ndarray, s: np.ndarray, keys: dict, level: float,
              refits: Refitted | None) -> Estimate:
    """The AUC row a report leads with: with K folds the cross-validated AUC (_cv_auc); with one (holdout,
    external), DeLong's score interval of that one model's scores (roc.delong_ci; 95% at 40-300 patients, AUCs
    0.5-0.99)."""
    groups = _patient_ids(g)
    folds = g["fold"].astype(str).to_numpy()
    if np.unique(folds).size > 1:
        notes: list[str] = []
        nested = _nested_arrays(refits, keys.get("model"), keys.get("task"), g["record_id"].to_numpy(), notes)
        return _cv_auc(y, s, folds, groups, level, nested, notes)
    headline = delong_ci(y, s, level=level, groups=groups, interval="score")
    headline.extra["training_variability"] = "ignored: one model's scores"
    return headline


def _binary(g: pd.DataFrame, keys: dict, level: float, n_resamples: int, seed: int | None,
            refits: Refitted | None = None) -> list[dict]:
    y = as_binary_labels(g["y_true"].to_numpy(), "y_true")
    s = as_scores(g["y_score"].to_numpy(), "y_score", n=y.size)
    notes = []
    groups = _patient_ids(g)
    if "threshold" in g.columns:
        thr = g["threshold"].to_numpy(dtype=np.float64)
        if np.isnan(thr).any():
            notes.append(f"{int(np.isnan(thr).sum())} record(s) had no threshold; {DEFAULT_THRESHOLD} used")
            thr = np.where(np.isnan(thr), DEFAULT_THRESHOLD, thr)
    else:
        thr = np.full(y.size, DEFAULT_THRESHOLD)
    folds = g["fold"].astype(str).to_numpy()
    order = sorted(set(folds), key=lambda f: (0, int(f), f) if f.isdigit() else (1, 0, f))  # fold 10 after 9
    per_fold = {f: _fold_auc(y[folds == f], s[folds == f], level, None if groups is None else groups[folds == f])
                for f in order}
    pooled_auc = delong_ci(y, s, level=level, groups=groups)
    usable = [e for e in per_fold.values() if np.isfinite(e.estimate)]
    if len(per_fold) > 1 and usable:
        summary = summarize_folds(list(per_fold.values()))
        pooled_auc.extra["fold_summary"] = {k: summary[k] for k in ("n_folds", "n_used", "mean", "sd", "min", "max")}
        if pooled_auc.ci_high is not None and pooled_auc.ci_high < 0.5:
            # Pooling scores of models fitted on different folds: with no signal, a fold rich in positives was
            # scored by a model that saw fewer of them, so the pooled ranking falls below chance.
            pooled_auc.extra["below_chance"] = True  # the performance section flags it
            pooled_auc.warnings.append(
                f"pooled AUC {pooled_auc.estimate:.3f} lies below chance: with little or no signal, pooled "
                "out-of-fold scores can rank below 0.5 (each fold's model learned the other folds' class mix); "
                f"the mean of the per-fold AUCs is {summary['mean']:.3f}")
    pooled_auc.extra["training_variability"] = FIXED_MODEL
    pooled = [_headline(g, y, s, keys, level, refits), pooled_auc,
              bootstrap_ci(y, s, "auc", n_resamples=n_resamples, seed=seed, level=level, groups=groups)]
    pooled += _thresholded_and_calibration(y, s, thr, folds if len(per_fold) > 1 else None,
                                           g["patient_id"].to_numpy(), level, n_resamples, seed, groups)
    out = []
    for est in pooled:
        est.warnings.extend(notes)
        out.append(_row(est, keys, "pooled"))
    if len(per_fold) > 1:
        out += [_row(est, keys, f) for f, est in per_fold.items()]
    return out


def is_probabilistic(score: np.ndarray) -> bool:
    """Scores that are risks (in [0, 1], more than two values), not a yes/no rule: calibration applies."""
    s = np.asarray(score, dtype=float)
    return bool(s.size and s.min() >= 0 and s.max() <= 1 and np.unique(s).size > 2)


def reference_of(reference: str | dict | None, task: object) -> str | None:
    """The pre-specified reference model of a task: one name for every task, or a task -> model mapping."""
    if isinstance(reference, dict):
        return reference.get(task)
    return reference


def _pairs(models: list, ref: str | None) -> list[tuple[object, object, str]]:
    """Every pair of models, the reference first in its pairs; each pair's family: `reference` (the
    pre-specified comparisons), `exploratory` (the other pairs when a reference is named) or `all pairs`."""
    if ref is None or ref not in models:
        return [(a, b, "all pairs") for a, b in combinations(models, 2)]
    others = [m for m in models if m != ref]
    return [(ref, m, "reference") for m in others] + [(a, b, "exploratory") for a, b in combinations(others, 2)]


def _paired_tests(pred: pd.DataFrame, task_cols: list[str], level: float, reference: str | dict | None = None,
                  refits: Refitted | None = None) -> list[dict]:
    """The paired AUC difference of every pair of models on the same task, over the records both models scored
    (_test_row: the headline difference and, with K folds, the pooled paired DeLong test beside it); with a
    pre-specified reference, its tests against each other model form the task's confirmatory family."""
    tests: list[dict] = []
    seen: set = set()
    binary = pred[pred["kind"] == "binary"]
    for task_key, g in binary.groupby(task_cols, sort=True) if task_cols else [((), binary)]:
        task_key = task_key if isinstance(task_key, tuple) else (task_key,)
        keys = dict(zip(task_cols, task_key))
        models = sorted(g["model"].unique().tolist(), key=str)
        ref = reference_of(reference, keys.get("task"))
        if isinstance(reference, dict) and ref is not None and len(models) > 1 and ref not in models:
            raise StatsError(f"{_label(keys)}: the reference model {ref!r} (stats.reference) made no prediction "
                             f"for this task; its models are {models}")
        seen.update(models)
        for a, b, family in _pairs(models, ref):
            where = f"{_label(keys)}, models {a} vs {b}"
            try:
                row = _test_row(g, a, b, keys, level, refits)
            except StatsError as exc:
                raise StatsError(f"{where}: {exc}") from exc
            ids = {**keys, "model_a": a, "model_b": b}
            row["extra"].update({**ids, "family": family})  # also inside extra, where report tables look for them
            tests.append({**row, **ids, "fold": "pooled"})
    if isinstance(reference, str) and seen and reference not in seen:
        # a run that leaves the reference out (a switch in the config) has no confirmatory family
        for t in tests:
            t["warnings"].append(f"the reference model {reference!r} (stats.reference) made no prediction in this "
                                 f"run (its models: {sorted(map(str, seen))}); every pair is tested")
    return tests


def _test_row(g: pd.DataFrame, a: Any, b: Any, keys: dict, level: float, refits: Refitted | None) -> dict:
    """One pair's test row: at the top level the difference A - B the report prints (`estimate`, `ci_low`, `ci_high`,
    `p_value`, `method`; also as `extra.diff`, `diff_ci_low`, `diff_ci_high`): with K folds the cross-validated one
    (nested CV where both models were refitted, else fold-DeLong), with one fold the paired DeLong test with its score
    interval (`delong-paired-score`). With K folds the paired DeLong test of the pooled scores, which ignores training
    variability, is `extra.delong` (pROC's normal interval)."""
    ga, gb = g[g["model"] == a].set_index("record_id"), g[g["model"] == b].set_index("record_id")
    common = ga.index.intersection(gb.index)
    notes = []
    if len(common) < max(len(ga), len(gb)):
        notes.append(f"{len(ga) - len(common)} record(s) of {a} and {len(gb) - len(common)} of {b} "
                     f"are not shared; the test uses the {len(common)} common records")
    if len(common) == 0:
        raise StatsError("no record was scored by both models; a paired test is impossible")
    ya = ga.loc[common, "y_true"].to_numpy(dtype=np.float64)
    yb = gb.loc[common, "y_true"].to_numpy(dtype=np.float64)
    if not np.array_equal(ya, yb):
        raise StatsError(f"y_true differs for {int((ya != yb).sum())} shared record(s)")
    shared, sb = ga.loc[common], gb.loc[common, "y_score"].to_numpy()
    groups = _patient_ids(shared.reset_index())
    # one fold: the test is the headline, its score interval (the normal one missed up to 10.8% near separation);
    # K folds: the pooled scores' variant, pROC's normal interval
    one_fold = shared["fold"].astype(str).nunique() < 2
    try:
        res = delong_test(ya, shared["y_score"].to_numpy(), sb, level=level, groups=groups,
                          interval="score" if one_fold else "normal")
    except StatsError as exc:  # a degenerate pair (AUCs 1 and 0.5 on a tiny set: no variance): the row says why
        return _untested(ya, shared["y_score"].to_numpy(), sb, level, [*notes, f"not tested: {exc}"])
    res.warnings.extend(notes)
    delong = res.to_dict()
    if one_fold:  # the paired DeLong test is the headline
        x = delong["extra"]
        return {**delong, "estimate": x["diff"], "ci_low": x["diff_ci_low"], "ci_high": x["diff_ci_high"],
                "level": level}
    head = _cv_difference(ya, shared, sb, level, [
        _nested_arrays(refits, m, keys.get("task"), common.to_numpy(), notes) for m in (a, b)], notes)
    p = head.extra.get("p_value")
    x = head.extra
    return {"name": "auc_difference", "statistic": x.get("score_statistic"), "p_value": p,
            "method": head.method, "df": None, "n": delong["n"], "estimate": head.estimate, "ci_low": head.ci_low,
            "ci_high": head.ci_high, "level": level, "warnings": [*delong["warnings"], *head.warnings],
            "extra": {"diff": head.estimate, "diff_ci_low": head.ci_low, "diff_ci_high": head.ci_high,
                      **{k: v for k, v in x.items() if k != "p_value"},
                      **{k: v for k, v in delong["extra"].items() if k in ("variance", "n_groups")},
                      "delong": {k: delong[k] for k in ("method", "statistic", "p_value")} | delong["extra"]}}


def _untested(y: np.ndarray, a: np.ndarray, b: np.ndarray, level: float, warnings: list[str]) -> dict:
    """A pair whose paired test cannot be computed: the AUC difference alone, no interval and no p-value, and why
    (never an evaluation that fails for one pair of models)."""
    diff = auc(y, a) - auc(y, b)
    return {"name": "auc_difference", "statistic": None, "p_value": None, "method": NO_INTERVAL, "df": None,
            "n": int(y.size), "estimate": diff, "ci_low": None, "ci_high": None, "level": level,
            "warnings": warnings, "extra": {"diff": diff, "diff_ci_low": None, "diff_ci_high": None}}


def _cv_difference(y: np.ndarray, shared: pd.DataFrame, score_b: np.ndarray, level: float,
                   nested: list[tuple[NestedPlan, np.ndarray] | None], notes: list[str]) -> Estimate:
    """The cross-validated difference A - B for K-fold predictions (two folds or more): nested CV where both models
    were refitted, else the fold-DeLong interval of the run's folds; where neither interval exists, the estimate
    with none (NO_INTERVAL) and why."""
    folds = shared["fold"].astype(str).to_numpy()
    groups = shared["patient_id"].to_numpy()
    a = shared["y_score"].to_numpy()
    if nested[0] is not None and nested[1] is not None:
        plan_a, plan_b = nested[0][0], nested[1][0]
        try:
            if not np.array_equal(plan_a.fold, plan_b.fold):
                raise StatsError("the two models were refitted on different splits")
            return nested_cv_estimate(y, groups, plan_a, [nested[0][1], nested[1][1]], weights=(1.0, -1.0),
                                      level=level, metric="auc_difference")
        except StatsError as exc:
            notes.append(f"no {NESTED_METHOD} interval ({exc}); the {CV_DIFF_METHOD} interval of the run's folds "
                         "instead")
    try:
        est = cv_auc_difference(y, a, score_b, folds, groups=groups, level=level)
        est.warnings.extend(notes)
        return est
    except StatsError as exc:
        return difference_without_interval(y, a, score_b, folds, str(exc), level, notes=notes)


def difference_without_interval(y: np.ndarray, score_a: np.ndarray, score_b: np.ndarray, folds: np.ndarray, why: str,
                                level: float, y_b: np.ndarray | None = None, notes: list[str] | None = None
                                ) -> Estimate:
    """A K-fold AUC difference A - B that carries no interval (NO_INTERVAL; `why` and `notes` in its warnings): the
    mean of the folds' differences where every fold holds both classes (of `y`, and of `y_b`, B's labels where they
    differ from A's), else the pooled difference."""
    yb = y if y_b is None else y_b
    value, _ = _fold_mean_or_pooled((y, yb), folds, lambda r: auc(y[r], score_a[r]) - auc(yb[r], score_b[r]))
    return Estimate(metric="auc_difference", estimate=value, ci_low=None, ci_high=None, level=level,
                    method=NO_INTERVAL, n=int(y.size), warnings=[*(notes or []), f"no interval: {why}"])


def _fold_mean_or_pooled(labels: tuple[np.ndarray, ...], folds: np.ndarray, value: Callable[[np.ndarray], float]
                         ) -> tuple[float, bool]:
    """A row without an interval: the mean of `value` over the folds (each a boolean mask) where every fold holds
    both classes of every label vector, else `value` of all records pooled; and whether it is the fold mean."""
    parts = [folds == f for f in dict.fromkeys(folds)]
    if all(np.unique(y[r]).size == 2 for y in labels for r in parts):
        return float(np.mean([value(r) for r in parts])), True
    return float(value(np.ones(folds.size, dtype=bool))), False


def _adjust_families(tests: list[dict], task_cols: list[str], method: str, across_tasks: bool = False) -> list[dict]:
    """Holm (or BH) over the paired tests of one task: raw and adjusted p-values side by side. With
    `across_tasks`, the comparisons with the reference form one family over every task (a plugin whose paper
    claims the reference wins on each of several tasks)."""
    cols = [*task_cols, "family"]
    frame = pd.DataFrame([{**{c: (None if across_tasks and t["extra"].get("family") == "reference" else t.get(c))
                              for c in task_cols}, "family": t["extra"].get("family", "all pairs")} for t in tests])
    family = (frame.groupby(cols, dropna=False).ngroup().to_numpy() if tests else np.zeros(0, dtype=int))
    for code in np.unique(family):
        idx = np.flatnonzero(family == code).tolist()
        adjusted = adjust_pvalues([tests[i]["p_value"] if tests[i]["p_value"] is not None else np.nan for i in idx],
                                  method)
        which = {"reference": "comparisons with the pre-specified reference"
                 + (" over every task" if across_tasks else ""),
                 "exploratory": "exploratory comparisons (neither model the reference)",
                 "all pairs": "paired test(s)"}[frame["family"].iloc[idx[0]]]
        variant = adjust_pvalues([(tests[i]["extra"].get("delong") or {}).get("p_value", np.nan) for i in idx],
                                 method)
        for i, p, p_delong in zip(idx, adjusted, variant):
            tests[i]["p_adjusted"] = None if not np.isfinite(p) else float(p)
            if np.isfinite(p_delong):  # the same family, on the pooled DeLong p-values beside the headline
                tests[i]["extra"]["delong"]["p_adjusted"] = float(p_delong)
            scope = "" if across_tasks and frame["family"].iloc[idx[0]] == "reference" else " of this task"
            tests[i]["adjustment"] = f"{method} over the {len(idx)} {which}{scope}"
    return tests


def evaluate_predictions(pred: pd.DataFrame, level: float = 0.95, n_resamples: int = 2000, seed: int | None = 0,
                         group_cols: tuple[str, ...] = ("model", "task"),
                         adjust: str = "holm",
                         reference: str | dict | None = None,
                         across_tasks: bool = False,
                         refits: Refitted | None = None) -> tuple[list[dict], list[dict]]:
    """Evaluate out-of-fold predictions: (estimate dicts, test dicts), ready for metrics.json.

    Binary, with K-fold predictions, the headline: the cross-validated AUC with an interval that counts training
    variability, nested CV (``NESTED_METHOD``) for a model in ``refits`` (refitted on nested CV's splits), else
    the fold-DeLong interval of the run's K models (``CV_METHOD``); fewer than 5 folds or a fold without both
    classes: no interval (``NO_INTERVAL``) and why. Then the pooled DeLong AUC and stratified bootstrap AUC (one
    fixed model's: ``extra.training_variability``), accuracy/sensitivity/specificity/PPV/NPV/F1 at the
    per-row thresholds (default 0.5), DeLong AUC per fold, and, for probabilistic scores, Brier score and
    calibration intercept and slope. With K folds those last are the fold-level rows (``cardio_stats.cv_metrics``:
    the mean of the per-fold values, the corrected t interval where one holds its level, the pooled value and its
    interval under ``extra.pooled``); with one fold (holdout, external) one model's, with Clopper-Pearson, log-scale t,
    Wald (the slope) and score (the intercept) intervals. Regression: MAE, RMSE, R² and Bland–Altman, with K folds
    the fold-level rows (``_agreement``), with one one model's (agreement()). Tests: the paired difference of every
    two models of a task on their shared records, at the top level the one the report prints (as the AUC:
    cross-validated with K folds, paired DeLong with one), with p-values adjusted within the task (`adjust`: holm,
    bh, none); with K folds the pooled paired DeLong test beside it (``extra.delong``, adjusted in the same family).
    With a `reference` (a model name, or task -> model; fixed in the config before any result is seen), the
    reference's tests against each other model are the task's confirmatory family, adjusted on their own; the
    other pairs are a second family, marked exploratory (`extra.family`).

    Where a task has more records than patients, every interval and test counts patients (``patient_id``):
    clustered DeLong (Obuchowski 1997), bootstraps that resample patients, cluster-robust calibration
    intervals. Where each patient has one record the record-level methods run unchanged.
    """
    level = check_level(level)
    n_resamples = check_n_resamples(n_resamples)
    if not isinstance(pred, pd.DataFrame):
        raise StatsError(f"predictions must be a pandas DataFrame, got {type(pred).__name__}")
    cols = list(group_cols)
    missing = [c for c in dict.fromkeys([*REQUIRED_COLUMNS, *cols]) if c not in pred.columns]
    if missing:
        raise StatsError(f"predictions table lacks column(s) {missing}")
    if pred.empty:
        raise StatsError("predictions table is empty: 0 records")
    bad_kind = sorted(set(pred["kind"].astype(str)) - set(KINDS))
    if bad_kind:
        raise StatsError(f"unknown kind(s) {bad_kind}; expected one of {list(KINDS)}")
    estimates: list[dict] = []
    for key, g in pred.groupby(cols, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        keys = dict(zip(cols, key))
        where = _label(keys)
        kinds = g["kind"].unique().tolist()
        if len(kinds) != 1:
            raise StatsError(f"{where}: mixes kinds {kinds}; one task is either binary or regression")
        dup = int(g["record_id"].duplicated().sum())
        if dup:
            raise StatsError(f"{where}: {dup} record_id(s) appear more than once; pass one out-of-fold "
                             "prediction per record (evaluate repeated splits one repeat at a time)")
        try:
            if kinds[0] == "binary":
                estimates += _binary(g, keys, level, n_resamples, seed, refits)
            else:
                estimates += [_row(est, keys, "pooled") for est in _agreement(g, level, n_resamples, seed)]
        except StatsError as exc:
            raise StatsError(f"{where}: {exc}") from exc
    tests = (_paired_tests(pred, [c for c in cols if c != "model"], level, reference, refits)
             if "model" in cols else [])
    return estimates, _adjust_families(tests, [c for c in cols if c != "model"], adjust, across_tasks)

