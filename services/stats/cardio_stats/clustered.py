"""Intervals of one model's record-level rows where patients may have several records: a ratio of counts (a
proportion, F1) by Clopper-Pearson's interval at its effective sample size (a macro average over a few records by
Wilson's), and a mean of positive per-record losses (the Brier score) on the log scale with t. Both take their
variance from per-patient sums (the patient is the independent unit); with one record a patient they are the
record-level forms.

Why not the patient bootstrap these rows had: in the data sets with 1-3 records a patient its percentile interval
missed 6-8% of a fixed model's population sensitivity, specificity and NPV at 100 patients, and 5.5-9.2% of its
Brier score at 40-100 patients (benchmarks/coverage.py's one-fixed-model kinds): the bootstrap's spread is too small
in small samples, and its percentiles inherit the skew of a bounded or positive statistic (docs/statistics.md).
Hand-written: statsmodels' proportion_confint takes a count, not a clustered ratio; no library gives the log-t of a
clustered mean.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.stats import norm
from scipy.stats import t as t_dist
from statsmodels.stats.proportion import proportion_confint

from cardio_stats.bootstrap import Patients, patients_of
from cardio_stats.result import Estimate, StatsError

EXACT_EFFECTIVE = "clopper-pearson at the effective sample size"
LOG_T = "t on the log scale, patient-clustered SE"
CLASS_DIFFERENCE_T = "t, patient-clustered SE of a difference of class means"


def units(patients: Patients | None, n: int) -> tuple[np.ndarray, dict]:
    """Each record's unit (its patient's code where some patient has several records, else its own index, so that
    one record a patient gives the record-level numbers to the bit) and what an Estimate records of them."""
    if patients is None or patients.singletons:
        return np.arange(n), {}
    return patients.codes, {"n_groups": int(patients.n_groups)}


def _sums(values: np.ndarray, codes: np.ndarray) -> np.ndarray:
    return np.bincount(codes, weights=values, minlength=int(codes.max()) + 1)


def mean_variance(values: np.ndarray, codes: np.ndarray, centre: float | None = None) -> tuple[float, int]:
    """The patient-clustered variance of the mean of per-record values, g / (g - 1) sum_i u_i^2 / n^2 with u_i patient
    i's sum of deviations from the mean (or from `centre`), and g the patients (an error below 2)."""
    sums = _sums(values - (values.mean() if centre is None else centre), codes)
    g = int(np.count_nonzero(np.bincount(codes)))
    if g < 2:
        raise StatsError(f"an interval needs at least 2 patients, got {g}")
    return g / (g - 1) * float(sums @ sums) / values.size**2, g


class RatioInterval(NamedTuple):
    """A ratio's (or a mean of ratios') estimate, interval limits, effective sample size and the degrees of freedom
    its quantile took (inf: the normal's)."""

    estimate: float
    low: float
    high: float
    n_effective: float
    df: float


def exact_effective(num: np.ndarray, den: np.ndarray, codes: np.ndarray, level: float) -> RatioInterval:
    """sum(num) / sum(den) over records, `codes` their patients: the ratio's patient-clustered (linearised) variance
    v sets the effective sample size n_eff = p (1 - p) / v (Kish's design effect; at most the records in the
    denominator), and Clopper-Pearson's interval is taken at p with n_eff trials.

    Why not Wilson's at n_eff, which these rows had: near separation (a sensitivity near 1 over 40-100 patients)
    its upper limit fell below the truth in 3.6-5.1% of cohorts, and on a second seed's data sets it missed
    6.0-6.3% in three cells at 100 and 300 patients; Clopper-Pearson's equal tails miss 0.8-5.1% in every cell of
    both seeds, each tail at most 2.8%, at 0.99-1.06 times the oracle's width at 100 and 300 patients without near
    separation (Wilson's 0.94-1.00; benchmarks/coverage_kinds/fixed.py, docs/statistics.md)."""
    a, b = _sums(num, codes), _sums(den, codes)
    used = b > 0
    p, n_eff, df = _effective_n(a[used, None], b[used, None], few_units=False)
    return RatioInterval(p, *binomial_interval(p, n_eff, level, "beta"), n_eff, df)


