"""The interval of a cross-validated AUC from a run's own K fold models, and of the paired difference of two.

Out-of-fold scores come from K models, each fitted on a different training sample. An interval that treats the
pooled scores as one fixed model's (DeLong, a bootstrap of the pooled scores) counts only which patients were
scored; it ignores that another training set gives another model, and with no signal it excluded chance in 14% of
data sets instead of 5% (issue 38). This module serves pipelines that cannot be refitted hundreds of times (deep
networks): it needs only the K fold models' out-of-fold scores. A pipeline cheap to refit gets nested CV instead
(`cardio_stats.nested_cv`), which is tighter.

    AUC:   estimate = mean of the K per-fold AUCs,   var = 2 x (mean within-fold DeLong variance) / K,
           interval {θ : (estimate - θ)^2 <= z^2 var h(θ) / h(estimate)}   (``score_bounds``),
    ΔAUC:  estimate = mean of the K per-fold differences,
           var = mean over folds of max((1 + DIFF_APART x r) v_d, DIFF_FLOOR (v_a + v_b)) / K,
           r = v_d / (v_a + v_b), inverted as a score interval over the two AUCs (``roc.hm_diff_score_interval``),

with h(θ) Hanley & McNeil's variance of an AUC θ at each fold's patient counts (``hanley_mcneil``), and v_d the
within-fold (paired, patient-clustered) DeLong variance of the difference and v_a, v_b those of the
two AUCs. Repeated K-fold (fold labels "repeat/fold"): the mean over every fold, its variance one repeat's less
the share of the repeats' spread that averaging them removes (``repeats_variance``).
Var(mean of K fold statistics) = (mean within-fold variance) / K + (K - 1) / K x (the covariance of two folds'
statistics). That covariance comes from the cross terms: fold k is in model j's training set and fold j in model
k's, so a chance pattern of either fold moves both statistics alike. For a learner whose fit is a smooth function of
its training folds, and no signal, it is v / (K - 1) for one AUC, hence the AUC's 2 v / K at any K (v: the AUC's
variance within one fold, DeLong's, clustered by patient). The difference's covariance is not the difference's own
v_d / (K - 1): what models A and B learn from the same chance pattern is more alike than their scores of the test
patients are (their within-fold correlation), so where A and B agree closely v_d is small while the fold covariance
is not, and 2 v_d / K missed 4.6% below the truth (ΔAUC, 300 patients, no signal, ridge logistic models) while being
1.2-1.3 times the oracle width elsewhere. The ΔAUC's fold covariance (x (K - 1)) is therefore DIFF_APART x r x v_d,
with r = v_d / (v_a + v_b) (1 less the two AUCs' within-fold correlation, for equal v_a and v_b): for models that
rank the test patients independently (r near 1) that is near the AUC's own rule, and it shrinks as the two models
agree (r small, B nested in A). Where they agree closely it is floored at DIFF_FLOOR (v_a + v_b), the part that
stays. The two constants are the pair, on a grid, with the most power among those that kept every tail's misses <=
3.5% and all misses <= 5.0% (the goal of 6.0% less a Monte-Carlo margin) over 12 simulated cells
(benchmarks/coverage_kinds/headline.py's data with a noisily fitted and a ridge logistic learner, nested and
disjoint feature sets, no signal and signal, 100 and 300 patients: `benchmarks/cv_diff_weights.py`); the held-out
check is `benchmarks/coverage.py --seed 1` (docs/statistics.md). A sum with fixed weights, (1.7 v_d + 0.1 (v_a +
v_b)), held the same cells at 29% power against 46% (+0.056, 300 patients): one multiplier of v_d must cover the
disjoint pairs (r near 1, which need about 2 v_d) and so is too wide for the nested ones.
The AUC's interval takes DeLong's variance at the estimate and its shape in θ from Hanley & McNeil: an AUC's
variance falls to 0 as it nears 1, so a symmetric interval around a high estimate (a data set whose folds happened to
separate well) reached too little below it. Symmetric, it missed 6.4% and 13.9% (all above the truth) for true
AUCs of 0.96 and 0.99 at 100 patients, and gave classes separated in every fold [1, 1]; inverted as a score
interval (Newcombe 2006's idea for one AUC, applied to the fold mean), it missed 1.0-1.8% there and 1.5-4.0%
elsewhere (benchmarks/coverage.py's "AUC, deep pipeline, near separation"; docs/statistics.md). Where every fold's
classes separate, DeLong's variance is 0 and the interval is h's own (AT_BOUND); a fold with 1 patient of a class
has none, and h at the estimate and that fold's counts stands in for it (THIN_FOLD). The ΔAUC's interval is the same
idea for two AUCs: the differences whose nearest AUC pair, each AUC's variance h at the candidate, lies within z of
the estimate (each AUC's own interval variance, and the correlation that gives the difference its own variance at
the estimate); symmetric, with A about 0.99 and B about 0.95 at 100 patients it missed 5.5%, nearly all below the
truth. Where both models separate every fold it is h's own too.
Nadeau & Bengio's corrected t (issue 38's interval) estimated the correlation from the spread of five fold AUCs (4
df) and was 1.3-1.9 times the oracle width while missing 7% at 300 null patients; so did every estimate of the fold
covariance from the K fold values tried here (issue 53), which were 1.2-1.6 times the oracle width.
Hand-written: no SciPy/statsmodels/scikit-learn function computes it.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import norm

from cardio_stats.bootstrap import patients_of
from cardio_stats.result import Estimate, StatsError
from cardio_stats.roc import (
    _structural_components,
    hanley_mcneil,
    hm_diff_score_interval,
    hm_score_interval,
    hm_variance,
)
from cardio_stats.validation import as_binary_labels, as_scores, check_level

CV_METHOD = "cv: fold DeLong x 2"
#: The paired difference's interval (module docstring): a report names it beside the ΔAUC.
CV_DIFF_METHOD = "cv: fold DeLong + fold covariance"
#: The fewest folds an interval is given for: its coverage is shown at K = 5 (benchmarks/coverage.py); with fewer,
#: each model trains on at most 3/4 of the cohort and two folds' cross term dominates (K = 2 printed [0, 1]).
MIN_FOLDS = 5
#: Var(mean of K fold AUCs) / (mean within-fold variance / K) under no signal: 1 + (K - 1) x 1 / (K - 1).
FOLD_FACTOR = 2.0
#: The ΔAUC's fold covariance x (K - 1): DIFF_APART x r x v_d, floored so that the whole variance is at least
#: DIFF_FLOOR x (v_a + v_b) (module docstring).
DIFF_APART, DIFF_FLOOR = 0.9, 0.3

#: A fold with 1 patient of a class has no DeLong variance (it needs two placements a class): Hanley & McNeil's
#: at the cross-validated AUC and that fold's counts stands in. A subgroup of 50 patients in 5 folds had such a fold
#: in 17% of data sets, which printed no interval before (benchmarks/coverage.py's "subgroup AUC", docs/statistics.md).
THIN_FOLD = ("no DeLong variance there; Hanley & McNeil's variance at the cross-validated AUC and that fold's "
             "patient counts stands in for it")

#: What a cross-validated AUC estimates (docs/statistics.md, "What each interval estimates").
ESTIMAND = ("the expected AUC of this modelling procedure trained on (K - 1)/K of a cohort of this size from "
            "this population")


def fold_labels(fold: Any, n: int, groups: Any) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """Each record's fold label and patient code, the fold names in order of first appearance, and each record's
    repeat: every distinct label is one fold, and a label "r/name" puts the fold in repeat r."""
    labels = np.asarray(fold).astype(str)
    if labels.shape != (n,):
        raise StatsError(f"length mismatch: fold has {labels.size} values but there are {n} records")
    patients = patients_of(groups, n)
    codes = np.arange(n) if patients is None else patients.codes
    repeat = np.array([lab.split("/", 1)[0] if "/" in lab else "" for lab in labels])
    return labels, codes, list(dict.fromkeys(labels.tolist())), repeat


def fold_parts(fold: Any, n: int, groups: Any) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Record positions of each fold, each record's patient code, and each fold's repeat (fold_labels). Fewer than
    MIN_FOLDS folds in a repeat is an error saying so."""
    labels, codes, names, repeat = fold_labels(fold, n, groups)
    parts = [np.flatnonzero(labels == name) for name in names]
    reps = np.array([repeat[idx[0]] for idx in parts])
    fewest = int(min(np.unique(reps, return_counts=True)[1]))
    if fewest < MIN_FOLDS:
        raise StatsError(f"{fewest} fold(s): a cross-validated interval needs at least {MIN_FOLDS} (its coverage is "
                         f"shown at K = {MIN_FOLDS}); use cv.folds >= {MIN_FOLDS}")
    return parts, codes, reps


