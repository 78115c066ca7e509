"""ROC AUC with DeLong variance, CI and tests (fast midrank algorithm), and the bootstrap band of an ROC curve."""
from __future__ import annotations

from typing import Any, Literal

import numpy as np
from scipy.optimize import brentq, minimize_scalar
from scipy.stats import norm, rankdata
from scipy.stats import t as t_dist

from cardio_stats.bootstrap import Patients, patients_of, resample_indices
from cardio_stats.result import Estimate, StatsError, TestResult
from cardio_stats.validation import as_binary_labels, as_scores, check_level, check_n_resamples


def _structural_components(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUCs and DeLong structural components for k score rows over the same records.

    Hand-written: the O(n log n) midrank algorithm of Sun & Xu (2014, IEEE SPL 21:1389), which
    no SciPy/statsmodels/sklearn function provides. Returns (aucs (k,), v10 (k, m), v01 (k, n)):
    v10 = placement of each positive among negatives, v01 = of each negative among positives.
    """
    pos, neg = scores[:, y == 1], scores[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    tx = rankdata(pos, axis=1)  # midranks handle ties as 1/2, as in the Mann-Whitney AUC
    ty = rankdata(neg, axis=1)
    tz = rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    aucs = (tz[:, :m].sum(axis=1) / m - (m + 1) / 2.0) / n
    v10 = (tz[:, :m] - tx) / n
    v01 = 1.0 - (tz[:, m:] - ty) / m
    return aucs, v10, v01


def _delong_cov(y: np.ndarray, scores: np.ndarray,
                patients: Patients | None = None) -> tuple[np.ndarray, np.ndarray, int, int]:
    """AUCs and their DeLong covariance matrix S10/m + S01/n (sample covariances, as pROC).

    With patients holding several records, Obuchowski's (1997, Biometrics 53:567) clustered covariance
    (see ``_clustered_cov``); when every patient has one record it is the ordinary DeLong covariance.
    """
    m, n = int(y.sum()), int(y.size - y.sum())
    if m < 2 or n < 2:
        raise StatsError(f"DeLong variance needs at least 2 positives and 2 negatives; "
                         f"got {m} positive(s) and {n} negative(s)")
    aucs, v10, v01 = _structural_components(y, scores)
    if patients is not None and not patients.singletons:
        return aucs, _clustered_cov(y, aucs, v10, v01, patients), m, n
    cov = np.atleast_2d(np.cov(v10, ddof=1)) / m + np.atleast_2d(np.cov(v01, ddof=1)) / n
    return aucs, cov, m, n


def _clustered_cov(y: np.ndarray, aucs: np.ndarray, v10: np.ndarray, v01: np.ndarray,
                   patients: Patients) -> np.ndarray:
    """Obuchowski's (1997) clustered DeLong covariance of k AUCs over the same records.

    Hand-written (no SciPy/statsmodels function). With I clusters (patients), I10 of them holding positive
    records and I01 negative ones, M positives and N negatives in all, cluster sums of the placements
    V10_i = sum_j v10_ij and V01_i = sum_k v01_ik, and A_i = V10_i - m_i AUC, B_i = V01_i - n_i AUC:
        S10 = I10 / ((I10 - 1) M) sum_i A_i A_i',  S01 = I01 / ((I01 - 1) N) sum_i B_i B_i',
        S11 = I / (I - 1) sum_i A_i B_i',
        cov = S10 / M + S01 / N + (S11 + S11') / (M N).
    One record per cluster gives S11 = 0 and the ordinary DeLong covariance.
    """
    pos = y == 1
    m, n, g = int(pos.sum()), int((~pos).sum()), patients.n_groups
    codes_pos, codes_neg = patients.codes[pos], patients.codes[~pos]
    m_i = np.bincount(codes_pos, minlength=g)
    n_i = np.bincount(codes_neg, minlength=g)
    i10, i01 = int(np.count_nonzero(m_i)), int(np.count_nonzero(n_i))
    if i10 < 2 or i01 < 2:
        raise StatsError(f"clustered DeLong variance needs at least 2 patients with positive and 2 with negative "
                         f"records; got {i10} and {i01}")
    a = np.array([np.bincount(codes_pos, weights=row, minlength=g) for row in v10]) - aucs[:, None] * m_i
    b = np.array([np.bincount(codes_neg, weights=row, minlength=g) for row in v01]) - aucs[:, None] * n_i
    s10 = i10 / ((i10 - 1) * m) * (a @ a.T)
    s01 = i01 / ((i01 - 1) * n) * (b @ b.T)
    s11 = g / (g - 1) * (a @ b.T)
    return s10 / m + s01 / n + (s11 + s11.T) / (m * n)


def auc(y: Any, score: Any) -> float:
    """Area under the ROC curve (higher score = positive class); ties count one half."""
    yy = as_binary_labels(y)
    s = as_scores(score, n=yy.size)
    m, n = int(yy.sum()), int(yy.size - yy.sum())
    r = rankdata(s)
    return float((r[yy == 1].sum() - m * (m + 1) / 2.0) / (m * n))


CLUSTERED = "delong-clustered (Obuchowski 1997)"


def _cluster_extra(y: np.ndarray, patients: Patients | None) -> dict:
    """What a DeLong result records when its variance counted patients, not records."""
    if patients is None or patients.singletons:
        return {} if patients is None else {"n_groups": int(patients.n_groups)}
    pos = y == 1
    return {"variance": CLUSTERED, "n_groups": int(patients.n_groups),
            "n_pos_groups": int(np.count_nonzero(np.bincount(patients.codes[pos], minlength=patients.n_groups))),
            "n_neg_groups": int(np.count_nonzero(np.bincount(patients.codes[~pos], minlength=patients.n_groups)))}


INTERVALS = ("normal", "logit", "logit-t", "score")
#: The score interval's least ratio of the DeLong variance to Hanley & McNeil's at the estimate: DeLong's falls to 0
#: faster than the AUC's spread as the classes separate (a symmetric or logit interval then reached too little below a
#: high estimate). The smallest of 0.2-0.75 with every cell's misses <= 5.1% and each tail <= 3.5% at 100 and 300
#: patients, AUC 0.5-0.99 (seed 0; 0.3 missed 5.7%); held out: benchmarks/coverage.py --kinds "AUC, one fixed model
#: (holdout, external)" --seed 1 (docs/statistics.md). Where the classes do not overlap the ratio is 1 (h's own).
SCORE_FLOOR = 0.4
#: The paired ΔAUC's score interval (delong_test(..., interval="score")): each AUC's DeLong variance kept at least this
#: times Hanley & McNeil's at its patients. The normal interval of the difference missed 6.4-10.8% near separation.
#: Chosen on seed 2 by benchmarks/holdout_diff_floor.py's rule (stated before that grid: SCORE_FLOOR's on the strong
#: and separating cells, no worse than the normal interval on null and signal); held out: benchmarks/coverage.py
#: --kinds "ΔAUC, two fixed models (holdout, external)" --seed 1 (docs/statistics.md).
DIFF_SCORE_FLOOR = 0.7


def hanley_mcneil(theta: Any, pos: np.ndarray, neg: np.ndarray) -> Any:
    """Hanley & McNeil's (1982) variance of an AUC theta with pos positive and neg negative units (scores of the
    exponential model: Q1 = θ / (2 - θ), Q2 = 2θ^2 / (1 + θ)); 0 at θ = 0 and 1. Hand-written: three lines no
    library exports."""
    q1, q2 = theta / (2.0 - theta), 2.0 * theta**2 / (1.0 + theta)
    return (theta * (1.0 - theta) + (pos - 1) * (q1 - theta**2) + (neg - 1) * (q2 - theta**2)) / (pos * neg)


def score_bounds(est: float, var_at: Any, level: float) -> tuple[float, float]:
    """The AUCs θ in [0, 1] with (est - θ)^2 <= z^2 var_at(θ) around est (var_at takes an array of θ): a score
    interval, whose variance is the candidate truth's rather than the estimate's, so it reaches further toward 0.5
    than toward the bound it nears. The ends of the run of a fine grid that holds est, refined by Brent's method."""
    z2 = float(norm.ppf(0.5 + level / 2.0)) ** 2

    def f(t: Any) -> Any:
        return (est - t) ** 2 - z2 * var_at(t)

    grid = np.unique(np.r_[np.linspace(0.0, 1.0, 2001), est])
    out = f(grid) > 0.0
    at = int(np.searchsorted(grid, est))
    below, above = np.flatnonzero(out[:at]), np.flatnonzero(out[at:]) + at
    lo = brentq(f, grid[below[-1]], grid[below[-1] + 1]) if below.size else 0.0
    hi = brentq(f, grid[above[0] - 1], grid[above[0]]) if above.size else 1.0
    return float(min(lo, est)), float(max(hi, est))


def hm_variance(est: float, var: float, pos: np.ndarray, neg: np.ndarray, weights: np.ndarray | None = None,
                floor: float = 0.0) -> tuple[Any, float]:
    """Var(θ) = r h(θ) as a function of an array of θ, and r: h = sum_k weights_k x Hanley & McNeil's variance at
    pos_k and neg_k (each fold's patients of each class; default weights their mean), r = var / h(est), the
    estimate's own variance setting the scale and h only the shape in θ, kept at least `floor`; where var is 0 (the
    classes do not overlap) r = 1, h's own."""
    w = np.full(pos.size, 1.0 / pos.size) if weights is None else weights

    def h(theta: Any) -> Any:
        return hanley_mcneil(np.asarray(theta, dtype=float)[..., None], pos, neg) @ w

    at = float(h(est))
    r = max(var / at, floor) if var > 0.0 and at > 0.0 else 1.0
    return lambda t: r * h(t), r


def hm_score_interval(est: float, var: float, pos: np.ndarray, neg: np.ndarray, level: float,
                      weights: np.ndarray | None = None, floor: float = 0.0) -> tuple[float, float, float]:
    """``score_bounds`` of ``hm_variance``'s Var(θ) = r h(θ), and r."""
    var_at, r = hm_variance(est, var, pos, neg, weights, floor)
    return (*score_bounds(est, var_at, level), r)


#: A difference's two AUCs are given a correlation of at most this size: at 1 their joint variance is singular.
MAX_CORRELATION = 0.99


def hm_diff_score_interval(a: float, b: float, var: float, var_a: float, var_b: float,
                           counts_a: tuple[np.ndarray, np.ndarray], counts_b: tuple[np.ndarray, np.ndarray],
                           level: float, weights: np.ndarray | None = None) -> tuple[float, float, float, float]:
    """The score interval of a difference of two AUCs A - B, its score test's statistic at 0 signed as A - B, and
    the correlation it kept: (low, high, z, rho). The two-sided p-value is 2 (1 - Phi(|z|)), so 0 lies outside the
    interval exactly when p < 1 - level.

    The differences Δ with T(Δ) <= z^2, T(Δ) the least over the AUC pairs (θa, θa - Δ) of x' S(θ)^-1 x, x = (a -
    θa, b - θb): each AUC's variance taken at the candidate truth, not at the estimate (``hm_score_interval``'s idea
    for two AUCs; the least over the pair profiles out where their mean lies). S(θ) = k [[Va(θa), c], [c, Vb(θb)]]:
    Va(θ) = var_a h_a(θ) / h_a(a), each AUC's own interval variance (var_a) shaped in θ by Hanley & McNeil's at its
    class counts (``hm_variance``: h_a per fold, `weights`; h's own where var_a is 0, the AUC at its bound), and
    c = rho sqrt(Va Vb) with the correlation rho that gives the difference's own variance `var` at the estimate
    (within +-MAX_CORRELATION; k rescales where that bound binds). Where var is 0 (both AUCs at their bounds) k = 1
    and rho = 0: h's own. Near 1 an AUC's variance falls to 0, so a symmetric interval around a difference whose
    AUCs sat near the bound reached too little toward the side where they leave it (benchmarks/coverage.py,
    docs/statistics.md). Hand-written: no library inverts a score statistic of two correlated AUCs."""
    z2 = float(norm.ppf(0.5 + level / 2.0)) ** 2
    va, vb = (hm_variance(est, v, *counts, weights)[0] for est, v, counts in ((a, var_a, counts_a),
                                                                              (b, var_b, counts_b)))
    va0, vb0 = float(va(a)), float(vb(b))
    rho = (float(np.clip((va0 + vb0 - var) / (2.0 * np.sqrt(va0 * vb0)), -MAX_CORRELATION, MAX_CORRELATION))
           if va0 * vb0 > 0.0 and var > 0.0 else 0.0)
    g0 = va0 + vb0 - 2.0 * rho * np.sqrt(va0 * vb0)
    k = var / g0 if var > 0.0 and g0 > 0.0 else 1.0
    grid = np.linspace(0.0, 1.0, 1001)[1:-1]  # interior: at 0 and 1 an AUC's variance is 0
    va_grid = va(grid)

    def form(ta: Any, tb: Any, sa: Any, sb: Any) -> Any:
        xa, xb = a - ta, b - tb
        return (sb * xa * xa - 2.0 * rho * np.sqrt(sa * sb) * xa * xb + sa * xb * xb) / (k * (1 - rho**2) * sa * sb)

    def t_stat(delta: float) -> float:
        # the pairs on the grid, then Brent's bounded search within a grid step of the least (where that is the
        # last interior point: up to 0 or 1)
        i = np.flatnonzero((grid > delta) & (grid < 1.0 + delta))
        if i.size == 0:
            return np.inf
        q = form(grid[i], grid[i] - delta, va_grid[i], vb(grid[i] - delta))
        m = int(np.argmin(q))
        lo_t = max(grid[i[m]] - 1e-3, delta, 0.0) + 1e-12
        hi_t = min(grid[i[m]] + 1e-3, 1.0 + delta, 1.0) - 1e-12

        def at(ta: float) -> float:
            return float(form(ta, ta - delta, va(ta), vb(ta - delta)))

        best = minimize_scalar(at, bounds=(lo_t, hi_t), method="bounded", options={"xatol": 1e-8})
        return min(float(best.fun), float(q[m]))

    est = a - b
    step = max(np.sqrt(z2 * k * g0) / 4.0, 1e-3)

    def bound(sign: float) -> float:
        x = est
        while True:
            nxt = float(np.clip(x + sign * step, -1.0, 1.0))
            if t_stat(nxt) > z2:
                return float(brentq(lambda d: t_stat(d) - z2, *sorted((x, nxt)), xtol=1e-7))
            if nxt in (-1.0, 1.0):
                return nxt
            x = nxt

    z = float(np.sign(est) * np.sqrt(t_stat(0.0))) if est != 0.0 else 0.0
    return min(bound(-1.0), est), max(bound(1.0), est), z, rho


def _small_sample(a: float, se: float, level: float, interval: str, df: int) -> tuple[float, float]:
    """The interval on the logit scale (delta method: se / (AUC (1 - AUC))), back-transformed, so it stays in
    (0, 1) and is skewed toward 0.5 as the AUC's sampling law is; "logit-t" also takes Student t quantiles with
    df = patients of the rarer class - 1 (Qin & Hotilovac 2008, Stat Methods Med Res 17:207, compare logit
    intervals; the t quantile is measured in benchmarks/cv_coverage.py)."""
    if a <= 0.0 or a >= 1.0 or se == 0.0:
        return a, a
    q = float(t_dist.ppf(0.5 + level / 2.0, df)) if interval == "logit-t" else float(norm.ppf(0.5 + level / 2.0))
    centre, half = np.log(a / (1 - a)), q * se / (a * (1 - a))
    return float(1 / (1 + np.exp(-(centre - half)))), float(1 / (1 + np.exp(-(centre + half))))


def delong_ci(y: Any, score: Any, level: float = 0.95, groups: Any = None, interval: str = "normal") -> Estimate:
    """AUC with DeLong standard error and normal CI clipped to [0, 1] (pROC ci.auc(method="delong")).

    With ``groups`` (patient ids, one per record) and a patient with several records, the variance is
    Obuchowski's clustered DeLong (``extra.variance``); with one record per patient it is DeLong's.
    ``method`` stays "delong" either way: the estimator is the same, only its variance counts patients.
    ``interval``: "normal" (pROC's), the small-sample "logit" / "logit-t" (method "delong-logit" /
    "delong-logit-t"), whose coverage at 40 patients benchmarks/cv_coverage.py shows, or "score" (method
    "delong-score", what a holdout's or an external cohort's row carries): the AUCs θ with (AUC - θ)^2 <= z^2 r h(θ),
    h Hanley & McNeil's variance at the patients of each class and r the DeLong variance's ratio to h at the
    estimate, at least SCORE_FLOOR (1 where the DeLong variance is 0). It stays in [0, 1], reaches further toward
    0.5 than toward the bound it nears, and has width where the classes do not overlap (the DeLong variance 0; every
    interval takes it there, pROC's [1, 1] claiming certainty): benchmarks/coverage.py's "AUC, one fixed model
    (holdout, external)".
    """
    if interval not in INTERVALS:
        raise StatsError(f"unknown DeLong interval {interval!r}; expected one of {list(INTERVALS)}")
    level = check_level(level)
    yy = as_binary_labels(y)
    s = as_scores(score, n=yy.size)
    patients = patients_of(groups, yy.size)
    aucs, cov, m, n = _delong_cov(yy, s[None, :], patients)
    a, var = float(aucs[0]), float(cov[0, 0])
    var = max(var, 0.0)
    se = var**0.5
    extra = {"n_pos": m, "n_neg": n, "se": se, "var": var, **_cluster_extra(yy, patients)}
    method = "delong" if interval == "normal" else f"delong-{interval}"
    warnings = []
    if var == 0.0 and a not in (0.0, 1.0):  # tied scores: an interval of zero width would claim certainty
        return Estimate(metric="auc", estimate=a, ci_low=None, ci_high=None, level=level, method=method,
                        n=int(yy.size), extra=extra,
                        warnings=[f"no interval: the DeLong variance is 0 (AUC = {a:g}: the scores are tied)"])
    if var == 0.0 or interval == "score":  # at the bound pROC's [1, 1] claimed certainty
        pos, neg = (np.array([extra.get(f"n_{c}_groups", k)]) for c, k in (("pos", m), ("neg", n)))
        # at the bound h's own, as the fold interval's: it keeps 0.5 inside where chance separates the classes
        # often (2 and 2 patients: 1 in 6), which 0.4 h did not
        lo, hi, ratio = hm_score_interval(a, var, pos, neg, level, floor=SCORE_FLOOR)
        if var == 0.0:
            warnings.append(f"the DeLong variance is 0 (AUC = {a:g}: the classes do not overlap); the interval is "
                            f"Hanley & McNeil's score interval at {pos[0]} positive and {neg[0]} negative patients")
        return Estimate(metric="auc", estimate=a, ci_low=lo, ci_high=hi, level=level, method=method, n=int(yy.size),
                        warnings=warnings, extra={**extra, "interval": "score", "variance_ratio": ratio})
    if interval == "normal":
        z = norm.ppf(0.5 + level / 2.0)
        lo, hi = max(0.0, float(a - z * se)), min(1.0, float(a + z * se))
    else:
        df = min(extra.get("n_pos_groups", m), extra.get("n_neg_groups", n)) - 1
        lo, hi = _small_sample(a, se, level, interval, df)
        extra.update({"interval": interval, **({"df": df} if interval == "logit-t" else {})})
    return Estimate(metric="auc", estimate=a, ci_low=lo, ci_high=hi, level=level, method=method, n=int(yy.size),
                    warnings=warnings, extra=extra)


def delong_test(y: Any, score1: Any, score2: Any, level: float = 0.95, groups: Any = None, interval: str = "normal",
                floor: float = DIFF_SCORE_FLOOR) -> TestResult:
    """Paired DeLong test of two AUCs on the same records (pROC roc.test(method="delong", paired=TRUE)).

    With ``groups`` (patient ids) and several records per patient, the covariance of the two AUCs is
    Obuchowski's clustered one (``extra.variance``). ``interval``: "normal" (pROC's: the difference +- z SE, its
    z-test), or "score" (method "delong-paired-score"): ``hm_diff_score_interval`` at DeLong's variances and
    correlation, each AUC's variance kept at least `floor` (DIFF_SCORE_FLOOR) times Hanley & McNeil's at its
    patients, and that score test's p-value: what a one-fold run's test row and the fold ensemble's comparison carry.
    Near separation the normal interval reached too little toward where the AUCs leave the bound
    (benchmarks/coverage.py's "ΔAUC, two fixed models (holdout, external)"; the floor's grid:
    benchmarks/holdout_diff_floor.py).
    """
    if interval not in ("normal", "score"):
        raise StatsError(f"unknown paired DeLong interval {interval!r}; expected 'normal' or 'score'")
    level = check_level(level)
    yy = as_binary_labels(y)
    s1 = as_scores(score1, "score1", n=yy.size)
    s2 = as_scores(score2, "score2", n=yy.size)
    patients = patients_of(groups, yy.size)
    aucs, cov, m, n = _delong_cov(yy, np.vstack([s1, s2]), patients)
    var_diff = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    extra = {"n_pos": m, "n_neg": n, "cov": float(cov[0, 1]), **_cluster_extra(yy, patients)}
    differ = abs(float(aucs[0] - aucs[1])) > 1e-15
    # the score interval has a variance where DeLong's difference has none (a perfect model against a constant one)
    res = _z_test("delong_paired", "delong-paired", aucs[0], aucs[1], var_diff, level, int(yy.size), extra,
                  zero_ok=interval == "score")
    if interval == "normal" or (var_diff <= 1e-300 and not differ):  # identical AUCs and components: nothing to shape
        return res
    flat = [float(np.ptp(x)) == 0.0 for x in (s1, s2)]
    if flat[0] != flat[1]:  # one score the same for every patient: its AUC is 0.5 in any cohort, with no spread
        i = int(flat[0])
        return _against_constant(res, i, float(aucs[i]), float(cov[i, i]), level)
    counts = (np.array([res.extra.get("n_pos_groups", m)]), np.array([res.extra.get("n_neg_groups", n)]))
    va, vb = (max(float(cov[i, i]), floor * float(hanley_mcneil(aucs[i], *counts)[0])) for i in (0, 1))
    rho = float(cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])) if cov[0, 0] * cov[1, 1] > 0.0 else 0.0
    var = max(va + vb - 2.0 * rho * np.sqrt(va * vb), var_diff)
    lo, hi, z, _ = hm_diff_score_interval(float(aucs[0]), float(aucs[1]), var, va, vb, counts, counts, level)
    res.extra.update({"diff_ci_low": lo, "diff_ci_high": hi, "interval": "score", "floor": floor})
    return TestResult(name=res.name, statistic=z, p_value=float(2.0 * norm.sf(abs(z))), method="delong-paired-score",
                      df=None, n=res.n, extra=res.extra, warnings=res.warnings)


