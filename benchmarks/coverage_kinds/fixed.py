"""The coverage benchmark's one-model rows (issue 53): what a one-fold run (a holdout, `cardio predict` on another
cohort) prints beside its AUC. Its estimand is that one model's value on the population its patients come from
(docs/statistics.md), so the model here is fixed, not fitted, and its population values are exact.

Binary rows: other.py's data (benchmarks/cv_coverage.py's features: five Gaussian features, prevalence 0.4, half
the data sets with 1-3 records a patient; "signal": features 0 and 1 shifted 0.6 SD), each patient's class drawn at
random (`draw_binary`), scored by the fixed risk model expit(-0.4 + 0.8 x0 + 0.8 x1 - 0.2 x2), its threshold 0.4
fixed beforehand. Near separation, as a network that nearly separates a small test set (mmode_septal_flash's
default): "strong" and "separating" shift features 0 and 1 by 1.9 and 2.4 SD (AUC 0.97 and 0.99, the headline
kinds' settings), scored by the Bayes model made 1.25 times overconfident, 1.25 (delta.x - |delta|^2 / 2 +
logit 0.4): risks near 0 and 1, true calibration slope 0.8; "calibrated-strong" and "calibrated-separating" score
the same data sets by the Bayes model itself (true slope 1), the control a slope interval must hold in too.
Rows: sensitivity, specificity, accuracy, PPV, NPV, F1,
Brier score, calibration slope and intercept as `cardio_stats.binary_metrics` and `calibration` give them for one
fold (cardio_stats.evaluate; the intervals are docs/statistics.md's "One model's rows"). Truths: other.truths
(exact, or Gauss-Hermite). BEFORE and CANDIDATES: the proportions', F1's, Brier score's and intercept's earlier
intervals, the Brier bound's settings, and four slope intervals measured and not adopted, on the same data sets
(`python benchmarks/coverage.py --grid fixed`).
Reclassification rows: a holdout fusion's IDI and category-free NRI of a new fixed model over an old one (OLD) on
signal data, as `cardio_stats.reclassification` gives them; truths: other._reclass_truths.
Regression rows: regression.py's data scored by the fixed prediction 1.1 + 0.7 x0 + 0.7 x1 (shrunk, biased), its
MAE, RMSE, R², Bland–Altman bias and limits as `cardio_stats.agreement` gives them; truths: regression.truths.
Any row that still resamples takes RESAMPLES (a report 2,000).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial

import numpy as np
from cv_coverage import PREVALENCE, SHIFT, _features
from scipy.optimize import brentq
from scipy.special import expit, logit
from statsmodels.genmod.api import GLM, families
from statsmodels.stats.proportion import proportion_confint

from cardio_stats import agreement, binary_metrics, calibration, reclassification
from cardio_stats.bootstrap import patients_of
from cardio_stats.calibration import _EPS, _brier_interval
from cardio_stats.clustered import units

from . import Draws, Kind, Z, draws, estimate_of, is_clustered, kind
from .other import _reclass_truths
from .other import truths as binary_truths
from .regression import draw as draw_regression
from .regression import truths as regression_truths

W0, W, THRESHOLD = -0.4, np.r_[0.8, 0.8, -0.2, 0.0, 0.0], 0.4  # the fixed risk model and its threshold
SHIFTS = {"null": 0.0, "signal": SHIFT, "strong": 1.9, "separating": 2.4}
OFFSETS = {"null": 0, "strong": 2500, "signal": 5000, "separating": 7500}  # each setting's own data sets
# the calibrated settings score the overconfident ones' data sets (a paired control): their shifts and offsets
for _base in ("strong", "separating"):
    SHIFTS[f"calibrated-{_base}"], OFFSETS[f"calibrated-{_base}"] = SHIFTS[_base], OFFSETS[_base]
NEAR_SEPARATION = tuple(SHIFTS)
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
    scored: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None  # binary cells: (y, risk, patient ids)


def draw_binary(rng: np.random.Generator, n: int, clustered: bool, planted: bool,
                shift: float = SHIFT) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Records (x, y, patient ids) of n patients drawn from the population: each patient's class at random (the
    cross-validated kinds fix the count at 40%, as a stratified split does; a cohort's own count varies), then
    cv_coverage's features (1-3 records a patient where `clustered`; `shift` SD on features 0 and 1 where
    `planted`)."""
    y_pat = (rng.random(n) < PREVALENCE).astype(int)
    ids = np.repeat(np.arange(n), rng.integers(1, 4, size=n) if clustered else 1)
    x, _ = _features(rng, ids, y_pat, planted, shift=shift)
    return x, y_pat[ids], ids


