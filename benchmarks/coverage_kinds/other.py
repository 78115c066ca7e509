"""The coverage benchmark's kinds besides the headline AUC and ΔAUC (issue 53): every other interval a report prints.

Data: benchmarks/cv_coverage.py's generator (its `draw`, imported): five Gaussian features, prevalence 0.4, half the
data sets with one record per patient and half with 1-3 (a patient's records share a patient effect, within-patient
correlation 0.6); "null": no feature carries the label, "signal": features 0 and 1 are shifted 0.6 SD between the
classes. Each data set goes through cardio's patient-grouped, stratified 5-fold split (`cardio.data.make_folds`);
in each fold a ridge logistic regression (cv_coverage's `fit_logistic`) is fitted on the training records, its
threshold chosen on them by Youden's rule (`cardio_stats.youden_threshold`, as the classical plugins do), and it
scores the test records. The intervals are then the ones cardio's own functions give for those out-of-fold
predictions: KINDS (what a report prints now), BEFORE (what it printed before issue 53), CANDIDATES (measured, not
chosen).

Truth. Every cross-validated row estimates the procedure's expected value at this cohort size (docs/statistics.md):
the mean, over data sets, of the fold models' population values. A record's features are Gaussian given its class,
so a fitted linear score lp = w0 + w.x is N(w0 + y w.delta, |w|^2) given the class y, and each fold model's value
is exact or a one-dimensional integral (Gauss-Hermite): AUC Phi(w.delta / sqrt(2) |w|); sensitivity at threshold
t, Phi((w0 + w.delta - t) / |w|); calibration slope w.delta / |w|^2 (the log-likelihood ratio of lp is linear in
lp); intercept, Brier score and IDI by quadrature; category-free NRI 2 (P(up | 1) - P(up | 0)), up being a
Gaussian event. The fold ensemble against the final model is an external row: its truth is this run's two models'
AUC difference, from 200,000 independent records.

Settings of the reclassification rows (IDI, NRI): both on "signal" data; "null": the new model adds features 2-4,
which carry nothing, to an old model on features 0 and 1; "signal": it adds feature 0 to an old model on 1-3.
"noisy-null" and "noisy-signal" (the Brier score's and the proportions' kinds): the same data, the fold models fitted
by a network's kind of fit instead, the headline's deep learner (`headline.sgd`: 3 epochs of minibatch SGD from a
random start), so that they differ by their starts and batch orders too. "strong" and "separating" (the proportions'
kinds): the classes differ by 1.9 and 2.4 SD on features 0 and 1 (`headline.draw`, AUC about 0.96 and 0.99), where
a fold's specificity or PPV is often 1: the proportions near their bound.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Callable, TypeVar

import numpy as np
import pandas as pd
from cv_coverage import PREVALENCE, draw, fit_logistic
from scipy.special import expit, logit
from scipy.stats import norm
from scipy.stats import t as t_dist

from cardio.data import make_folds
from cardio_stats import (
    binary_metrics,
    calibration,
    cv_auc_interval,
    delong_ci,
    delong_test,
    reclassification,
    youden_threshold,
)
from cardio_stats.cv_metrics import (
    PROPORTION_INTERVALS,
    PROPORTION_NOISE_FACTORS,
    _brier_folds,
    _cells,
    _corrected,
    _effective,
    _fold_parts,
    _folds,
    _noise_and_spread,
    _noise_se,
    _proportion_folds,
    cv_binary_metrics,
    cv_calibration,
    fold_mean,
)
from cardio_stats.reclassification import cv_reclassification, idi, nri

from . import Draws, Kind, draws, estimate_of, is_clustered, kind, memo
from .headline import SHIFTS, sgd
from .headline import draw as draw_shifted

FOLDS = 5
CV = {"method": "kfold", "folds": FOLDS, "repeats": 1, "stratify": True}
OLD = {"signal": np.array([1, 2, 3]), "null": np.array([0, 1])}  # the reclassification rows' old model
RESAMPLES = 500  # the BEFORE bootstraps (a report uses 2,000; percentile limits move little)
POPULATION = 200_000
_GH_X, _GH_W = np.polynomial.hermite.hermgauss(40)

BEFORE: dict[str, Kind] = {}
CANDIDATES: dict[str, Kind] = {}


def _register(table: dict[str, Kind], name: str) -> Callable[[Kind], Kind]:
    def add(f: Kind) -> Kind:
        table[name] = f
        return f
    return add


@dataclass
class Set:
    """One simulated data set's out-of-fold predictions and the true values of its fold models."""

    y: np.ndarray
    ids: np.ndarray
    clustered: bool
    fold: np.ndarray  # fold label of each record
    p: np.ndarray  # out-of-fold risk of the model on all five features
    thr: np.ndarray  # each record's fold threshold (a risk)
    old: dict[str, np.ndarray]  # out-of-fold risks of the reclassification rows' old models
    sub: np.ndarray  # records of subgroup 1 (a patient attribute independent of everything)
    truth: dict[str, float]  # mean over the folds of each metric's true value
    models: list[np.ndarray]  # each fold's (w0, w) on the five features, then the final model's
    seed: int