def _against_constant(res: TestResult, i: int, auc: float, var: float, level: float) -> TestResult:
    """The paired score interval where score `1 - i` is the same for every patient (a rule every patient meets): its
    AUC is 0.5 exactly, so the difference is the other AUC less 0.5, its interval that AUC's own score interval
    (delong_ci(..., interval="score"), floor SCORE_FLOOR) less 0.5, and its test the score test of that AUC at 0.5.
    Floored as an AUC of unknown spread, the constant's 0.5 made the interval 3.7-8.5 times the oracle width near
    separation (benchmarks/coverage.py's "ΔAUC, a fixed model against a constant score (holdout)")."""
    pos, neg = (np.array([res.extra.get(f"n_{c}_groups", res.extra[f"n_{c}"])]) for c in ("pos", "neg"))
    var_at, _ = hm_variance(auc, var, pos, neg, floor=SCORE_FLOOR)
    lo, hi = score_bounds(auc, var_at, level)
    sign = 1.0 if i == 0 else -1.0  # the difference is score1's AUC less score2's
    z = sign * (auc - 0.5) / float(np.sqrt(var_at(0.5)))
    lo, hi = sorted((sign * (lo - 0.5), sign * (hi - 0.5)))
    which = ("score1", "score2")
    return TestResult(name=res.name, statistic=float(z), p_value=float(2.0 * norm.sf(abs(z))),
                      method="delong-paired-score", df=None, n=res.n,
                      extra={**res.extra, "diff_ci_low": lo, "diff_ci_high": hi, "interval": "score",
                             "constant": which[1 - i]},
                      warnings=[f"{which[1 - i]} is the same for every patient: its AUC is 0.5 in any cohort, so the "
                                f"difference's interval is {which[i]}'s own score interval less 0.5"])