def binomial_interval(p: float, n_eff: float, level: float, method: str, df: float = np.inf) -> tuple[float, float]:
    """Wilson's ("wilson") or Clopper-Pearson's ("beta") interval of a proportion p at n_eff trials (statsmodels'
    proportion_confint). Where its variance has `df` degrees of freedom (finite), Wilson's takes the normal
    quantile equal to t's and Clopper-Pearson's n_eff times (z / t)², Korn & Graubard's (1998) adjustment."""
    alpha = 1.0 - level
    if np.isfinite(df):
        q = float(t_dist.ppf(0.5 + level / 2.0, df))
        if method == "beta":
            n_eff *= (float(norm.ppf(0.5 + level / 2.0)) / q) ** 2
        else:
            alpha = 2.0 * float(norm.sf(q))
    lo, hi = proportion_confint(p * n_eff, n_eff, alpha=alpha, method=method)
    return min(float(lo), p), max(float(hi), p)  # Wilson's upper bound at k = n is 1 - 1e-16 in floating point


def _bias_reduced(num: np.ndarray, den: np.ndarray, ratios: np.ndarray) -> tuple[float, float]:
    """(variance, degrees of freedom) of the mean of the k ratios sum(num[:, j]) / sum(den[:, j]) over few units:
    the bias-reduced linearisation (CR2) and Bell & McCaffrey's (2002) degrees of freedom under the working model
    of independent trials (unit i's ratio of column j varies by r_j (1 - r_j) / den[i, j] about r_j).

    Why: the plain clustered variance takes each unit's residual as it is, but a unit that holds much of a ratio's
    denominator pulls the ratio toward itself and shows a small residual; with 10-22 records of very unequal class
    counts (MIT-BIH's S beats) the plain variance was short and t with g - 1 df too sure of it. With equal
    denominators this is the plain variance with g / (g - 1) and g - 1 df to the bit."""
    g, k = num.shape
    total = den.sum(axis=0)
    share = den / total  # a unit's leverage in each ratio
    adjust = np.divide(1.0, np.sqrt(1.0 - share), out=np.zeros_like(share), where=share < 1.0)
    terms = ((num - ratios * den) / total * adjust).mean(axis=1)
    # terms = u @ eps, eps the units' ratios about r:
    # u[a, (j, i)] = share[a, j] adjust[a, j] (1{a = i} - share[i, j]) / k
    u = np.concatenate([(share[:, j] * adjust[:, j] / k)[:, None] * (np.eye(g) - share[:, j]) for j in range(k)],
                       axis=1)
    trial_var = ratios * (1.0 - ratios)
    omega = np.divide(trial_var, den, out=np.zeros_like(den), where=den > 0).T.ravel()  # (j, i) order, as u's columns
    m = (u * omega) @ u.T
    df = float(np.trace(m) ** 2 / (m * m).sum()) if np.trace(m) > 0 else float(g - 1)
    return float(terms @ terms), df


def _effective_n(num: np.ndarray, den: np.ndarray, few_units: bool) -> tuple[float, float, float]:
    """(estimate, effective n, df) of the mean over k ratios sum(num[:, j]) / sum(den[:, j]), num and den (units,
    k) per-unit sums: the estimate's clustered (linearised) variance v over the g units sets n_eff = p (1 - p) / v,
    at most the units' total denominator; with `few_units` v is the bias-reduced one and df Bell-McCaffrey's
    (_bias_reduced), else df is inf (the normal's quantile)."""
    total = den.sum(axis=0)
    if (total <= 0).any():
        raise StatsError("no record in the denominator")
    ratios = num.sum(axis=0) / total
    p = float(ratios.mean())
    g = num.shape[0]
    df = np.inf
    if few_units:
        if g < 2:
            raise StatsError(f"an interval needs at least 2 units, got {g}")
        v, df = _bias_reduced(num, den, ratios)
    else:
        infl = ((num - ratios * den) / total).mean(axis=1)
        v = g / (g - 1) * float(infl @ infl) if g > 1 else 0.0
    n_eff = float(total.sum()) / den.shape[1]
    n_eff = n_eff if v <= 0 else min(n_eff, p * (1 - p) / v)
    return p, float(n_eff), float(df)


