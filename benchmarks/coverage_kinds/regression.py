"""The coverage benchmark's regression kinds (issue 53): the agreement rows a K-fold report prints for a continuous
target (MAE, RMSE, R², Bland–Altman bias and limits), as perfusion_polar's segment flow reserves and echo_cmr's
T1, T2 and ECV are reported.

Data: five Gaussian features a patient (patient part u ~ N(0, 0.6 I)); half the data sets with one record per
patient, half with 1-3, each record x = u + N(0, 0.4 I), so a record's features are N(0, I). The target is the
patient's: y = 1 + beta.u + e, e ~ N(0, 1), the same for each of a patient's records (a CMR value against several
echo clips). "null": beta = 0; "signal": beta = (0.8, 0.8, 0, 0, 0), a population R² of about 0.43 for the best
linear model of one record. Each data set goes through cardio's patient-grouped 5-fold split
(`cardio.data.make_folds`); in each fold a ridge regression (penalty 1, intercept free) is fitted on the training
records and predicts the test records. "noisy-null" and "noisy-signal" (`--settings`) fit the same data by a
network's kind of fit instead: least squares by minibatch SGD (batches of about 16 records, learning rate 0.05, 3
epochs) from a random start N(0, 0.5), far from converged at 100 patients, so that the fold models differ by their
random starts and batch orders, not only by their training data (as the headline's deep kinds do:
benchmarks/coverage_kinds/headline.py). "precise" is "signal" with features that nearly fix the target (target
noise SD 0.1, records' feature noise variance 0.0025: a population R² of about 0.99), as perfusion_polar's polar maps
fix their flow reserves.
KINDS are what a report prints now (`cardio_stats.cv_agreement`: the mean of the per-fold values; for MAE and RMSE
the folds' test noise x 1.75 and x 2 plus their excess spread on the log scale, for the Bland–Altman bias its folds'
biases regressed on their target contrasts plus their test noise, for its limits the bias's and the SD's intervals
combined by MOVER, for R² none), BEFORE the pooled out-of-fold predictions with one model's intervals
(`cardio_stats.agreement`; what a report printed before, the patient bootstrap, is that function at 866b861, whose
figures docs/statistics.md keeps), CANDIDATES measured and not chosen (or chosen, and named so).

Truth. A cross-validated row estimates the procedure's expected value at this cohort size (docs/statistics.md): the
mean, over data sets, of the fold models' population values. A fold model w0 + w.x errs on a random record by
d = pred - y ~ N(mu, s^2) with mu = w0 - 1 and s^2 = 0.6 |w - beta|^2 + 0.4 |w|^2 + 1, so its MAE is the folded
normal's mean, its RMSE sqrt(mu^2 + s^2), its bias mu, its limits mu -+ 1.96 s and its R² 1 - (mu^2 + s^2) / Var(y),
Var(y) = 0.6 |beta|^2 + 1: exact.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial

import numpy as np
import pandas as pd
from scipy.stats import norm
from scipy.stats import t as t_dist

from cardio.data import make_folds
from cardio_stats import agreement, clustered
from cardio_stats.agreement import LOA_COVERAGE
from cardio_stats.cv_metrics import (
    _bias_control_se,
    _fold_parts,
    _folds,
    _limits,
    _noise_and_spread,
    _noise_fold,
    _noise_se,
    cv_agreement,
    fold_mean,
)

from . import Draws, Kind, draws, estimate_of, is_clustered, kind, memo

P, RHO, FOLDS, RIDGE = 5, 0.6, 5, 1.0
NOISY = "noisy-"  # a setting's prefix: the SGD learner
SETTINGS = ("null", "signal", f"{NOISY}null", f"{NOISY}signal", "precise")
BETA = {"null": np.zeros(P), "signal": np.r_[0.8, 0.8, np.zeros(P - 2)]}
BETA["precise"] = BETA["signal"]
#: Each setting's target noise SD and its records' feature noise variance; "precise": features that nearly fix the
#: target (as perfusion_polar's polar maps fix their flow reserves), a population R² of about 0.99.
NOISE = {"precise": (0.1, 0.0025)}
NOISE_DEFAULT = (1.0, 1 - RHO)
CV = {"method": "kfold", "folds": FOLDS, "repeats": 1, "stratify": False}
RESAMPLES = 500  # the BEFORE bootstrap (a report uses 2,000; percentile limits move little)
METRICS = {"MAE": "mae", "RMSE": "rmse", "R²": "r2", "Bland–Altman bias": "ba_bias",
           "Bland–Altman lower limit": "ba_loa_low", "Bland–Altman upper limit": "ba_loa_high"}
Z_LOA = float(norm.ppf(0.5 + LOA_COVERAGE / 2.0))

BEFORE: dict[str, Kind] = {}
CANDIDATES: dict[str, Kind] = {}


@dataclass
class Set:
    """One simulated data set's out-of-fold predictions and the mean of its fold models' true values."""

    y: np.ndarray
    pred: np.ndarray
    ids: np.ndarray
    clustered: bool
    fold: np.ndarray
    truth: dict[str, float]
    seed: int


def truths(w0: float, w: np.ndarray, beta: np.ndarray, noise: tuple[float, float] = NOISE_DEFAULT
           ) -> dict[str, float]:
    """Population values of the linear prediction w0 + w.x of y = 1 + beta.u + e (module docstring), `noise` the
    target's noise SD and the records' feature noise variance."""
    e_sd, x_var = noise
    mu = w0 - 1.0
    s = float(np.sqrt(RHO * (w - beta) @ (w - beta) + x_var * w @ w + e_sd**2))
    mse = mu * mu + s * s
    return {"mae": float(s * np.sqrt(2 / np.pi) * np.exp(-mu * mu / (2 * s * s)) + mu * (1 - 2 * norm.cdf(-mu / s))),
            "rmse": float(np.sqrt(mse)), "r2": 1.0 - mse / float(RHO * beta @ beta + e_sd**2), "ba_bias": mu,
            "ba_loa_low": mu - Z_LOA * s, "ba_loa_high": mu + Z_LOA * s}


def _ridge(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Ridge regression with a free intercept (centred, closed form)."""
    xm, ym = x.mean(axis=0), y.mean()
    xc = x - xm
    w = np.linalg.solve(xc.T @ xc + RIDGE * np.eye(x.shape[1]), xc.T @ (y - ym))
    return float(ym - xm @ w), w