def fixed_model(setting: str) -> tuple[float, np.ndarray, np.ndarray]:
    """The setting's fixed risk model (w0, w) and class shift delta: W0, W for null and signal; near separation
    the Bayes model of the shift, 1.25 times overconfident (true calibration slope 0.8), or itself in the
    calibrated settings (slope 1)."""
    delta = np.r_[SHIFTS[setting], SHIFTS[setting], 0.0, 0.0, 0.0]
    if setting in ("null", "signal"):
        return W0, W, delta
    scale = 1.0 if setting.startswith("calibrated") else 1.25
    return scale * float(logit(PREVALENCE) - delta @ delta / 2), scale * delta, delta


@lru_cache(maxsize=18)  # every cell of a 3-size, 6-setting grid, made once for all its kinds
def binary_cell(n: int, setting: str, n_sets: int, seed: int) -> tuple[Set, ...]:
    w0, w, delta = fixed_model(setting)
    truth = {k: float(v[0]) for k, v in binary_truths(np.array([w0]), w[None], delta,
                                                       np.array([THRESHOLD])).items()}
    out = []
    start = seed * 10**7 + n * 10**4 + OFFSETS[setting] + 8 * 10**6
    for s in range(start, start + n_sets):
        x, y, ids = draw_binary(np.random.default_rng(s), n, is_clustered(s), setting != "null", SHIFTS[setting])
        p, groups = expit(w0 + x @ w), ids if is_clustered(s) else None  # patient ids where some have several records
        rows = {**binary_metrics(y, p, THRESHOLD, n_resamples=RESAMPLES, seed=s, groups=groups),
                **calibration(y, p, n_resamples=RESAMPLES, seed=s, groups=groups)}
        out.append(Set(rows, truth, (y, p, groups)))
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
        x, y, ids = draw_binary(np.random.default_rng(s), n, is_clustered(s), True)
        rows = {e.metric: e for e in reclassification(y, expit(w0 + x @ old), expit(w0 + x @ new),
                                                      n_resamples=RESAMPLES, seed=s,
                                                      groups=ids if is_clustered(s) else None)}
        out.append(Set(rows, truth))
    return tuple(out)


@lru_cache(maxsize=8)
def regression_cell(n: int, setting: str, n_sets: int, seed: int) -> tuple[Set, ...]:
    from .regression import BETA

    truth = regression_truths(R0, R, BETA[setting])
    out = []
    start = seed * 10**7 + n * 10**4 + 5000 * (setting == "signal") + 9 * 10**6
    for s in range(start, start + n_sets):
        x, y, ids = draw_regression(np.random.default_rng(s), n, is_clustered(s), setting)
        out.append(Set(agreement(y, R0 + x @ R, n_resamples=RESAMPLES, seed=s,
                                 groups=ids if is_clustered(s) else None), truth))
    return tuple(out)


def _kind(cells: Callable[[int, str, int, int], tuple[Set, ...]], metric: str) -> Kind:
    def run(n_patients: int, setting: str, n_sets: int, seed: int) -> Draws:
        return draws(cells(n_patients, setting, n_sets, seed), lambda s: estimate_of(s.rows[metric]), metric)
    run.__name__ = metric
    return run


#: What the Brier row printed before (cardio at 3b4db67: the log-t alone), and the score bound's settings measured
#: beside the one chosen (calibration.FEW_ERRORS, ERROR_LOSS), on the binary cells' own data sets.
BEFORE: dict[str, Kind] = {}
CANDIDATES: dict[str, Kind] = {}


def _brier(few: int, error_loss: float = 0.5) -> Kind:
    def interval(s: Set) -> tuple[float, float, float]:
        assert s.scored is not None
        y, p, groups = s.scored
        codes, unit = units(patients_of(groups, y.size), y.size)
        return estimate_of(_brier_interval(y.astype(float), p, codes, unit, 0.95, few=few, error_loss=error_loss))
    return lambda n, setting, n_sets, seed: draws(binary_cell(n, setting, n_sets, seed), interval, "brier")


