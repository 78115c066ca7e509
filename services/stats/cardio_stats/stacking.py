"""The stacker that fuses several models' scores into one risk: a logistic regression whose weights cannot be
negative.

Stacked generalisation weighs each base model's score by how much it adds (Wolpert 1992). Breiman (1996, "Stacked
regressions", Mach Learn 24:49) and LeBlanc & Tibshirani (1996, JASA 91:1641) found that an unconstrained stacker
gives noise real weight, of either sign, and that constraining the weights to be non-negative fixes most of it; the
SuperLearner's `method.NNloglik` is this logistic form (Polley & van der Laan 2010). A base score that carries
nothing then gets weight 0 half the time instead of never. Measured through cardio_fusion.fuse.fuse_fold (160
patients, 5 outer x 2 inner folds, 60 simulated data sets, the first modality carrying response, the others
noise), the fused AUC lost to the first modality alone, on average: 0.013 (one noise modality) and 0.017 (two)
with the unconstrained logistic stacker (C = 1); 0.006 and 0.007 with weights >= 0. Choosing C by inner
cross-validation (LogisticRegressionCV, L2 or L1) lost 0.012-0.017, and an L2 penalty on every modality but the
best single one, its strength chosen by cross-validation, 0.007-0.009 (benchmarks/crt_fusion.py shows the two
kept side by side).

Hand-written: scikit-learn's LogisticRegression has no sign constraint on its coefficients and statsmodels'
constrained fits take equalities only; SciPy's bounded L-BFGS-B minimises the penalised log-likelihood here.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cardio_stats.result import StatsError


@dataclass(frozen=True)
class Stacker:
    """A fitted stacker: standardize each column with the training mean and SD, then logistic(intercept + x·coef)."""

    mean: np.ndarray
    sd: np.ndarray
    coef: np.ndarray       # per SD of each column, >= 0 where the fit was non-negative
    intercept: float

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        return self.intercept + ((np.asarray(x, dtype=np.float64) - self.mean) / self.sd) @ self.coef

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """(n, 2) class probabilities, scikit-learn's layout."""
        p = 1.0 / (1.0 + np.exp(-self.decision_function(x)))
        return np.column_stack([1.0 - p, p])

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """The stacker as a model bundle's part (ModelState.tensors): its own float64 arrays, `<prefix>.mean`, `.sd`,
        `.coef` and `.intercept` (one value), which `from_arrays` reads back to the same scores, bit for bit."""
        return {f"{prefix}.{k}": np.atleast_1d(np.asarray(getattr(self, k), dtype=np.float64)).copy()
                for k in STACKER_ARRAYS}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Any], prefix: str) -> Stacker:
        """The stacker `to_arrays` wrote, from NumPy arrays or the torch tensors a bundle reads back; a missing or
        mis-shaped array is a StatsError naming it."""
        missing = [f"{prefix}.{k}" for k in STACKER_ARRAYS if f"{prefix}.{k}" not in arrays]
        if missing:
            raise StatsError(f"the stacker's array(s) {', '.join(missing)} are missing")
        mean, sd, coef, intercept = (np.asarray(arrays[f"{prefix}.{k}"], dtype=np.float64) for k in STACKER_ARRAYS)
        if not (mean.ndim == 1 and mean.shape == sd.shape == coef.shape and intercept.shape == (1,)):
            raise StatsError(f"the stacker's arrays {prefix}.* do not fit together: mean {mean.shape}, sd {sd.shape}, "
                             f"coef {coef.shape}, intercept {intercept.shape} (one value)")
        return cls(mean, sd, coef, float(intercept[0]))


STACKER_ARRAYS = ("mean", "sd", "coef", "intercept")


def fit_stacker(x: np.ndarray, y: np.ndarray, *, nonnegative: bool | Sequence[bool] = True,
                penalty: float = 1.0) -> Stacker:
    """Logistic regression of y (0/1) on the standardized columns of x, with the ridge penalty `penalty`/2 · |coef|²
    on the summed log-likelihood (scikit-learn's C = 1/penalty; the intercept is not penalised). `nonnegative`:
    every weight >= 0 (True), none constrained (False), or one flag per column (a clinical covariate may weigh
    either way; a model's score of the outcome should not)."""
    from scipy.optimize import minimize

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.ndim != 2 or x.shape[0] != y.size:
        raise StatsError(f"the stacker needs one row of scores per label: x is {x.shape}, y has {y.size}")
    if not np.isfinite(x).all() or not np.isin(y, (0.0, 1.0)).all():
        raise StatsError("the stacker needs finite scores and labels 0/1")
    if y.min() == y.max():
        raise StatsError(f"the stacker needs both classes; all {y.size} labels are {int(y[0])}")
    mean, sd = x.mean(0), x.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    z = (x - mean) / sd

    def loss(b: np.ndarray) -> tuple[float, np.ndarray]:
        eta = b[0] + z @ b[1:]
        residual = 1.0 / (1.0 + np.exp(-eta)) - y
        value = float(np.sum(np.logaddexp(0.0, eta) - y * eta) + 0.5 * penalty * b[1:] @ b[1:])
        return value, np.concatenate([[residual.sum()], z.T @ residual + penalty * b[1:]])

    flags = [bool(nonnegative)] * z.shape[1] if isinstance(nonnegative, (bool, np.bool_)) else list(nonnegative)
    if len(flags) != z.shape[1]:
        raise StatsError(f"nonnegative has {len(flags)} flags for {z.shape[1]} columns")
    bounds = [(None, None)] + [(0.0, None) if f else (None, None) for f in flags]
    fit = minimize(loss, np.zeros(z.shape[1] + 1), jac=True, method="L-BFGS-B", bounds=bounds)
    return Stacker(mean, sd, fit.x[1:], float(fit.x[0]))