def influence(y: np.ndarray, auc: float, v10: np.ndarray, v01: np.ndarray,
              codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each patient's influence on an AUC from its structural components (roc._structural_components), split by
    class: the sums of its positive records' placements less their expectation over M, and of its negative ones'
    over N (Obuchowski 1997's A_i / M and B_i / N). Written as per-patient terms so that a difference of two AUCs,
    even against two labels of the same patients, is a difference of terms (``clustered_variance``)."""
    pos = y == 1
    g = int(codes.max()) + 1
    return (np.bincount(codes[pos], weights=(v10 - auc) / v10.size, minlength=g),
            np.bincount(codes[~pos], weights=(v01 - auc) / v01.size, minlength=g))


def clustered_variance(a: np.ndarray, b: np.ndarray, y: np.ndarray, codes: np.ndarray) -> float:
    """Obuchowski's clustered DeLong variance from the per-patient terms (``influence``; with one record per
    patient, DeLong's): I10/(I10 - 1) sum a^2 + I01/(I01 - 1) sum b^2 + 2 g/(g - 1) sum a b, with I10 (I01) the
    patients holding positive (negative) records of y and g all patients."""
    i10, i01, g = np.unique(codes[y == 1]).size, np.unique(codes[y == 0]).size, a.size
    return float(i10 / (i10 - 1) * (a @ a) + i01 / (i01 - 1) * (b @ b) + 2 * g / (g - 1) * (a @ b))


def patient_influence(y: np.ndarray, s: np.ndarray, codes: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """The AUC of s against y and each patient's influence on it (``influence``)."""
    aucs, v10, v01 = _structural_components(y, s[None, :])
    return (float(aucs[0]), *influence(y, float(aucs[0]), v10[0], v01[0], codes))


def class_patients(y: np.ndarray, codes: np.ndarray, parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Each fold's patients with positive and with negative records (the counts Hanley & McNeil's shape takes)."""
    pos, neg = (np.array([np.unique(codes[idx][y[idx] == c]).size for idx in parts]) for c in (1, 0))
    return pos, neg


def _check_fold(y: np.ndarray, codes: np.ndarray, f: int, name: str, least: int = 2) -> int:
    """The fewest patients of a class in a fold; it needs `least` (2 for an AUC with a DeLong variance, 1 for an AUC
    at all), an error naming the fold otherwise."""
    counts = []
    for cls in (1, 0):
        have = np.unique(codes[y == cls]).size
        if have < least:
            what = "its AUC has no variance" if have else "it has no AUC"
            raise StatsError(f"fold {f} holds {have} patient(s) with {('negative', 'positive')[cls]} records{name}: "
                             f"{what}; stratify the folds or use fewer")
        counts.append(have)
    return min(counts)


def fold_statistics(ys: list[np.ndarray], scores: list[np.ndarray], weights: list[float], parts: list[np.ndarray],
                    codes: np.ndarray, names: tuple[str, ...] = ("",),
                    thin: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per fold: sum_i weights[i] x AUC(ys[i], scores[i]) (an AUC, or a difference of two) and its clustered DeLong
    variance. A fold with fewer than 2 patients of a class is an error naming it; with `thin`, a fold with 1 is
    kept with a NaN variance (DeLong's needs two placements a class: the caller puts another in its place)."""
    stat, var = np.empty(len(parts)), np.empty(len(parts))
    for f, idx in enumerate(parts):
        local = np.unique(codes[idx], return_inverse=True)[1]
        fewest = min(_check_fold(yy[idx], local, f, name, 1 if thin else 2) for yy, name in zip(ys, names))
        total, pos, neg = 0.0, np.zeros(local.max() + 1), np.zeros(local.max() + 1)
        for yy, s, w in zip(ys, scores, weights):
            a, p, q = patient_influence(yy[idx], s[idx], local)
            total, pos, neg = total + w * a, pos + w * p, neg + w * q
        stat[f], var[f] = total, np.nan if fewest < 2 else clustered_variance(pos, neg, ys[0][idx], local)
    return stat, var


def zero_noise(stat: np.ndarray) -> str:
    """Why a fold interval of zero width is not given: it would claim a certainty no finite cohort has."""
    values = ", ".join(f"{v:.3f}" for v in dict.fromkeys(np.round(np.asarray(stat, dtype=float), 3)))
    return (f"every test fold's DeLong variance is 0 (fold values {values}: tied scores, or two models that rank "
            "alike); an interval of zero width would claim certainty")


#: Where every fold's AUC is at its bound (the classes do not overlap: a planted control's usual outcome), DeLong's
#: variance is 0; the AUC's interval is then Hanley & McNeil's (``roc.hm_variance``), and so is a difference's.
AT_BOUND = ("every test fold's AUC is at its bound (the classes do not overlap): DeLong's variance is 0 there, so "
            "the interval is Hanley & McNeil's at the folds' patient counts")
#: A difference of two AUCs both at their bounds in every fold: its interval is Hanley & McNeil's, as AT_BOUND.
AT_BOUND_DIFF = ("every test fold's AUC of both models is at its bound (the classes do not overlap): DeLong's variance "
                 "is 0 there, so the interval is Hanley & McNeil's at the folds' patient counts")
#: metrics.json's `extra.shape` of a difference's interval (``roc.hm_diff_score_interval``).
DIFF_SHAPE = "score interval over the two AUCs, Hanley & McNeil's variance in each"


def at_bound(*aucs: np.ndarray) -> bool:
    """Every fold's AUC of every model is 0 or 1."""
    return all(bool(np.isin(np.asarray(a, dtype=float), (0.0, 1.0)).all()) for a in aucs)


def repeats_variance(stat: np.ndarray, var: np.ndarray, reps: np.ndarray) -> tuple[float, float, float]:
    """Var(mean over all folds) from the folds' variance terms `var` (each repeat's Var = mean term / K), and the
    two parts it rests on: (variance, one repeat's variance, the sample variance of the repeats' means).

    One repeat: the mean term / K. R repeats (K-fold splits of the same patients, each fitted afresh): by the law of
    total variance Var(mean of R) = Var(one repeat) - (1 - 1/R) E[Var(one repeat | the data)], the averaging
    removing the share of the spread that the split and the fits' randomness add. Var(one repeat) is the repeats'
    mean term (each an estimate of it), E[Var | data] the sample variance S^2 of the R repeat means (unbiased given
    the data, whatever the signal), and the result is floored at Var(one repeat) / R, the least it can be. It holds
    wherever one repeat's variance holds: the subtracted term does not depend on the truth. The repeats' terms
    averaged without it (before) were 1.27-1.67 times the oracle width for a ΔAUC over 3 repeats, this 1.14-1.39
    (benchmarks/cv_diff_repeats.py, docs/statistics.md)."""
    names = np.unique(reps)
    one = float(np.mean([var[reps == r].mean() / int((reps == r).sum()) for r in names]))
    if names.size < 2:
        return one, one, 0.0
    between = float(np.var([stat[reps == r].mean() for r in names], ddof=1))
    return max(one - (1.0 - 1.0 / names.size) * between, one / names.size), one, between


def _mean_se(stat: np.ndarray, var: np.ndarray, reps: np.ndarray, bounded: bool = False) -> tuple[float, float]:
    """Mean over all folds and its SE (``repeats_variance``). A zero SE is refused unless `bounded` (every fold's AUC
    at 0 or 1: AT_BOUND)."""
    se, mean = float(np.sqrt(repeats_variance(stat, var, reps)[0])), float(stat.mean())
    if se == 0.0 and not bounded:
        raise StatsError(zero_noise(stat))
    return mean, se


def _interval(stat: np.ndarray, var: np.ndarray, reps: np.ndarray, level: float,
              bounds: tuple[float, float], bounded: bool = False) -> tuple[float, float, float, float]:
    """``_mean_se`` and the normal interval clipped to bounds."""
    mean, se = _mean_se(stat, var, reps, bounded)
    q = float(norm.ppf(0.5 + level / 2.0))
    return mean, se, max(bounds[0], mean - q * se), min(bounds[1], mean + q * se)


def _repeats_extra(stat: np.ndarray, terms: np.ndarray, reps: np.ndarray) -> dict[str, Any]:
    """metrics.json's account of the repeats: how many, one repeat's variance and the repeats' spread."""
    _, one, between = repeats_variance(stat, terms, reps)
    return {"repeats": int(np.unique(reps).size), "var_one_repeat": one, "between_repeats_var": between}


def fold_weights(reps: np.ndarray) -> np.ndarray:
    """Each fold's weight in h(θ), the variance of the fold mean were each fold's AUC Hanley & McNeil's: one
    repeat's variance (``repeats_variance``'s `one`) x FOLD_FACTOR, h's own at the bound (AT_BOUND)."""
    names, of_fold = np.unique(reps, return_inverse=True)
    return FOLD_FACTOR / (names.size * np.bincount(of_fold)[of_fold] ** 2)


def variance_factor(n_folds: int) -> float | None:
    """What a statistic of the pooled out-of-fold scores multiplies its one-model variance by to count training
    variability, by the argument behind FOLD_FACTOR (a pooled statistic is about the mean of the K folds' parts):
    1 for one model's scores (a holdout), FOLD_FACTOR for K >= MIN_FOLDS folds, None for 2 to 4 folds, where no
    interval is given (MIN_FOLDS). spect_polar's held-out LR test: one model's rejected 7.4-12.6% of null data sets,
    with this factor 1.0-2.2% (benchmarks/held_out_lr.py)."""
    if n_folds == 1:
        return 1.0
    return FOLD_FACTOR if n_folds >= MIN_FOLDS else None


def cv_auc_interval(y: Any, score: Any, fold: Any, groups: Any = None, level: float = 0.95) -> Estimate:
    """Cross-validated AUC (mean of the per-fold AUCs) with the fold-DeLong interval (module docstring).

    ``score`` are out-of-fold scores, ``fold`` the fold of each record (labels "repeat/fold" for repeated
    K-fold), ``groups`` the patient ids (the variance counts patients). Counts training variability without
    refitting: what a run's K models already give."""
    level = check_level(level)
    yy = as_binary_labels(y)
    s = as_scores(score, n=yy.size)
    parts, codes, reps = fold_parts(fold, yy.size, groups)
    stat, var = fold_statistics([yy], [s], [1.0], parts, codes, thin=True)
    pos, neg = class_patients(yy, codes, parts)
    thin = np.flatnonzero(np.isnan(var))
    var[thin] = hanley_mcneil(float(stat.mean()), pos[thin], neg[thin])  # THIN_FOLD
    mean, se = _mean_se(stat, FOLD_FACTOR * var, reps, at_bound(stat))
    lo, hi, _ = hm_score_interval(mean, se**2, pos, neg, level, fold_weights(reps))
    warnings = [AT_BOUND] if se == 0.0 else []
    labels = np.asarray(fold).astype(str)
    thin_names = [str(labels[parts[f][0]]) for f in thin]
    if thin_names:
        warnings.append(f"fold(s) {', '.join(thin_names)} hold 1 patient of a class: {THIN_FOLD}")
    return Estimate(metric="auc", estimate=mean, ci_low=lo, ci_high=hi, level=level, method=CV_METHOD,
                    n=int(yy.size), warnings=warnings,
                    extra={"se": se, "n_folds": len(parts), "per_fold": stat.tolist(), "thin_folds": thin_names,
                           "within_fold_var": var.tolist(), "fold_factor": FOLD_FACTOR,
                           "shape": "score interval, Hanley & McNeil's variance in the AUC",
                           "estimand": ESTIMAND, **_repeats_extra(stat, FOLD_FACTOR * var, reps)})


def diff_terms(v_d: np.ndarray, v_a: np.ndarray, v_b: np.ndarray, apart: float = DIFF_APART,
               floor: float = DIFF_FLOOR) -> np.ndarray:
    """Each fold's variance term of a two-model ΔAUC (module docstring): max((1 + apart r) v_d, floor (v_a + v_b)),
    r = v_d / (v_a + v_b); the constants are arguments for benchmarks/cv_diff_weights.py's grid."""
    own = v_a + v_b
    r = np.divide(v_d, own, out=np.zeros_like(v_d), where=own > 0.0)
    return np.maximum((1.0 + apart * r) * v_d, floor * own)


def cv_auc_difference(y: Any, score_a: Any, score_b: Any, fold: Any, groups: Any = None,
                      level: float = 0.95, y_b: Any = None) -> Estimate:
    """Paired cross-validated AUC difference A - B (mean of the per-fold differences), its interval (module
    docstring: the within-fold DeLong variance of the difference plus the fold covariance, ``CV_DIFF_METHOD``) and
    its two-sided p-value (``extra.p_value``, normal).

    ``y_b``: the labels score_b is read against, where it scores another target of the same records (default y):
    one model's AUC for one target minus its AUC for another, on the same patients and folds (echo_cmr's WMA -
    LGE). The within-fold variance is then that of the difference of two AUCs of the same patients, each
    patient's influence on one less its influence on the other, and the interval keeps 2 v_d / K (``CV_METHOD``):
    the fold-covariance weights were calibrated on two models of one target, and this held its level on two
    correlated targets of one deep model (benchmarks/coverage.py's two-target kind: docs/statistics.md)."""
    level = check_level(level)
    yy = as_binary_labels(y)
    a = as_scores(score_a, "score_a", n=yy.size)
    b = as_scores(score_b, "score_b", n=yy.size)
    parts, codes, reps = fold_parts(fold, yy.size, groups)
    yb = yy if y_b is None else as_binary_labels(y_b, "y_b")
    if yb.size != yy.size:
        raise StatsError(f"length mismatch: y_b has {yb.size} values but y has {yy.size}")
    flat = [all(np.ptp(s[i]) == 0.0 for i in parts) for s in (a, b)]
    if all(flat):
        raise StatsError("both scores are the same for every patient within every fold: each AUC is 0.5 in every "
                         "fold and the difference 0 by construction, with nothing to test")
    if any(flat):
        return _against_constant(*((yy, a, 1.0) if flat[1] else (yb, b, -1.0)), fold, groups, level,
                                 (parts, codes, reps), two=y_b is None)
    names = ("",) if y_b is None else (" of y", " of y_b")
    stat, var = fold_statistics([yy, yb], [a, b], [1.0, -1.0], parts, codes, names)
    auc_a, var_a = fold_statistics([yy], [a], [1.0], parts, codes)
    auc_b, var_b = fold_statistics([yb], [b], [1.0], parts, codes)
    # Two targets of one model keep 2 v_d: the constants were calibrated on two models of one target only.
    two_models = y_b is None
    terms = diff_terms(var, var_a, var_b) if two_models else FOLD_FACTOR * var
    mean, se = _mean_se(stat, terms, reps, at_bound(auc_a, auc_b))
    own_a, own_b = (repeats_variance(auc, FOLD_FACTOR * v, reps)[0] for auc, v in ((auc_a, var_a), (auc_b, var_b)))
    lo, hi, z, rho = hm_diff_score_interval(float(auc_a.mean()), float(auc_b.mean()), se**2, own_a, own_b,
                                            class_patients(yy, codes, parts), class_patients(yb, codes, parts),
                                            level, fold_weights(reps))
    p = float(2.0 * norm.sf(abs(z)))
    return Estimate(metric="auc_difference", estimate=mean, ci_low=lo, ci_high=hi, level=level,
                    method=CV_DIFF_METHOD if two_models else CV_METHOD, n=int(yy.size),
                    warnings=[AT_BOUND_DIFF] if se == 0.0 else [],
                    extra={"se": se, "p_value": p, "score_statistic": z, "n_folds": len(parts),
                           "auc_a": float(auc_a.mean()), "auc_b": float(auc_b.mean()), "per_fold": stat.tolist(),
                           "within_fold_var": var.tolist(),
                           "within_fold_var_a": var_a.tolist(), "within_fold_var_b": var_b.tolist(),
                           "correlation": rho, "shape": DIFF_SHAPE,
                           **({"fold_covariance": {"apart": DIFF_APART, "floor": DIFF_FLOOR}} if two_models
                              else {"fold_factor": FOLD_FACTOR}), **_repeats_extra(stat, terms, reps)})


def _against_constant(y: np.ndarray, score: np.ndarray, sign: float, fold: Any, groups: Any, level: float,
                      split: tuple[list[np.ndarray], np.ndarray, np.ndarray], two: bool) -> Estimate:
    """A - B where one of the two scores is the same for every patient within every fold (a fused head that learned
    nothing, a rule every patient of a fold meets): its AUC is 0.5 in every fold, so the difference is the other's
    cross-validated AUC less 0.5 (`sign` +1: B is constant) or 0.5 less it (-1), its interval the other's own
    (``cv_auc_interval``, whose coverage benchmarks/coverage.py measures) shifted so, and its test that AUC's score
    test at 0.5. The paired variance had nothing to read there: every fold's DeLong variance of the difference was
    0 where the other separated its classes. `split`: the folds' parts, patient codes and repeats (``fold_parts``).
    The holdout's twin: ``roc._against_constant``."""
    auc = cv_auc_interval(y, score, fold, groups, level)
    parts, codes, reps = split
    return constant_difference(auc, class_patients(y, codes, parts), fold_weights(reps), sign, CV_METHOD,
                               "{constant}'s score is the same for every patient within every fold: its AUC is 0.5 "
                               "in each, so the difference's interval is {other}'s own cross-validated AUC interval "
                               "less 0.5" + (" (not the two models' fold covariance)" if two else ""))


def constant_difference(auc: Estimate, patients: tuple[np.ndarray, np.ndarray], weights: np.ndarray, sign: float,
                        method: str, note: str) -> Estimate:
    """A - B from the other model's AUC row `auc` where one score is constant in every fold (its AUC 0.5 in each):
    the estimate and interval shifted by 0.5 (`sign` +1: B is constant, -1: A), the test that AUC's score test at 0.5
    (Hanley & McNeil's shape at each fold's `patients` per class, `weights`), `note` the warning, with {constant}
    and {other} named. The K-fold and nested rows' shared end (``_against_constant`` here and in nested_cv)."""
    var_at, _ = hm_variance(auc.estimate, float(auc.extra["se"]) ** 2, *patients, weights)
    z = sign * (auc.estimate - 0.5) / float(np.sqrt(var_at(0.5)))
    assert auc.ci_low is not None and auc.ci_high is not None  # both callers' AUC rows always carry one, or raise
    lo, hi = sorted((sign * (auc.ci_low - 0.5), sign * (auc.ci_high - 0.5)))
    constant, other = ("B", "A") if sign > 0 else ("A", "B")
    return Estimate(metric="auc_difference", estimate=sign * (auc.estimate - 0.5), ci_low=lo, ci_high=hi,
                    level=auc.level, method=method, n=auc.n,
                    warnings=[note.format(constant=constant, other=other)] + auc.warnings,
                    extra={**auc.extra, "p_value": float(2.0 * norm.sf(abs(z))), "score_statistic": z,
                           "constant": constant, "auc_a" if sign > 0 else "auc_b": auc.estimate,
                           "auc_b" if sign > 0 else "auc_a": 0.5,
                           "per_fold": (sign * (np.asarray(auc.extra["per_fold"]) - 0.5)).tolist()})
