"""Nested CV of a pipeline that selects its variables on the labels: spect_polar's conventional models.

spect_polar's `cardio_refit` refits, inside every training set of nested CV, He et al.'s screen (one maximum-
likelihood logistic model per clinical variable, kept where its Wald p < 0.1) and then the clinical + PSD and
clinical + PBW logistic models on the kept variables with the phase variable forced in
(`analysis.fit_conventional_models`). The selection makes each fit noisier than the fixed-variable ridge model of
the headline kinds, and the SE floors of nested CV were chosen on those (docs/statistics.md): these kinds measure the
printed AUC and ΔAUC intervals on the screened pipeline.

Data (headline.draw): n patients, prevalence 0.4, half the data sets with 1-3 records a patient; six clinical
candidates (0-5) and two forced phase variables, 6 (model A, "PBW") and 7 (model B, "PSD"). Planted effects, in SD
of each variable:
- "null": none;
- "signal": 0.6 on clinical 0 and on both phase variables: both models have the same true AUC (about 0.72), so the
  ΔAUC's truth is 0 and its declared differences are false positives;
- "planted" (ΔAUC only): 0.6 on clinical 0 and on A's phase variable alone: A is better, the ΔAUC's power.

The pipeline is batched over every fit of a data set in NumPy (as headline.newton, and for the same reason); the
screen is the same test as `cardio_stats.univariate_screen(method="ml")` (univariable ML logistic, Wald p), and the
multivariable fit is ML with a ridge of 1e-3 so that a rare separated fit stays finite where spect_polar would drop
its least significant clinical variable. Truth: the mean population AUC of the outer fits (headline.truths).
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
from scipy.special import expit
from scipy.stats import norm

from . import Draws, kind
from .headline import SHIFT, Run, _both, _diff, _refitted

CLINICAL, P_ENTER = 6, 0.1
COLUMNS = {"A": np.r_[np.arange(CLINICAL), CLINICAL], "B": np.r_[np.arange(CLINICAL), CLINICAL + 1]}
SHIFTS = {"null": np.zeros(CLINICAL + 2),
          "signal": np.r_[SHIFT, np.zeros(CLINICAL - 1), SHIFT, SHIFT],
          "planted": np.r_[SHIFT, np.zeros(CLINICAL - 1), SHIFT, 0.0]}
#: Where each setting's data sets' seeds start within a size's 10^4: the headline kinds' (planted takes "strong"'s).
OFFSETS = {"null": 0, "signal": 5000, "planted": 2500}


def wald_p(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The screen's p-values: one univariable ML logistic model per column of x and row of 0/1 record weights
    (fits x columns), by batched Newton steps on (intercept, slope); Wald's two-sided p of the slope."""
    xt = x.T[None]  # (1, columns, records)
    wt = weights[:, None, :]
    b = np.zeros((weights.shape[0], x.shape[1], 2))
    for _ in range(30):
        p = expit(b[..., :1] + b[..., 1:] * xt)
        r, v = wt * (y - p), wt * p * (1 - p)
        g0, g1 = r.sum(-1), (r * xt).sum(-1)
        h00, h01, h11 = v.sum(-1), (v * xt).sum(-1), (v * xt * xt).sum(-1)
        det = h00 * h11 - h01 ** 2
        step = np.stack([(h11 * g0 - h01 * g1) / det, (h00 * g1 - h01 * g0) / det], axis=-1)
        b += step
        if np.abs(step).max() < 1e-8:
            break
    return 2 * norm.sf(np.abs(b[..., 1]) / np.sqrt(h00 / det))


def screened_newton(x: np.ndarray, y: np.ndarray, weights: np.ndarray, clinical: int = CLINICAL,
                    p_enter: float = P_ENTER, lam: float = 1e-3) -> np.ndarray:
    """The screened pipeline, one fit per row of record weights: the first `clinical` columns kept where the
    screen's p < p_enter, the rest forced in; then a logistic model on the kept columns (a dropped column's weight
    is 0). Returns (fits, 1 + columns) weights, intercept first."""
    fits, cols = weights.shape[0], x.shape[1]
    keep = np.ones((fits, cols + 1))
    keep[:, 1:clinical + 1] = wald_p(x[:, :clinical], y, weights) < p_enter
    xa = np.c_[np.ones(len(x)), x]
    pen = np.where(keep > 0, lam, 1.0)
    pen[:, 0] = 0.0
    w = np.zeros((fits, cols + 1))
    for _ in range(30):
        p = expit(w @ xa.T)
        grad = (((p - y) * weights) @ xa) * keep + pen * w
        hess = np.einsum("fn,ni,nj->fij", weights * p * (1 - p), xa, xa) * keep[:, :, None] * keep[:, None, :]
        hess[:, np.arange(cols + 1), np.arange(cols + 1)] += pen
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w * keep


def _one(setting: str) -> Callable[..., Run]:
    """The headline kinds' refitted run, on this module's features, planted effects and pipeline."""
    return partial(_refitted, columns=COLUMNS, shifts=SHIFTS[setting], fit=screened_newton)


@kind("AUC, refitted pipeline with a screen")
def auc_screened(n: int, setting: str, n_sets: int, seed: int) -> Draws:
    return _both("refitted, screened", _one(setting), n, setting, n_sets, seed, OFFSETS)


@kind("ΔAUC, refitted pipelines with a screen", ("null", "signal", "planted"))
def diff_screened(n: int, setting: str, n_sets: int, seed: int) -> Draws:
    """Planted: A's phase variable carries the effect, B's does not (power); signal: both do (false positives)."""
    return _diff("refitted, screened", _one(setting), n, setting, n_sets, seed, OFFSETS)