def delong_unpaired_test(y1: Any, score1: Any, y2: Any, score2: Any) -> TestResult:
    """Unpaired DeLong test of two AUCs from independent samples, as pROC roc.test(method="delong", paired=FALSE):
    D = (AUC1 - AUC2) / sqrt(var1 + var2), referred to Student t with Welch-Satterthwaite df."""
    yy1 = as_binary_labels(y1, "y1")
    yy2 = as_binary_labels(y2, "y2")
    s1 = as_scores(score1, "score1", n=yy1.size)
    s2 = as_scores(score2, "score2", n=yy2.size)
    a1, c1, _, _ = _delong_cov(yy1, s1[None, :])
    a2, c2, _, _ = _delong_cov(yy2, s2[None, :])
    v1, v2 = float(c1[0, 0]), float(c2[0, 0])
    diff = float(a1[0] - a2[0])
    extra = {"auc1": float(a1[0]), "auc2": float(a2[0]), "diff": diff, "n1": int(yy1.size), "n2": int(yy2.size)}
    if v1 + v2 <= 1e-300:
        if abs(diff) > 1e-15:
            raise StatsError(f"both DeLong variances are 0 while the AUCs differ ({a1[0]:g} vs {a2[0]:g})")
        return TestResult(name="delong_unpaired", statistic=0.0, p_value=1.0, method="delong-unpaired", df=None,
                          n=int(yy1.size + yy2.size), extra=extra,
                          warnings=["both AUCs have DeLong variance 0 and are equal; D set to 0, p to 1"])
    d = diff / (v1 + v2) ** 0.5
    df = (v1 + v2) ** 2 / (v1**2 / (yy1.size - 1) + v2**2 / (yy2.size - 1))
    extra["se_diff"] = (v1 + v2) ** 0.5
    return TestResult(name="delong_unpaired", statistic=float(d), p_value=float(2.0 * t_dist.sf(abs(d), df)),
                      method="delong-unpaired", df=float(df), n=int(yy1.size + yy2.size), extra=extra)


