"""cardio.stats: the shared statistics/evaluation service (NumPy/SciPy/statsmodels/scikit-learn, no torch)."""
from __future__ import annotations

from cardio.stats.aggregate import AGGREGATIONS, aggregate_scores
from cardio.stats.agreement import agreement
from cardio.stats.bootstrap import auc_from_indices, bootstrap_ci, bootstrap_metric, resample_indices
from cardio.stats.calibration import calibration, decision_curve
from cardio.stats.correlation import correlation_matrix
from cardio.stats.cv import summarize_folds
from cardio.stats.evaluate import evaluate_predictions
from cardio.stats.figures import (
    forest_figures,
    plot_bland_altman,
    plot_calibration,
    plot_confusion,
    plot_decision_curve,
    plot_forest,
    plot_roc,
)
from cardio.stats.formatting import estimate_table, format_ci, format_interval, format_p, paired_test, pick
from cardio.stats.logistic import (
    EstimationError,
    LogisticModel,
    fit_logistic,
    likelihood_ratio_test,
    select_and_fit,
    univariate_screen,
)
from cardio.stats.multitest import adjust_pvalues
from cardio.stats.reclassification import idi, nri, reclassification
from cardio.stats.result import Estimate, StatsError, TestResult
from cardio.stats.roc import auc, delong_ci, delong_test, delong_unpaired_test, roc_curve_band
from cardio.stats.subgroups import SubgroupSkipped, by_subgroup
from cardio.stats.table1 import table_one
from cardio.stats.thresholds import (
    binary_metrics,
    choose_threshold,
    threshold_for_sensitivity,
    wilson_ci,
    youden_threshold,
)

__all__ = [
    "Estimate", "TestResult", "StatsError", "EstimationError",
    "auc", "delong_ci", "delong_test", "delong_unpaired_test", "roc_curve_band",
    "bootstrap_ci", "bootstrap_metric", "resample_indices", "auc_from_indices",
    "youden_threshold", "choose_threshold", "aggregate_scores", "AGGREGATIONS",
    "format_ci", "format_interval", "format_p", "calibration", "decision_curve", "adjust_pvalues",
    "threshold_for_sensitivity", "binary_metrics", "wilson_ci",
    "univariate_screen", "LogisticModel", "fit_logistic", "select_and_fit", "likelihood_ratio_test",
    "correlation_matrix", "table_one", "agreement", "by_subgroup", "SubgroupSkipped", "summarize_folds",
    "plot_roc", "plot_calibration", "plot_confusion", "plot_decision_curve", "plot_bland_altman", "plot_forest",
    "forest_figures",
    "evaluate_predictions", "nri", "idi", "reclassification", "estimate_table", "pick", "paired_test",
]