def wilson_ratio_mean(num: np.ndarray, den: np.ndarray, level: float, few_units: bool = False) -> RatioInterval:
    """The mean over k ratios sum(num[:, j]) / sum(den[:, j]), num and den (units, k) per-unit sums (a macro
    average over classes; k = 1 a single ratio), by Wilson's interval at p with n_eff trials (_effective_n). With
    `few_units` (records, not patients: 4-48), the variance is the bias-reduced one and the quantile t's with
    Bell & McCaffrey's degrees of freedom (_bias_reduced) instead of the normal's."""
    p, n_eff, df = _effective_n(num, den, few_units)  # df: inf without few_units, the normal's quantile
    return RatioInterval(p, *binomial_interval(p, n_eff, level, "wilson", df), n_eff, df)


def log_t_mean(values: np.ndarray, codes: np.ndarray, level: float) -> tuple[float, float, float]:
    """(mean, low, high) of positive per-record values, `codes` their patients: exp(log m -+ t SE / m), SE the
    patient-clustered SE of the mean, t with (patients - 1) df. A mean of 0 has no log: its interval is (0, 0)."""
    m = float(values.mean())
    var, g = mean_variance(values, codes)
    se = float(np.sqrt(var))
    if m <= 0:
        return m, 0.0, 0.0
    q = float(t_dist.ppf(0.5 + level / 2.0, g - 1))
    return m, m * float(np.exp(-q * se / m)), m * float(np.exp(q * se / m))


def log_t_estimate(values: np.ndarray, metric: str, level: float = 0.95, groups: np.ndarray | None = None) -> Estimate:
    """An Estimate of the mean of positive per-record values (LOG_T: log_t_mean), `groups` their patients (None:
    one record a patient). No interval where the values do not vary (bounds that coincide claim certainty) or where
    fewer than 2 patients give them."""
    values = np.asarray(values, dtype=float)
    codes, extra = units(patients_of(groups, values.size), values.size)
    if int(codes.max()) < 1 or np.ptp(values) == 0:  # codes number the patients 0..g-1
        why = "fewer than 2 patients" if int(codes.max()) < 1 else "every value the same"
        return Estimate(metric, float(values.mean()), None, None, level, LOG_T, int(values.size),
                        warnings=[f"no interval: {why}"], extra=extra)
    m, lo, hi = log_t_mean(values, codes, level)
    return Estimate(metric, m, lo, hi, level, LOG_T, int(values.size), extra=extra)


def class_difference_t(v: np.ndarray, y: np.ndarray, codes: np.ndarray,
                       level: float) -> tuple[float, float, float]:
    """(estimate, low, high) of mean(v | y = 1) - mean(v | y = 0) over records (the IDI with v the risk gain, the
    category-free NRI with v its sign), `codes` their patients: t with (patients - 1) df and the SE of the
    linearised per-patient terms, each class mean a ratio of per-patient sums."""
    est, infl = 0.0, np.zeros(int(codes.max()) + 1)
    for cls, sign in ((1, 1.0), (0, -1.0)):
        a, b = _sums(np.where(y == cls, v, 0.0), codes), _sums((y == cls).astype(float), codes)
        mean = float(a.sum() / b.sum())
        est += sign * mean
        infl += sign * (a - mean * b) / b.sum()
    g = int(np.count_nonzero(np.bincount(codes)))
    if g < 2:
        raise StatsError(f"an interval needs at least 2 patients, got {g}")
    se = float(np.sqrt(g / (g - 1) * float(infl @ infl)))
    q = float(t_dist.ppf(0.5 + level / 2.0, g - 1))
    return est, est - q * se, est + q * se