def _intercept_wald(s: Set) -> tuple[float, float, float]:
    """The calibration intercept's Wald interval at 3b4db67: cluster-robust where patients have several records,
    else the larger of the HC0 and model-based SEs."""
    assert s.scored is not None
    y, p, groups = s.scored
    lp = _logit(p)
    fit = GLM(y, np.ones((y.size, 1)), family=families.Binomial(), offset=lp)
    if groups is not None:
        res = fit.fit(cov_type="cluster", cov_kwds={"groups": groups})
        se = float(res.bse[0])
    else:
        res = fit.fit()
        se = max(float(res.bse[0]), float(fit.fit(cov_type="HC0").bse[0]))
    a = float(res.params[0])
    return a, a - Z * se, a + Z * se


BEFORE["Brier score: t on the log scale alone (3b4db67)"] = _brier(few=0)
BEFORE["calibration intercept: Wald (3b4db67)"] = (
    lambda n, setting, n_sets, seed: draws(binary_cell(n, setting, n_sets, seed), _intercept_wald,
                                           "calibration_intercept"))
for _few, _loss in ((10, 0.25), (10, 1.0), (5, 0.5), (20, 0.5), (10**6, 0.5)):
    _at = "at any count" if _few == 10**6 else f"below {_few} misclassified patients"
    CANDIDATES[f"Brier score: score bound {_at}, unseen error loss {_loss}"] = _brier(few=_few, error_loss=_loss)


def _wilson(metric: str) -> Kind:
    """Wilson's interval at the effective sample size the row's Clopper-Pearson interval takes (the record count
    where each patient has one record): the proportions' and F1's interval at 1f1a21c."""
    def interval(s: Set) -> tuple[float, float, float]:
        e = s.rows[metric]
        if e.ci_low is None:
            return float(e.estimate), np.nan, np.nan
        n = float(e.extra.get("n_effective", e.extra.get("denominator", np.nan)))
        lo, hi = proportion_confint(e.estimate * n, n, method="wilson")
        return float(e.estimate), float(lo), float(hi)
    return lambda n, setting, n_sets, seed: draws(binary_cell(n, setting, n_sets, seed), interval, metric)


for _shown, _metric in list(BINARY.items())[:6]:  # the proportions and F1
    BEFORE[f"{_shown}: Wilson at the effective sample size (1f1a21c)"] = _wilson(_metric)

for _shown, _metric in BINARY.items():
    kind(f"{_shown}, one fixed model (holdout, external)", NEAR_SEPARATION)(_kind(binary_cell, _metric))
for _shown, _metric in REGRESSION.items():
    kind(f"{_shown}, one fixed model (holdout, external)")(_kind(regression_cell, _metric))
kind("IDI, two fixed models (holdout)")(_kind(reclassification_cell, "idi"))
kind("NRI, category-free, two fixed models (holdout)")(_kind(reclassification_cell, "nri"))


def _logit(p: np.ndarray) -> np.ndarray:
    """The risks' logits, clipped as cardio_stats.calibration clips them."""
    return logit(np.clip(p, _EPS, 1 - _EPS))


def _profile_intercept(y: np.ndarray, lp: np.ndarray, b: float) -> float:
    """The intercept a solving sum(y - expit(a + b lp)) = 0 at slope b (its maximum likelihood given b)."""
    def resid(c: float) -> float:
        return float((y - expit(c + b * lp)).sum())
    a, width = float(logit(np.clip(y.mean(), 1e-9, 1 - 1e-9))) - b * float(lp.mean()), 1.0
    # signs, not a product: two residual sums near 1e-200 multiply to 0. sum(y - p) falls from n1 to -n0 in a
    while (same := np.sign(resid(a - width)) == np.sign(resid(a + width))) and width < 1e8:
        width *= 4
    if same:  # no root in floating point (risks saturate): no profile
        return np.nan
    return float(brentq(resid, a - width, a + width, xtol=1e-10, maxiter=500))