def _gauss(f: Callable[[np.ndarray], np.ndarray], mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """E f(z), z ~ N(mu, sd^2), per element (Gauss-Hermite, 40 nodes)."""
    z = mu[..., None] + np.sqrt(2) * sd[..., None] * _GH_X
    return (f(z) * _GH_W).sum(-1) / np.sqrt(np.pi)


def _intercept_truth(w0: np.ndarray, m: np.ndarray, s: np.ndarray) -> np.ndarray:
    """The population calibration intercept a: the event rate equals E expit(a + lp) (Newton's method)."""
    a = np.zeros_like(w0)
    for _ in range(30):
        f1 = _gauss(lambda z: expit(z + a[..., None]), w0 + m, s)
        f0 = _gauss(lambda z: expit(z + a[..., None]), w0, s)
        d1 = _gauss(lambda z: expit(z + a[..., None]) * expit(-z - a[..., None]), w0 + m, s)
        d0 = _gauss(lambda z: expit(z + a[..., None]) * expit(-z - a[..., None]), w0, s)
        a = a - (PREVALENCE * f1 + (1 - PREVALENCE) * f0 - PREVALENCE) / (PREVALENCE * d1 + (1 - PREVALENCE) * d0)
    return a


def truths(w0: np.ndarray, w: np.ndarray, delta: np.ndarray, thr: np.ndarray) -> dict[str, np.ndarray]:
    """Population values of linear scores w0 + w.x (rows: models) at risk thresholds thr."""
    pi, m, s = PREVALENCE, w @ delta, np.sqrt((w * w).sum(-1))
    sens, spec = norm.cdf((w0 + m - logit(thr)) / s), norm.cdf((logit(thr) - w0) / s)
    pos, neg = pi * sens + (1 - pi) * (1 - spec), pi * (1 - sens) + (1 - pi) * spec  # predicted positive/negative
    with np.errstate(invalid="ignore", divide="ignore"):  # a threshold above every score: no PPV (NaN), as cardio's
        ppv, npv = pi * sens / pos, (1 - pi) * spec / neg
    return {"auc": norm.cdf(m / (np.sqrt(2) * s)), "sensitivity": sens, "specificity": spec,
            "accuracy": pi * sens + (1 - pi) * spec, "ppv": ppv, "npv": npv,
            "f1": 2 * pi * sens / (pi + pos), "calibration_slope": m / s**2,
            "brier": pi * _gauss(lambda z: expit(-z) ** 2, w0 + m, s) + (1 - pi) * _gauss(lambda z: expit(z) ** 2,
                                                                                          w0, s),
            "calibration_intercept": _intercept_truth(w0, m, s),
            "ds": _gauss(expit, w0 + m, s) - _gauss(expit, w0, s)}  # discrimination slope, for the IDI


def _reclass_truths(new: tuple[float, np.ndarray], old: tuple[float, np.ndarray], delta: np.ndarray,
                    t_new: dict, t_old: dict) -> dict[str, float]:
    """True IDI, category-free NRI and Brier difference of one fold's new model over its old one."""
    d, c0 = new[1] - old[1], new[0] - old[0]
    sd = float(np.sqrt(d @ d))
    up1, up0 = norm.cdf((c0 + d @ delta) / sd), norm.cdf(c0 / sd)
    return {"idi": float(t_new["ds"] - t_old["ds"]), "nri": float(2 * (up1 - up0)),
            "brier_gain": float(t_old["brier"] - t_new["brier"])}


def _fit(x: np.ndarray, y: np.ndarray, cols: np.ndarray) -> tuple[float, np.ndarray]:
    c = fit_logistic(x[:, cols], y)
    w = np.zeros(x.shape[1])
    w[cols] = c[1:]
    return float(c[0]), w


NOISY = "noisy-"  # a setting's prefix: the SGD learner
BRIER_SETTINGS = ("null", "signal", f"{NOISY}null", f"{NOISY}signal")
NEAR_BOUND = ("strong", "separating")  # the proportions near 1 (module docstring)
PROPORTION_SETTINGS = (*BRIER_SETTINGS, *NEAR_BOUND)


def one_set(seed: int, n: int, planted: bool, noisy: bool = False, shift: float | None = None) -> Set:
    """One data set through cardio's split, its fold models' out-of-fold risks, thresholds and true values; `noisy`:
    the five-feature model fitted by SGD; `shift`: the classes that far apart instead (module docstring)."""
    rng = np.random.default_rng(seed)
    clustered = is_clustered(seed)
    x, y, ids, delta = (draw(rng, n, clustered, planted) if shift is None
                        else draw_shifted(rng, n, clustered, True, shift))
    table = pd.DataFrame({"patient_id": ids.astype(str), "record_id": np.arange(y.size).astype(str), "label": y})
    fold, p, thr = np.empty(y.size, dtype=object), np.empty(y.size), np.empty(y.size)
    old = {k: np.empty(y.size) for k in OLD}
    per_fold: list[dict[str, float]] = []
    models = []
    for f in make_folds(table, CV, "label", seed):
        fold[f.test] = f.name
        if noisy:
            c = sgd(rng, x[f.train], y[f.train].astype(float), np.ones((1, f.train.size)))[0]
            w0, w = float(c[0]), c[1:]
        else:
            w0, w = _fit(x[f.train], y[f.train], np.arange(x.shape[1]))
        models.append(np.r_[w0, w])
        p[f.test] = expit(w0 + x[f.test] @ w)
        thr[f.test] = t = youden_threshold(y[f.train], expit(w0 + x[f.train] @ w))
        t_new = {k: v[0] for k, v in truths(np.array([w0]), w[None], delta, np.array([t])).items()}
        row = {k: float(v) for k, v in t_new.items()}
        for setting, cols in OLD.items():
            o0, o = _fit(x[f.train], y[f.train], cols)
            old[setting][f.test] = expit(o0 + x[f.test] @ o)
            t_old = {k: v[0] for k, v in truths(np.array([o0]), o[None], delta, np.array([0.5])).items()}
            row.update({f"{k} {setting}": v for k, v in _reclass_truths((w0, w), (o0, o), delta, t_new,
                                                                          t_old).items()})
        per_fold.append(row)
    final0, final = _fit(x, y, np.arange(x.shape[1]))
    models.append(np.r_[final0, final])
    sub = np.random.default_rng(seed + 1).random(n) < 0.5
    return Set(y, ids, clustered, fold.astype(str), p, thr, old, sub[ids],
               pd.DataFrame(per_fold).mean().to_dict(), models, seed)


@lru_cache(maxsize=16)
def cell(n: int, planted: bool, n_sets: int, seed: int, noisy: bool = False, near: str | None = None
         ) -> tuple[Set, ...]:
    """The data sets of one size and setting, shared by every kind (each kind reads its own columns); `near`: one of
    NEAR_BOUND, data sets of their own."""
    if near is not None:
        start = seed * 10**7 + 5 * 10**6 + n * 10**4 + 2500 * NEAR_BOUND.index(near)
        return tuple(one_set(s, n, True, shift=SHIFTS[near]) for s in range(start, start + n_sets))
    start = seed * 10**7 + n * 10**4 + 5000 * planted + 2500 * noisy
    return tuple(one_set(s, n, planted, noisy) for s in range(start, start + n_sets))


Interval = Callable[[Set], tuple[float, float, float]]


def _groups(s: Set) -> np.ndarray | None:
    """Patient ids as evaluate_predictions passes them: only where some patient has several records."""
    return s.ids if s.clustered else None


T = TypeVar("T")


def _memo(tag: str, s: Set, compute: Callable[[], T]) -> T:
    return memo(("other", tag, s.seed, s.y.size), compute)


def _calibrated(s: Set) -> dict:
    return _memo("cv", s, lambda: cv_calibration(s.y, s.p, s.fold, groups=s.ids))


def _calibrated_before(s: Set) -> dict:
    return _memo("before", s, lambda: calibration(s.y, s.p, groups=_groups(s),
                                                  n_resamples=RESAMPLES))


def sets_of(n_patients: int, setting: str, n_sets: int, seed: int) -> tuple[Set, ...]:
    """The cross-validated data sets of a setting ("null" data or "signal" data; "noisy-": the SGD learner; one of
    NEAR_BOUND: the proportions near 1)."""
    return cell(n_patients, setting.endswith("signal"), n_sets, seed, setting.startswith(NOISY),
                setting if setting in NEAR_BOUND else None)


def _cv(metric: str, truth: str, interval: Interval, null: float | None = None) -> Kind:
    """A kind on the cross-validated sets of its setting (``sets_of``)."""
    def run(n_patients: int, setting: str, n_sets: int, seed: int) -> Draws:
        return draws(sets_of(n_patients, setting, n_sets, seed), interval, truth, null)
    run.__name__ = metric
    return run


def _reclass(metric: str, interval: Callable[[Set, str], tuple[float, float, float]]) -> Kind:
    """A reclassification kind: both settings on signal data, the old model set by the setting (OLD)."""
    def run(n_patients: int, setting: str, n_sets: int, seed: int) -> Draws:
        return draws(cell(n_patients, True, n_sets, seed), lambda s: interval(s, setting), f"{metric} {setting}",
                      0.0)
    run.__name__ = metric
    return run


PROPORTIONS = {"sensitivity": "sensitivity", "specificity": "specificity", "accuracy": "accuracy", "PPV": "ppv",
               "NPV": "npv", "F1": "f1"}


def _thresholded(s: Set) -> dict:
    return _memo("cv thresholded", s, lambda: cv_binary_metrics(
        s.y, s.p, s.thr, s.fold, groups=s.ids))


def _thresholded_before(s: Set) -> dict:
    return _memo("before thresholded", s, lambda: binary_metrics(
        s.y, s.p, s.thr, groups=_groups(s), n_resamples=RESAMPLES))


def _one(metrics: Callable[[Set], dict], metric: str) -> Interval:
    """The interval of one metric of those `metrics` gives a set."""
    return lambda s: estimate_of(metrics(s)[metric])


for _shown, _metric in PROPORTIONS.items():
    kind(_shown, PROPORTION_SETTINGS)(_cv(_metric, _metric, _one(_thresholded, _metric)))
    _register(BEFORE, _shown)(_cv(_metric, _metric, _one(_thresholded_before, _metric)))

kind("subgroup AUC")(_cv("auc", "auc", lambda s: estimate_of(cv_auc_interval(s.y[s.sub], s.p[s.sub], s.fold[s.sub],
                                                                      groups=s.ids[s.sub])), null=0.5))
_register(BEFORE, "subgroup AUC")(_cv("auc", "auc", lambda s: estimate_of(delong_ci(
    s.y[s.sub], s.p[s.sub], groups=None if _groups(s) is None else s.ids[s.sub])), null=0.5))

for _metric in ("brier", "calibration_slope", "calibration_intercept"):
    _shown = {"brier": "Brier score", "calibration_slope": "calibration slope",
              "calibration_intercept": "calibration intercept"}[_metric]
    kind(_shown, BRIER_SETTINGS if _metric == "brier" else ("null", "signal"))(
        _cv(_metric, _metric, _one(_calibrated, _metric)))
    _register(BEFORE, _shown)(_cv(_metric, _metric, _one(_calibrated_before, _metric)))


def _reclassified(s: Set, setting: str) -> dict:
    return {e.metric: e for e in _memo(f"reclass {setting}", s, lambda: cv_reclassification(
        s.y, s.old[setting], s.p, s.fold, groups=s.ids))}


def _reclassified_before(s: Set, setting: str) -> dict:
    return {e.metric: e for e in _memo(f"reclass before {setting}", s, lambda: reclassification(
        s.y, s.old[setting], s.p, groups=_groups(s), n_resamples=RESAMPLES))}


kind("IDI")(_reclass("idi", lambda s, setting: estimate_of(_reclassified(s, setting)["idi"])))
kind("NRI, category-free")(_reclass("nri", lambda s, setting: estimate_of(_reclassified(s, setting)["nri"])))
_register(BEFORE, "IDI")(_reclass("idi", lambda s, setting: estimate_of(_reclassified_before(s, setting)["idi"])))
_register(BEFORE, "NRI, category-free")(_reclass("nri", lambda s, setting: estimate_of(
    _reclassified_before(s, setting)["nri"])))


def _fold_interval(s: Set, metric: str, values: list[float], corrected: bool = True,
                   bounds: tuple[float, float] = (-np.inf, np.inf)) -> tuple[float, float, float]:
    """cardio's fold-level interval of per-fold values (cv_metrics.fold_mean); `corrected=False`: the plain t of
    the fold mean, variance S^2 / K (the correction's n_test/n_train term set to 0)."""
    _, ratios, reps = _fold_parts(s.fold, s.y.size, s.ids)
    return estimate_of(fold_mean(metric, np.asarray(values), ratios * corrected, reps, 0.95, s.y.size, bounds))


def _ml_slopes(s: Set) -> list[float]:
    """Per-fold maximum-likelihood calibration slopes (statsmodels' GLM), the fold order of cardio's."""
    import statsmodels.api as sm

    parts, _, _ = _fold_parts(s.fold, s.y.size, s.ids)
    lp = logit(np.clip(s.p, 1e-6, 1 - 1e-6))
    out = []
    for i in parts:
        try:
            out.append(float(sm.GLM(s.y[i], sm.add_constant(lp[i]), family=sm.families.Binomial()).fit().params[1]))
        except (np.linalg.LinAlgError, ValueError):
            out.append(np.nan)
    return out


def _per_fold(s: Set, fn: Callable[[np.ndarray, np.ndarray, np.ndarray], float], setting: str) -> list[float]:
    parts, _, _ = _fold_parts(s.fold, s.y.size, s.ids)
    return [fn(s.y[i].astype(float), s.old[setting][i], s.p[i]) for i in parts]


def _brier_gain(y: np.ndarray, old: np.ndarray, new: np.ndarray) -> float:
    return float(np.mean((old - y) ** 2) - np.mean((new - y) ** 2))


_register(CANDIDATES, "calibration slope: fold mean of Firth slopes, corrected t")(_cv(
    "calibration_slope", "calibration_slope", lambda s: _fold_interval(
        s, "calibration_slope", _calibrated(s)["calibration_slope"].extra["per_fold"])))
_register(CANDIDATES, "calibration slope: fold mean of maximum-likelihood slopes, corrected t")(_cv(
    "calibration_slope", "calibration_slope", lambda s: _fold_interval(s, "calibration_slope", _ml_slopes(s))))
_register(CANDIDATES, "calibration intercept: fold mean, corrected t")(_cv(
    "calibration_intercept", "calibration_intercept", lambda s: _fold_interval(
        s, "calibration_intercept", _calibrated(s)["calibration_intercept"].extra["per_fold"])))
_register(CANDIDATES, "Brier score: fold mean, plain t (no correction)")(_cv(
    "brier", "brier", lambda s: _fold_interval(s, "brier", _calibrated(s)["brier"].extra["per_fold"], False)))
_register(CANDIDATES, "IDI: fold mean, corrected t")(_reclass(
    "idi", lambda s, setting: _fold_interval(s, "idi", _per_fold(s, idi, setting))))
_register(CANDIDATES, "NRI: fold mean, corrected t")(_reclass(
    "nri", lambda s, setting: _fold_interval(s, "nri", _per_fold(s, nri, setting))))
_register(CANDIDATES, "Brier gain (old - new): fold mean, corrected t")(_reclass(
    "brier_gain", lambda s, setting: _fold_interval(s, "brier", _per_fold(s, _brier_gain, setting))))


@lru_cache(maxsize=1)
def population(planted: bool) -> tuple[np.ndarray, np.ndarray]:
    """Records of the population an external cohort is drawn from (features Gaussian given the class)."""
    rng = np.random.default_rng(53)
    y = (rng.random(POPULATION) < PREVALENCE).astype(int)
    delta = np.r_[0.6, 0.6, 0.0, 0.0, 0.0] if planted else np.zeros(5)
    return rng.normal(size=(POPULATION, 5)) + y[:, None] * delta, y


def _ensemble_and_final(models: list[np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fold ensemble's risks (the mean of the fold models' probabilities, as `cardio predict --ensemble folds`
    averages them: cardio_deploy.ensemble.average) and the final model's."""
    risks = np.stack([expit(m[0] + x @ m[1:]) for m in models])
    return risks[:-1].mean(axis=0), risks[-1]


def _ensemble_draw(s: Set, planted: bool) -> tuple[tuple[float, float, float], float]:
    """The paired DeLong difference (ensemble - final) on an external cohort of the set's size, as
    cardio_deploy.ensemble.comparison_section computes it, and its truth (this run's two models)."""
    from cardio_stats import auc

    rng = np.random.default_rng(s.seed + 2)
    x, y, ids, _ = draw(rng, int(s.ids.max()) + 1, s.clustered, planted)
    ens, final = _ensemble_and_final(s.models, x)
    test = delong_test(y, ens, final, groups=ids if s.clustered else None, interval="score")
    truth = 0.0  # without signal every score's AUC is 0.5
    if planted:
        px, py = population(planted)
        pe, pf = _ensemble_and_final(s.models, px)
        truth = auc(py, pe) - auc(py, pf)
    e = test.extra
    return (e["diff"], e["diff_ci_low"], e["diff_ci_high"]), truth


@kind("ΔAUC, fold ensemble - final model (external)")
def ensemble_difference(n_patients: int, setting: str, n_sets: int, seed: int) -> Draws:
    """An external row, whose estimand is this run's models, different in every set: each draw is centred on its
    own truth (estimate - truth), so the misses and the oracle are those of the error; power is in the notes."""
    planted = setting == "signal"
    rows, truths_ = [], []
    t0 = time.perf_counter()
    for s in cell(n_patients, planted, n_sets, seed):
        row, truth = _ensemble_draw(s, planted)
        rows.append(row)
        truths_.append(truth)
    a, t = np.array(rows), np.array(truths_)
    excl = np.mean((a[:, 1] > 0) | (a[:, 2] < 0))
    notes = [f"true differences {t.mean():+.4f} on average (SD {t.std():.4f}); the interval excludes 0 in "
             f"{excl:.1%} of sets"]
    return Draws(a[:, 0] - t, a[:, 1] - t, a[:, 2] - t, 0.0, None, time.perf_counter() - t0, notes)


def _proportion_scale(s: Set, metric: str) -> tuple[float, float, float]:
    """Candidate: the corrected t of the per-fold proportions on the proportion scale (cut at 0 and 1); for F1, the
    interval it would carry."""
    return _fold_interval(s, metric, _thresholded(s)[metric].extra["per_fold"], bounds=(0.0, 1.0))


for _shown, _metric in PROPORTIONS.items():
    _register(CANDIDATES, f"{_shown}: fold mean, corrected t on the proportion scale")(_cv(
        _metric, _metric, partial(_proportion_scale, metric=_metric)))


def _logit_interval(values: np.ndarray, k: np.ndarray, d: np.ndarray, ratios: np.ndarray, reps: np.ndarray,
                    noise: np.ndarray | None = None, c: float = 1.0) -> tuple[float, float, float]:
    """A proportion's interval as cardio printed it until the binomial interval at the effective sample size: on the
    logit scale of each fold's (k + 1/2) / (d + 1), the corrected t of those logits, or with each fold's test
    `noise` (cardio_stats.cv_metrics._proportion_noise, over (p~ (1 - p~))², the delta method) x c plus their excess
    spread (``_noise_se``), transformed back; no interval where a fold lacks the proportion or all folds agree."""
    mean = float(values.mean())
    if not np.isfinite(values).all() or np.ptp(values) == 0.0:
        return mean, np.nan, np.nan
    pt = (k + 0.5) / (d + 1.0)
    z = logit(pt)
    if noise is not None and np.isfinite(noise).all():
        se, df = _noise_se(z, noise / (pt * (1 - pt)) ** 2, ratios, reps, c)
    else:
        _, se, _, _, df = _corrected(z, ratios, reps, 0.95, (-np.inf, np.inf))
    half = float(t_dist.ppf(0.975, df)) * se
    return mean, float(expit(z.mean() - half)), float(expit(z.mean() + half))


def _f1_logit(s: Set) -> tuple[float, float, float]:
    """Candidate: F1's interval as the proportions carried theirs (logit scale, counts 2 tp of 2 tp + fp + fn)."""
    tp, fp, _, fn = np.asarray(_thresholded(s)["f1"].extra["per_fold_counts"], dtype=float).T
    _, ratios, reps = _fold_parts(s.fold, s.y.size, s.ids)
    return _logit_interval(2 * tp / (2 * tp + fp + fn), 2 * tp, 2 * tp + fp + fn, ratios, reps)


_register(CANDIDATES, "F1: fold mean, corrected t on the logit scale")(_cv("f1", "f1", _f1_logit))


def _brier_noise(s: Set, c: float) -> tuple[float, float, float]:
    """The Brier score's interval (cardio_stats.cv_metrics: each fold's noise within its classes, ``_brier_folds``,
    and the folds' excess spread, ``_noise_and_spread``, on the log scale) at another factor c than the adopted
    BRIER_NOISE_FACTOR, the rule's other candidates (docs/statistics.md)."""
    parts, ratios, reps, codes = _folds(s.fold, s.y.size, s.ids)
    values, noise = _brier_folds(s.y.astype(float), s.p, parts, codes)
    mean, _, lo, hi, _ = _noise_and_spread(values, noise, ratios, reps, 0.95, c)
    return mean, lo, hi


for _c in (1.0, 1.5, 2.0):
    _register(CANDIDATES, f"Brier score: fold noise within classes x {_c:g} + training spread, log scale")(
        _cv("brier", "brier", partial(_brier_noise, c=_c)))
_register(CANDIDATES, "Brier score: fold mean, corrected t (printed until the noise interval)")(_cv(
    "brier", "brier", lambda s: _fold_interval(s, "brier", _calibrated(s)["brier"].extra["per_fold"],
                                               bounds=(0.0, 1.0))))


def _proportion_parts(s: Set, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray,
                                                   np.ndarray, float]:
    """A proportion's per-fold values, numerators, denominators, test noise, n_test/n_train and repeats, and the
    denominator's patients (the sets have one repeat)."""
    parts, ratios, reps, codes = _folds(s.fold, s.y.size, s.ids)
    k, d, noise, patients = _proportion_folds(_cells(s.y, s.p >= s.thr), parts, codes, noisy=(metric,))[metric]
    with np.errstate(invalid="ignore", divide="ignore"):  # a fold without the denominator: no estimate (NaN)
        return k / d, k, d, noise, ratios, reps, float(patients.sum())


def _proportion_noise_interval(s: Set, metric: str, c: float) -> tuple[float, float, float]:
    """The logit-scale interval of the folds' test noise x c plus their excess spread (``_logit_interval``): the
    candidates of the rules that chose the factors (docs/statistics.md), for all five."""
    values, k, d, noise, ratios, reps, _ = _proportion_parts(s, metric)
    return _logit_interval(values, k, d, ratios, reps, noise, c)


#: The factors the logit-scale intervals took; the sensitivity and specificity took the corrected t.
LOGIT_FACTORS = {"accuracy": 1.75, "ppv": 1.0, "npv": 1.0}


def _printed_before(s: Set, metric: str) -> tuple[float, float, float]:
    """What a report printed until the binomial interval: the logit-scale interval at LOGIT_FACTORS."""
    values, k, d, noise, ratios, reps, _ = _proportion_parts(s, metric)
    c = LOGIT_FACTORS.get(metric)
    return _logit_interval(values, k, d, ratios, reps, None if c is None else noise, c or 1.0)


def _other_binomial(s: Set, metric: str) -> tuple[float, float, float]:
    """The binomial interval at the effective sample size (cardio_stats.cv_metrics.fold_mean) that the proportion
    did not take: Clopper-Pearson's where it takes Wilson's, and the reverse (PROPORTION_INTERVALS)."""
    values, k, d, noise, ratios, reps, patients = _proportion_parts(s, metric)
    c = PROPORTION_NOISE_FACTORS.get(metric)
    other = "beta" if PROPORTION_INTERVALS[metric] == "wilson" else "wilson"
    return estimate_of(fold_mean(metric, values, ratios, reps, 0.95, s.y.size, counts=(k, d),
                                 noise=None if c is None else noise, factor=c or 1.0, proportion=other,
                                 patients=patients))


for _shown, _metric in PROPORTIONS.items():
    if _metric == "f1":
        continue
    for _c in (1.0, 1.5, 1.75, 2.0):
        _register(CANDIDATES, f"{_shown}: fold noise x {_c:g} + training spread, logit scale")(_cv(
            _metric, _metric, partial(_proportion_noise_interval, metric=_metric, c=_c)))
    _register(CANDIDATES, f"{_shown}: logit scale (printed before the binomial interval)")(_cv(
        _metric, _metric, partial(_printed_before, metric=_metric)))
    _other = "Clopper-Pearson" if PROPORTION_INTERVALS[_metric] == "wilson" else "Wilson"
    _register(CANDIDATES, f"{_shown}: {_other} at the effective sample size")(_cv(
        _metric, _metric, partial(_other_binomial, metric=_metric)))


def _noise_df(s: Set, metric: str) -> tuple[float, float, float]:
    """Candidate for the sensitivity and specificity: the corrected t's variance, (1/K + n_test/n_train) S², as
    printed, but t's degrees of freedom by Satterthwaite from the share of S² beyond the folds' test noise v (the
    part read from K values): K - 1 where the thresholds' movement is most of S², more where the test records'
    noise is; Wilson's interval at the effective sample size. Equal in every fold: as printed."""
    values, k, d, noise, ratios, reps, patients = _proportion_parts(s, metric)
    if not np.isfinite(values).all() or np.ptp(values) == 0.0 or noise is None or not np.isfinite(noise).all():
        return estimate_of(fold_mean(metric, values, ratios, reps, 0.95, s.y.size, counts=(k, d),
                                     proportion=PROPORTION_INTERVALS[metric], patients=patients))
    nb, spread = 1.0 / values.size + float(ratios.mean()), float(values.var(ddof=1))
    var, excess = nb * spread, nb * max(0.0, spread - float(noise.mean()))
    df = var**2 * (values.size - 1) / excess**2 if excess > 0 else np.inf
    lo, hi, _ = _effective(float(values.mean()), float(np.sqrt(var)), df, float(d.sum()), 0.95, "wilson")
    return float(values.mean()), lo, hi


for _shown in ("sensitivity", "specificity"):
    _register(CANDIDATES, f"{_shown}: corrected t's variance, df from its share beyond the test noise")(_cv(
        _shown, _shown, partial(_noise_df, metric=_shown)))
#: The settings each BEFORE and CANDIDATES row simulates (benchmarks/coverage.py's grid): the noisy learner's only
#: for the Brier score's and the proportions' noise rows.
SETTINGS_OF = {name: PROPORTION_SETTINGS if name.endswith(("binomial interval)", "effective sample size",
                                                            "beyond the test noise"))
               else BRIER_SETTINGS if name.startswith("Brier score") or "fold noise" in name else ("null", "signal")
               for table in (BEFORE, CANDIDATES) for name in table}