def _z_test(name: str, method: str, a1: float, a2: float, var_diff: float, level: float, n: int,
            extra: dict, zero_ok: bool = False) -> TestResult:
    """pROC's z-test and normal interval of a difference of two AUCs; a zero variance with differing AUCs is an error
    unless `zero_ok` (the caller replaces the interval and the test: delong_test's score interval)."""
    diff = float(a1 - a2)
    warnings: list[str] = []
    if var_diff <= 1e-300 and abs(diff) > 1e-15 and zero_ok:
        z, p, se = float(np.sign(diff) * np.inf), 0.0, 0.0
    elif var_diff <= 1e-300:
        if abs(diff) > 1e-15:
            raise StatsError(f"the variance of the AUC difference is 0 while the AUCs differ ({a1:g} vs {a2:g})")
        warnings.append("the two AUCs and their DeLong components are identical; Z set to 0, p to 1")
        z, p, se = 0.0, 1.0, 0.0
    else:
        se = var_diff**0.5
        z = diff / se
        p = float(2.0 * norm.sf(abs(z)))
    q = float(norm.ppf(0.5 + level / 2.0))  # pROC ci.delong.paired: normal interval of the difference
    extra = {"auc1": float(a1), "auc2": float(a2), "diff": diff, "se_diff": se,
             "diff_ci_low": diff - q * se, "diff_ci_high": diff + q * se, "level": level, **extra}
    return TestResult(name=name, statistic=float(z), p_value=p, method=method, df=None, n=n, extra=extra,
                      warnings=warnings)


