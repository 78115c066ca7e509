"""The coverage benchmark's one-model rows (issue 53): what a one-fold run (a holdout, `cardio predict` on another
cohort) prints beside its AUC. Its estimand is that one model's value on the population its patients come from
(docs/statistics.md), so the model here is fixed, not fitted, and its population values are exact.

Binary rows: other.py's data (benchmarks/cv_coverage.py's features: five Gaussian features, prevalence 0.4, half
the data sets with 1-3 records a patient; "signal": features 0 and 1 shifted 0.6 SD), each patient's class drawn at
random (`draw_binary`), scored by the fixed risk model expit(-0.4 + 0.8 x0 + 0.8 x1 - 0.2 x2), its threshold 0.4
fixed beforehand: its sensitivity, specificity, accuracy, PPV, NPV, F1, Brier score and calibration slope and
intercept as `cardio_stats.binary_metrics` and `calibration` give them for one fold (cardio_stats.evaluate; the
intervals are docs/statistics.md's "One model's rows"). Truths: other.truths (exact, or Gauss-Hermite).
Reclassification rows: a holdout fusion's IDI and category-free NRI of a new fixed model over an old one (OLD) on
signal data, as `cardio_stats.reclassification` gives them; truths: other._reclass_truths.
Regression rows: regression.py's data scored by the fixed prediction 1.1 + 0.7 x0 + 0.7 x1 (shrunk, biased), its
MAE, RMSE, R², Bland–Altman bias and limits as `cardio_stats.agreement` gives them; truths: regression.truths.
Any row that still resamples takes RESAMPLES (a report 2,000).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from cv_coverage import PREVALENCE, _features
from scipy.special import expit

from cardio_stats import agreement, binary_metrics, calibration, reclassification

from . import Draws, Kind, draws, estimate_of, kind
from .other import _reclass_truths
from .other import truths as binary_truths
from .regression import draw as draw_regression
from .regression import truths as regression_truths

W0, W, THRESHOLD = -0.4, np.r_[0.8, 0.8, -0.2, 0.0, 0.0], 0.4  # the fixed risk model and its threshold
R0, R = 1.1, np.r_[0.7, 0.7, 0.0, 0.0, 0.0]  # the fixed prediction of the continuous target
RESAMPLES = 500
BINARY = {"sensitivity": "sensitivity", "specificity": "specificity", "accuracy": "accuracy", "PPV": "ppv",
          "NPV": "npv", "F1": "f1", "Brier score": "brier", "calibration slope": "calibration_slope",
          "calibration intercept": "calibration_intercept"}
REGRESSION = {"MAE": "mae", "RMSE": "rmse", "R²": "r2", "Bland–Altman bias": "ba_bias",
              "Bland–Altman lower limit": "ba_loa_low", "Bland–Altman upper limit": "ba_loa_high"}


@dataclass
class Set:
    """One cohort scored by the fixed model: the rows a one-fold run prints, and the model's population values."""

    rows: dict
    truth: dict[str, float]


def draw_binary(rng: np.random.Generator, n: int, clustered: bool, planted: bool) -> tuple[np.ndarray, np.ndarray,
                                                                                           np.ndarray]:
    """Records (x, y, patient ids) of n patients drawn from the population: each patient's class at random (the
    cross-validated kinds fix the count at 40%, as a stratified split does; a cohort's own count varies), then
    cv_coverage's features (1-3 records a patient where `clustered`)."""
    y_pat = (rng.random(n) < PREVALENCE).astype(int)
    ids = np.repeat(np.arange(n), rng.integers(1, 4, size=n) if clustered else 1)
    x, _ = _features(rng, ids, y_pat, planted)
    return x, y_pat[ids], ids