def _slope_score(s: Set, variance: str) -> tuple[float, float, float]:
    """The calibration slope's score interval: the slopes b whose efficient score, sum lp~ (y - p) with the intercept
    profiled out at b and lp~ = lp less its information-weighted mean, over the square root of its variance at b lies
    within +-Z; the variance model-based (sum p (1 - p) lp~^2) where each patient has one record, else
    patient-clustered (`variance` "as Wald", the Wald row's choice), or the larger of the two ("larger", the
    intercept's choice). The ML estimate; no interval where the Wald row has none or a bound lies 50 beyond it."""
    e = s.rows["calibration_slope"]
    if e.ci_low is None:
        return float(e.estimate), np.nan, np.nan
    assert s.scored is not None
    y, p, groups = s.scored
    y, lp = y.astype(float), _logit(p)
    codes, _ = units(patients_of(groups, y.size), y.size)
    g = int(np.count_nonzero(np.bincount(codes)))

    def stat(b: float) -> float:
        q = expit(_profile_intercept(y, lp, b) + b * lp)
        w = q * (1 - q)
        centred = lp - float((w * lp).sum()) / float(w.sum())
        u = centred * (y - q)
        sums = np.bincount(codes, weights=u)
        model, robust = float((w * centred**2).sum()), g / (g - 1) * float(sums @ sums)
        var = max(model, robust) if variance == "larger" else model if g == y.size else robust
        return float(u.sum()) / np.sqrt(max(var, 1e-300))

    def crossing(target: float, step: float) -> float:
        near = b_hat = float(e.estimate)
        at_near = stat(near)
        while abs(near - b_hat) < 50:
            far = near + step
            at_far = stat(far)  # each a root-finding of the intercept: once a candidate
            if not np.isfinite(at_far):
                return np.nan
            if (at_far - target) * (at_near - target) <= 0:
                return float(brentq(lambda b: stat(b) - target, min(near, far), max(near, far), xtol=1e-10))
            near, at_near, step = far, at_far, step * 1.6
        return np.nan

    return float(e.estimate), crossing(Z, -0.05), crossing(-Z, 0.05)


def _firth_profile(s: Set) -> tuple[float, float, float]:
    """Firth's bias-reduced slope of the risks' logits with its profile penalised-likelihood interval (firthmodels;
    records the units): finite where the classes separate. Where the profile is rank-deficient or unconverged, the
    row's estimate without an interval."""
    from firthmodels import FirthLogisticRegression

    assert s.scored is not None
    y, p, _ = s.scored
    try:
        fit = FirthLogisticRegression().fit(_logit(p)[:, None], y)
        lo, hi = fit.conf_int(method="pl", features=0)[0]
    except (np.linalg.LinAlgError, RuntimeError):
        return float(s.rows["calibration_slope"].estimate), np.nan, np.nan
    return float(fit.coef_[0]), float(lo), float(hi)


def _firth_pl(s: Set) -> tuple[float, float, float]:
    """Firth's profile interval (`_firth_profile`) where each patient has one record (it has no clustered form);
    elsewhere the row's own cluster-robust Wald interval."""
    assert s.scored is not None
    return estimate_of(s.rows["calibration_slope"]) if s.scored[2] is not None else _firth_profile(s)


def _firth_where_unstable(s: Set) -> tuple[float, float, float]:
    """The Wald row where it prints an interval; where its fit is unstable ("not estimable", the data sets with the
    steepest slopes near separation), Firth's finite slope with its profile interval (`_firth_profile`)."""
    e = s.rows["calibration_slope"]
    return estimate_of(e) if e.ci_low is not None else _firth_profile(s)


def _slope_kind(interval: Callable[[Set], tuple[float, float, float]]) -> Kind:
    return lambda n, setting, n_sets, seed: draws(binary_cell(n, setting, n_sets, seed), interval,
                                                  "calibration_slope")


for _v in ("as Wald", "larger"):
    CANDIDATES[f"calibration slope: score interval, {_v} variance"] = _slope_kind(partial(_slope_score, variance=_v))
CANDIDATES["calibration slope: Firth, profile penalised likelihood where one record a patient"] = _slope_kind(_firth_pl)
CANDIDATES["calibration slope: Wald, Firth's profile interval where the fit is unstable"] = _slope_kind(
    _firth_where_unstable)