def _tpr_rows(pos_ranks: np.ndarray, neg_ranks: np.ndarray, grid: np.ndarray, k: int) -> np.ndarray:
    """ROC TPR on an FPR grid for rows of (positive, negative) score ranks (k distinct ranks): the curve as
    sklearn's roc_curve draws it, a step between untied scores and a straight line across a threshold where
    positives and negatives tie (a rule's two-valued score is a line from (0, 0) to its one point and on to (1, 1)).

    Hand-written batched ROC: one global searchsorted with per-row offsets instead of a loop.
    """
    b, m = pos_ranks.shape
    n = neg_ranks.shape[1]
    rows = np.arange(b, dtype=np.int64)[:, None]
    f = grid * n  # the grid in negatives
    allowed = np.floor(f + 1e-9).astype(np.int64)  # negatives allowed above the threshold
    neg_sorted = np.sort(neg_ranks, axis=1)
    thr = neg_sorted[:, n - 1 - np.minimum(allowed, n - 1)]  # (b, grid): the threshold's score rank, from the top

    def count(sorted_flat: np.ndarray, per_row: int, side: Literal["left", "right"]) -> np.ndarray:
        """Per row, how many of its ranks lie below thr (side "left") or at or below it ("right")."""
        found = np.searchsorted(sorted_flat, (thr + rows * k).ravel(), side=side).reshape(b, -1)
        return found - rows * per_row

    flat_pos = (np.sort(pos_ranks, axis=1) + rows * k).ravel()
    flat_neg = (neg_sorted + rows * k).ravel()
    pos_above = m - count(flat_pos, m, "right")  # positives strictly above the threshold
    pos_tied = m - count(flat_pos, m, "left") - pos_above  # positives at it
    neg_above = n - count(flat_neg, n, "right")
    neg_tied = n - count(flat_neg, n, "left") - neg_above  # >= 1: the threshold is a negative's score
    # along the tied block, TPR climbs in proportion to the negatives passed (0 where no positive ties)
    share = np.clip((f[None, :] - neg_above) / neg_tied, 0.0, 1.0)
    tpr = (pos_above + share * pos_tied) / m
    tpr[:, allowed >= n] = 1.0
    return tpr