def _sgd(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, epochs: int = 3, lr: float = 0.05
         ) -> tuple[float, np.ndarray]:
    """Least squares by minibatch SGD from a random start (the module docstring's noisy learner)."""
    xa = np.c_[np.ones(len(x)), x]
    w = rng.normal(scale=0.5, size=xa.shape[1])
    for _ in range(epochs):
        for batch in np.array_split(rng.permutation(len(x)), max(1, len(x) // 16)):
            w -= lr * xa[batch].T @ (xa[batch] @ w - y[batch]) / batch.size
    return float(w[0]), w[1:]


def draw(rng: np.random.Generator, n: int, clustered: bool, setting: str) -> tuple[np.ndarray, np.ndarray,
                                                                                   np.ndarray]:
    """Records (x, y, patient ids) of n patients (module docstring): 1-3 records a patient where `clustered`."""
    k = rng.integers(1, 4, size=n) if clustered else np.ones(n, dtype=int)
    ids = np.repeat(np.arange(n), k)
    e_sd, x_var = NOISE.get(setting, NOISE_DEFAULT)
    u = rng.normal(scale=np.sqrt(RHO), size=(n, P))
    y = (1.0 + u @ BETA[setting] + e_sd * rng.normal(size=n))[ids]
    return u[ids] + rng.normal(scale=np.sqrt(x_var), size=(ids.size, P)), y, ids


def one_set(seed: int, n: int, setting: str) -> Set:
    rng = np.random.default_rng(seed)
    clustered = is_clustered(seed)
    noisy, setting = setting.startswith(NOISY), setting.removeprefix(NOISY)
    x, y, ids = draw(rng, n, clustered, setting)
    beta = BETA[setting]
    table = pd.DataFrame({"patient_id": ids.astype(str), "record_id": np.arange(ids.size).astype(str), "label": 0})
    fold, pred = np.empty(ids.size, dtype=object), np.empty(ids.size)
    per_fold = []
    for f in make_folds(table, CV, "label", seed):
        w0, w = _sgd(rng, x[f.train], y[f.train]) if noisy else _ridge(x[f.train], y[f.train])
        pred[f.test] = w0 + x[f.test] @ w
        fold[f.test] = f.name
        per_fold.append(truths(w0, w, beta, NOISE.get(setting, NOISE_DEFAULT)))
    return Set(y, pred, ids, clustered, fold.astype(str), pd.DataFrame(per_fold).mean().to_dict(), seed)


@lru_cache(maxsize=16)  # every cell of a grid row: its five settings at two sizes (fewer: each row drew them again)
def cell(n: int, setting: str, n_sets: int, seed: int) -> tuple[Set, ...]:
    start = (seed * 10**7 + n * 10**4 + 5000 * setting.endswith("signal") + 2500 * setting.startswith(NOISY)
             + 500_000 * (setting == "precise") + 7 * 10**6)
    return tuple(one_set(s, n, setting) for s in range(start, start + n_sets))


Interval = Callable[[Set], tuple[float, float, float]]


def _t_interval(mean: float, se: float, df: float) -> tuple[float, float, float]:
    """(mean, low, high) of the 95% t interval at `df`."""
    half = float(t_dist.ppf(0.975, df)) * se
    return mean, mean - half, mean + half


def _kind(metric: str, interval: Interval) -> Kind:
    def run(n_patients: int, setting: str, n_sets: int, seed: int) -> Draws:
        return draws(cell(n_patients, setting, n_sets, seed), interval, metric)
    run.__name__ = metric
    return run


def _memo(tag: str, s: Set, compute: Callable[[], dict]) -> dict:
    return memo(("regression", tag, s.seed, s.y.size), compute)


def _pooled(s: Set) -> dict:
    return _memo("pooled", s, lambda: agreement(s.y, s.pred, n_resamples=RESAMPLES,
                                                groups=s.ids if s.clustered else None))


def _fold_values(s: Set, metric: str, r2_within: bool = False) -> np.ndarray:
    """Each fold's value of `metric` on its test records; R² against the run's variance of y (the pooled R²'s
    denominator), or with `r2_within` against the fold's own."""
    parts, _, _ = _fold_parts(s.fold, s.y.size, s.ids)
    var_all = float(np.var(s.y))
    out = []
    for i in parts:
        d = s.pred[i] - s.y[i]
        value = {"mae": np.abs(d).mean(), "rmse": np.sqrt((d * d).mean()), "ba_bias": d.mean(),
                 "ba_loa_low": d.mean() - Z_LOA * d.std(ddof=1), "ba_loa_high": d.mean() + Z_LOA * d.std(ddof=1),
                 "r2": 1.0 - (d * d).mean() / (float(np.var(s.y[i])) if r2_within else var_all)}[metric]
        out.append(float(value))
    return np.array(out)


def _fold_t(s: Set, metric: str, r2_within: bool = False) -> tuple[float, float, float]:
    """cardio's fold-level interval (cv_metrics.fold_mean: the corrected t) of the per-fold values."""
    _, ratios, reps = _fold_parts(s.fold, s.y.size, s.ids)
    return estimate_of(fold_mean(metric, _fold_values(s, metric, r2_within), ratios, reps, 0.95, s.y.size))


def _cv(s: Set) -> dict:
    return _memo("cv", s, lambda: cv_agreement(s.y, s.pred, s.fold, groups=s.ids))


def _row(rows: Callable[[Set], dict], metric: str) -> Interval:
    """The interval of one metric of those `rows` gives a set."""
    return lambda s: estimate_of(rows(s)[metric])


for _shown, _metric in METRICS.items():
    kind(_shown, SETTINGS)(_kind(_metric, _row(_cv, _metric)))
    BEFORE[_shown] = _kind(_metric, _row(_pooled, _metric))
CANDIDATES["R²: fold mean, corrected t"] = _kind("r2", lambda s: _fold_t(s, "r2"))
CANDIDATES["R²: fold mean of within-fold R², corrected t"] = _kind("r2", lambda s: _fold_t(s, "r2", True))


def _hybrid(s: Set, metric: str, c: float = 2.0, log: bool = False) -> tuple[float, float, float]:
    """'Fold noise + training spread' (cardio's MAE and RMSE interval at c = 1.75 on the log scale: cv_metrics'
    _noise_and_spread, whose _noise_se this calls): var = c v/K + (1/K + n_test/n_train) max(0, S² - v), v the
    folds' mean patient-clustered variance of the metric over their test records (its influence values: |d| for the
    MAE, d²/(2 RMSE) for the RMSE, d -+ z (d - bias)²/(2 SD) for the limits), S² the per-fold values' variance;
    t with Satterthwaite's df (the normal's where S² <= v). The test records' noise is read from every record, as the
    AUC's fold DeLong x 2 reads it; only what the folds' spread adds beyond it is read from five values. `log`: the
    interval of log(mean) at SE / mean (the delta method), transformed back, for the MAE and RMSE, which are
    positive and whose low estimates came with small spreads."""
    parts, ratios, reps = _fold_parts(s.fold, s.y.size, s.ids)
    noise = []
    for i in parts:
        d = s.pred[i] - s.y[i]
        if metric in ("mae", "rmse", "ba_bias"):  # the service's own noise (ba_bias: its limits' bias part)
            noise.append(_noise_fold(d, s.ids[i])["bias noise" if metric == "ba_bias" else metric])
            continue
        # a limit read whole (before MOVER), its influence d -+ z (d - bias)² / (2 SD)
        sign = -1.0 if metric == "ba_loa_low" else 1.0
        influence = d + sign * Z_LOA * (d - d.mean()) ** 2 / (2 * d.std(ddof=1))
        noise.append(clustered.mean_variance(influence, np.unique(s.ids[i], return_inverse=True)[1])[0])
    values = _fold_values(s, metric)
    if log:
        mean, _, lo, hi, _ = _noise_and_spread(values, np.array(noise), ratios, reps, 0.95, c)
        return mean, lo, hi
    return _t_interval(float(values.mean()), *_noise_se(values, np.array(noise), ratios, reps, c))


for _shown, _metric in METRICS.items():
    if _metric != "r2":
        CANDIDATES[f"{_shown}: fold noise + training spread"] = _kind(_metric, partial(_hybrid, metric=_metric))
for _shown in ("MAE", "RMSE"):
    _metric = METRICS[_shown]
    CANDIDATES[f"{_shown}: fold mean, corrected t (printed before)"] = _kind(_metric, partial(_fold_t, metric=_metric))
    for _c in (1.0, 1.25, 1.5, 1.75, 2.0):  # the rules' candidates (cardio's NOISE_FACTORS), on the log scale
        CANDIDATES[f"{_shown}: fold noise x {_c:g} + training spread, log scale"] = _kind(
            _metric, partial(_hybrid, metric=_metric, c=_c, log=True))


def _mover(s: Set, metric: str, c: float) -> tuple[float, float, float]:
    """A limit of agreement, bias -+ z SD, with cardio's interval (cv_metrics._limits: the bias's and the SD's
    'fold noise + training spread' intervals combined by MOVER, Zou 2013) at factor c: the rule's candidates."""
    parts, ratios, reps, codes = _folds(s.fold, s.y.size, s.ids)
    diffs = [s.pred[i] - s.y[i] for i in parts]
    noise = [_noise_fold(d, codes[i]) for d, i in zip(diffs, parts)]
    lo, hi, _ = _limits(diffs, noise, ratios, reps, 0.95, c)[metric]
    return float(_fold_values(s, metric).mean()), lo, hi


for _shown in ("Bland–Altman lower limit", "Bland–Altman upper limit"):
    CANDIDATES[f"{_shown}: fold mean, corrected t (printed before)"] = _kind(
        METRICS[_shown], partial(_fold_t, metric=METRICS[_shown]))
    for _c in (1.0, 1.25, 1.5, 1.75, 2.0):  # the rules' candidates; cardio's LOA_NOISE_FACTOR is its choice
        CANDIDATES[f"{_shown}: MOVER of the bias's and SD's noise x {_c:g} + training spread"] = _kind(
            METRICS[_shown], partial(_mover, metric=METRICS[_shown], c=_c))


def _bias_se(y: np.ndarray, pred: np.ndarray, parts: list[np.ndarray], ratios: np.ndarray, reps: np.ndarray,
             codes: np.ndarray, corrected: bool = True) -> tuple[float, float]:
    """SE and df of the Bland–Altman bias's fold mean split at each fold's training targets (a candidate, not
    adopted: docs/statistics.md). Fold k's bias is A_k + C_k: A_k its mean prediction less its training records'
    mean target, C_k that training mean less its own mean target. The C_k's mean is a fixed contrast of the targets,
    its variance read from the records; the A_k's mean has their folds' spread (the corrected t's variance, or with
    `corrected` False the plain one) plus the variance of the targets' mean, the most a mean prediction can share with
    every fold's training mean. Each fold's training records are every other fold's of its repeat; with R repeats
    the mean of the R variances and the fewest df (Satterthwaite's, from the A_k's part)."""
    terms, dfs = [], []
    for r in np.unique(reps):
        folds = [parts[j] for j in np.flatnonzero(reps == r)]
        members = np.concatenate(folds)
        k, n, total = len(folds), members.size, float(y[members].sum())
        offsets = np.array([pred[i].mean() - (total - y[i].sum()) / (n - i.size) for i in folds])
        inverse = np.array([1.0 / (n - i.size) for i in folds])
        w = np.zeros(y.size)  # each record's weight in the C_k's mean (they sum to 0: a contrast)
        for j, i in enumerate(folds):
            w[i] = (inverse.sum() - inverse[j] - 1.0 / i.size) / k
        centred = n * w[members] * (y[members] - y[members].mean())
        var_c = clustered.mean_variance(centred, codes[members], centre=0.0)[0]
        var_mean = clustered.mean_variance(y[members], codes[members])[0]
        var_a = ((1.0 / k + float(ratios[reps == r].mean())) if corrected else 1.0 / k) * float(offsets.var(ddof=1))
        term = var_a + var_c + var_mean
        terms.append(term)
        dfs.append(term**2 * (k - 1) / var_a**2 if var_a > 0 else np.inf)
    return float(np.sqrt(np.mean(terms))), float(min(dfs))


def _split(s: Set, corrected: bool) -> tuple[float, float, float]:
    """The Bland–Altman bias's fold mean with the interval of its split at the folds' training targets
    (``_bias_se``): the rule's candidates, t at its df."""
    parts, ratios, reps, codes = _folds(s.fold, s.y.size, s.ids)
    return _t_interval(float(_fold_values(s, "ba_bias").mean()),
                       *_bias_se(s.y, s.pred, parts, ratios, reps, codes, corrected))


for _corrected in (False, True):  # the rule's candidates (not adopted: the "precise" setting)
    CANDIDATES[f"Bland–Altman bias: split at the training targets, {'corrected' if _corrected else 'plain'} t"] = \
        _kind("ba_bias", partial(_split, corrected=_corrected))


def _control(s: Set, factor: float, corrected: bool) -> tuple[float, float, float]:
    """The Bland–Altman bias's fold mean with the interval of its folds' biases regressed on their training-less-test
    mean targets (cv_metrics._bias_control_se): the rule's candidates, t at its df."""
    parts, ratios, reps, codes = _folds(s.fold, s.y.size, s.ids)
    diffs = [s.pred[i] - s.y[i] for i in parts]
    noise = np.array([_noise_fold(d, codes[i])["bias noise"] for d, i in zip(diffs, parts)])
    return _t_interval(float(np.mean([d.mean() for d in diffs])),
                       *_bias_control_se(s.y, diffs, parts, ratios, reps, noise, factor, corrected))


CANDIDATES["Bland–Altman bias: fold mean, corrected t (printed before)"] = _kind("ba_bias",
                                                                          partial(_fold_t, metric="ba_bias"))
# the rule's, narrowest first; cardio's BIAS_NOISE_FACTOR is its choice (plain t, 1)
for _factor, _corrected in ((1.0, False), (1.25, False), (1.5, False), (1.0, True)):
    CANDIDATES[f"Bland–Altman bias: control for the target contrast, {'corrected' if _corrected else 'plain'} t, "
               f"noise x {_factor:g}"] = _kind("ba_bias", partial(_control, factor=_factor, corrected=_corrected))
