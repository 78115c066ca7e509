"""cardio_stats: the shared statistics/evaluation service (NumPy/SciPy/statsmodels/scikit-learn), the distribution
cardio-crt-stats: no torch, no pluggy and no cardio import, so it installs and runs alone
(tests/stats/test_standalone.py)."""
from __future__ import annotations

import sys
import types
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers and readers see; at run time each name loads with its submodule
    from cardio_stats.aggregate import AGGREGATIONS, aggregate_scores
    from cardio_stats.agreement import agreement
    from cardio_stats.bootstrap import auc_from_indices, bootstrap_ci, bootstrap_metric, resample_indices
    from cardio_stats.calibration import calibration, decision_curve
    from cardio_stats.clustered import log_t_estimate, wilson_ratio_mean
    from cardio_stats.correlation import correlation_matrix
    from cardio_stats.cv import summarize_folds
    from cardio_stats.cv_auc import (
        CV_DIFF_METHOD,
        CV_METHOD,
        FOLD_FACTOR,
        MIN_FOLDS,
        THIN_FOLD,
        cv_auc_difference,
        cv_auc_interval,
        variance_factor,
    )
    from cardio_stats.cv_metrics import cv_agreement, cv_binary_metrics, cv_calibration
    from cardio_stats.evaluate import NO_INTERVAL, difference_without_interval, evaluate_predictions
    from cardio_stats.figures import (
        forest_figures,
        plot_bland_altman,
        plot_calibration,
        plot_confusion,
        plot_decision_curve,
        plot_forest,
        plot_roc,
    )
    from cardio_stats.formatting import (
        PAIRED_DELONG,
        estimate_table,
        format_ci,
        format_difference,
        format_interval,
        format_p,
        format_paired,
        headline_auc,
        interval_note,
        paired_note,
        paired_test,
        pick,
    )
    from cardio_stats.logistic import (
        EstimationError,
        LogisticModel,
        fit_logistic,
        likelihood_ratio_test,
        select_and_fit,
        univariate_screen,
    )
    from cardio_stats.multitest import adjust_pvalues
    from cardio_stats.nested_cv import (
        NESTED_METHOD,
        NestedPlan,
        cross_validated_auc,
        cross_validated_auc_difference,
        nested_cv_estimate,
        refit_scores,
    )
    from cardio_stats.reclassification import cv_reclassification, idi, nri, reclassification
    from cardio_stats.result import Estimate, StatsError, TestResult
    from cardio_stats.roc import auc, delong_ci, delong_test, delong_unpaired_test, roc_curve_band
    from cardio_stats.stacking import Stacker, fit_stacker
    from cardio_stats.subgroups import SubgroupSkipped, by_subgroup
    from cardio_stats.table1 import Table1Tests, note_on_tests, table_one
    from cardio_stats.thresholds import (
        binary_metrics,
        choose_threshold,
        threshold_for_sensitivity,
        wilson_ci,
        youden_threshold,
    )

# Public name -> its submodule. `import cardio_stats` loads none of them (PEP 562): scipy, statsmodels, scikit-learn
# and matplotlib come in only with the function that needs them (a test pins the import set).
_SUBMODULE = {name: module for module, names in {
    "aggregate": ("AGGREGATIONS", "aggregate_scores"),
    "agreement": ("agreement",),
    "bootstrap": ("auc_from_indices", "bootstrap_ci", "bootstrap_metric", "resample_indices"),
    "calibration": ("calibration", "decision_curve"),
    "clustered": ("log_t_estimate", "wilson_ratio_mean"),
    "correlation": ("correlation_matrix",),
    "cv": ("summarize_folds",),
    "cv_auc": ("CV_DIFF_METHOD", "CV_METHOD", "FOLD_FACTOR", "MIN_FOLDS", "THIN_FOLD", "cv_auc_difference",
               "cv_auc_interval", "variance_factor"),
    "nested_cv": ("NESTED_METHOD", "NestedPlan", "cross_validated_auc", "cross_validated_auc_difference",
                  "nested_cv_estimate", "refit_scores"),
    "cv_metrics": ("cv_agreement", "cv_binary_metrics", "cv_calibration"),
    "evaluate": ("NO_INTERVAL", "difference_without_interval", "evaluate_predictions"),
    "figures": ("forest_figures", "plot_bland_altman", "plot_calibration", "plot_confusion", "plot_decision_curve",
                "plot_forest", "plot_roc"),
    "formatting": ("estimate_table", "format_ci", "format_difference", "format_interval", "format_p", "format_paired",
                   "headline_auc", "interval_note", "PAIRED_DELONG", "paired_note", "paired_test", "pick"),
    "logistic": ("EstimationError", "LogisticModel", "fit_logistic", "likelihood_ratio_test", "select_and_fit",
                 "univariate_screen"),
    "multitest": ("adjust_pvalues",),
    "reclassification": ("cv_reclassification", "idi", "nri", "reclassification"),
    "result": ("Estimate", "StatsError", "TestResult"),
    "roc": ("auc", "delong_ci", "delong_test", "delong_unpaired_test", "roc_curve_band"),
    "stacking": ("Stacker", "fit_stacker"),
    "subgroups": ("SubgroupSkipped", "by_subgroup"),
    "table1": ("table_one", "note_on_tests", "Table1Tests"),
    "thresholds": ("binary_metrics", "choose_threshold", "threshold_for_sensitivity", "wilson_ci",
                   "youden_threshold"),
}.items() for name in names}

__all__ = [
    "Estimate", "TestResult", "StatsError", "EstimationError",
    "auc", "delong_ci", "delong_test", "delong_unpaired_test", "roc_curve_band",
    "bootstrap_ci", "bootstrap_metric", "resample_indices", "auc_from_indices",
    "youden_threshold", "choose_threshold", "aggregate_scores", "AGGREGATIONS",
    "format_ci", "format_difference", "format_interval", "format_p", "calibration", "decision_curve", "adjust_pvalues",
    "threshold_for_sensitivity", "binary_metrics", "wilson_ci", "wilson_ratio_mean", "log_t_estimate",
    "univariate_screen", "LogisticModel", "fit_logistic", "select_and_fit", "likelihood_ratio_test",
    "correlation_matrix", "table_one", "note_on_tests", "Table1Tests", "agreement", "by_subgroup", "SubgroupSkipped",
    "summarize_folds",
    "plot_roc", "plot_calibration", "plot_confusion", "plot_decision_curve", "plot_bland_altman", "plot_forest",
    "forest_figures",
    "evaluate_predictions", "NO_INTERVAL", "difference_without_interval", "CV_METHOD", "CV_DIFF_METHOD",
    "cross_validated_auc", "cross_validated_auc_difference",
    "cv_auc_interval", "THIN_FOLD", "MIN_FOLDS", "FOLD_FACTOR", "variance_factor",
    "cv_auc_difference", "cv_agreement", "cv_binary_metrics", "cv_calibration", "cv_reclassification", "NESTED_METHOD",
    "NestedPlan", "nested_cv_estimate", "refit_scores",
    "nri", "idi", "reclassification", "estimate_table", "headline_auc", "interval_note", "pick",
    "paired_test", "PAIRED_DELONG", "format_paired", "paired_note", "Stacker", "fit_stacker",
]


def __getattr__(name: str) -> Any:
    module = _SUBMODULE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """Keeps `cardio_stats.agreement` (and calibration, reclassification) the function, as the eager package had
    it: importing a submodule of the same name would otherwise rebind the package attribute to the module."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SUBMODULE and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