def roc_curve_band(y: Any, score: Any, n_resamples: int = 2000, seed: int | None = 0, level: float = 0.95,
                   n_grid: int = 101, groups: Any = None) -> dict:
    """Pointwise stratified-bootstrap band of the ROC curve: TPR and percentile limits on a fixed FPR grid.

    With ``groups`` (patient ids, one per record) patients are resampled with all their records, stratified by
    patient class (positive if any record is); the FPR grid then applies to each resample's own negatives.
    """
    level = check_level(level)
    n_resamples = check_n_resamples(n_resamples)
    yy = as_binary_labels(y)
    s = as_scores(score, n=yy.size)
    patients = patients_of(groups, yy.size)
    pos_idx, neg_idx = np.flatnonzero(yy == 1), np.flatnonzero(yy == 0)
    m, n = pos_idx.size, neg_idx.size
    _, ranks = np.unique(s, return_inverse=True)
    ranks = ranks.ravel()
    k = int(ranks.max()) + 1
    grid = np.linspace(0.0, 1.0, n_grid)
    point = _tpr_rows(ranks[pos_idx][None, :], ranks[neg_idx][None, :], grid, k)[0]
    boot = np.empty((n_resamples, n_grid))
    if patients is None or patients.singletons:
        idx = np.asarray(resample_indices(yy.size, n_resamples, seed, strata=yy))  # negatives' block, then positives'
        rows = max(1, 2_000_000 // (yy.size + n_grid))
        for start in range(0, n_resamples, rows):
            block = idx[start:start + rows]
            boot[start:start + rows] = _tpr_rows(ranks[block[:, n:]], ranks[block[:, :n]], grid, k)
    else:  # resamples differ in length: one at a time
        for r, i in enumerate(resample_indices(yy.size, n_resamples, seed, strata=yy, groups=groups)):
            is_pos = yy[i] == 1
            boot[r] = _tpr_rows(ranks[i[is_pos]][None, :], ranks[i[~is_pos]][None, :], grid, k)[0]
    alpha = (1.0 - level) / 2.0
    lo, hi = np.percentile(boot, [100 * alpha, 100 * (1 - alpha)], axis=0)
    out = {"fpr": grid, "tpr": point, "lo": lo, "hi": hi, "level": level, "n_resamples": n_resamples,
           "seed": seed, "method": "bootstrap-percentile (stratified, pointwise)", "n_pos": int(m), "n_neg": int(n)}
    return out if patients is None else {**out, **patients.extra()}