@lru_cache(maxsize=8)
def binary_cell(n: int, setting: str, n_sets: int, seed: int) -> tuple[Set, ...]:
    delta = np.r_[0.6, 0.6, 0.0, 0.0, 0.0] if setting == "signal" else np.zeros(5)
    truth = {k: float(v[0]) for k, v in binary_truths(np.array([W0]), W[None], delta,
                                                       np.array([THRESHOLD])).items()}
    out = []
    start = seed * 10**7 + n * 10**4 + 5000 * (setting == "signal") + 8 * 10**6
    for s in range(start, start + n_sets):
        x, y, ids = draw_binary(np.random.default_rng(s), n, s % 2 == 1, setting == "signal")
        p, groups = expit(W0 + x @ W), ids if s % 2 == 1 else None  # patient ids where some have several records
        rows = {**binary_metrics(y, p, THRESHOLD, n_resamples=RESAMPLES, seed=s, groups=groups),
                **calibration(y, p, n_resamples=RESAMPLES, seed=s, groups=groups)}
        out.append(Set(rows, truth))
    return tuple(out)


#: The reclassification rows' fixed old model, both settings on "signal" data (other.py's OLD): "null" adds x2,
#: which carries nothing, to an old model on x0 and x1; "signal" adds x0 to an old model on x1 and x2.
OLD = {"null": (W0, np.r_[0.8, 0.8, 0.0, 0.0, 0.0], np.r_[0.8, 0.8, 0.5, 0.0, 0.0]),
       "signal": (W0, np.r_[0.0, 0.8, -0.2, 0.0, 0.0], W)}


@lru_cache(maxsize=8)
def reclassification_cell(n: int, setting: str, n_sets: int, seed: int) -> tuple[Set, ...]:
    """A holdout fusion's IDI and category-free NRI of a new fixed model over an old one (OLD), with the patient
    bootstrap a one-fold run prints (`cardio_stats.reclassification`); truths: other._reclass_truths."""
    delta = np.r_[0.6, 0.6, 0.0, 0.0, 0.0]
    w0, old, new = OLD[setting]
    t_new, t_old = ({k: float(v[0]) for k, v in binary_truths(np.array([w0]), w[None], delta,
                                                               np.array([THRESHOLD])).items()} for w in (new, old))
    truth = _reclass_truths((w0, new), (w0, old), delta, t_new, t_old)
    out = []
    start = seed * 10**7 + n * 10**4 + 5000 * (setting == "signal") + 8 * 10**6 + 2500
    for s in range(start, start + n_sets):
        x, y, ids = draw_binary(np.random.default_rng(s), n, s % 2 == 1, True)
        rows = {e.metric: e for e in reclassification(y, expit(w0 + x @ old), expit(w0 + x @ new),
                                                      n_resamples=RESAMPLES, seed=s,
                                                      groups=ids if s % 2 == 1 else None)}
        out.append(Set(rows, truth))
    return tuple(out)


@lru_cache(maxsize=8)
def regression_cell(n: int, setting: str, n_sets: int, seed: int) -> tuple[Set, ...]:
    from .regression import BETA

    truth = regression_truths(R0, R, BETA[setting])
    out = []
    start = seed * 10**7 + n * 10**4 + 5000 * (setting == "signal") + 9 * 10**6
    for s in range(start, start + n_sets):
        x, y, ids = draw_regression(np.random.default_rng(s), n, s % 2 == 1, setting)
        out.append(Set(agreement(y, R0 + x @ R, n_resamples=RESAMPLES, seed=s,
                                 groups=ids if s % 2 == 1 else None), truth))
    return tuple(out)


def _kind(cells: Callable[[int, str, int, int], tuple[Set, ...]], metric: str) -> Kind:
    def run(n_patients: int, setting: str, n_sets: int, seed: int) -> Draws:
        return draws(cells(n_patients, setting, n_sets, seed), lambda s: estimate_of(s.rows[metric]), metric)
    run.__name__ = metric
    return run


for _shown, _metric in BINARY.items():
    kind(f"{_shown}, one fixed model (holdout, external)")(_kind(binary_cell, _metric))
for _shown, _metric in REGRESSION.items():
    kind(f"{_shown}, one fixed model (holdout, external)")(_kind(regression_cell, _metric))
kind("IDI, two fixed models (holdout)")(_kind(reclassification_cell, "idi"))
kind("NRI, category-free, two fixed models (holdout)")(_kind(reclassification_cell, "nri"))
