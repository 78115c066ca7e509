"""The coverage benchmark's two-target kind (issue 53): one deep model's AUC for one target less its AUC for another
on the same patients and folds, as echo_cmr's fused WMA - LGE is printed (`cardio_stats.cv_auc_difference(...,
y_b=)`, the fold-DeLong variance of the difference x 2 over K, inverted as a score interval).

Data: n patients, each with two labels, a (WMA) and b (LGE), prevalence 0.4 each and correlated as the two findings
are: b copies a with probability PHI, else is drawn afresh (a correlation of PHI). Half the data sets have one record
per patient, half 1-3; five Gaussian features a record (patient part N(0, 0.6), record part N(0, 0.4)), shifted by
a * delta_a + b * delta_b. "null": no shift, both AUCs 0.5. "signal": delta_a 0.6 SD on features 0 and 1, delta_b
0.6 SD on feature 2 (a ranks better: a true difference of about +0.05 at 300 patients). "equal": delta_a on features
0 and 1, delta_b on features 2 and 3, the same size: the two AUCs are equal in expectation, the false-positive case
with signal.
The model is the headline's deep learner (`headline.sgd`: 3 epochs of minibatch SGD from a random start) with two
logistic heads on all five features, one a target, sharing their random start and batch order as one network's
heads do. cardio's patient-grouped 5-fold split is stratified by a only, as a run's is.

Truth. Given a, a record's features are a mixture over b (the labels' correlation), so a linear score w has the
population AUC for a sum_{j,l} P(b = j | a = 1) P(b = l | a = 0) Phi(w.(delta_a + (j - l) delta_b) / (sqrt(2) |w|)),
and for b the same with the roles swapped. The estimand is the procedure's expected difference at this cohort size:
the mean over data sets of the fold models' true AUC for a less their true AUC for b.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
from scipy.stats import norm

import cardio_stats as cs
from cardio.data import make_folds

from . import Draws, estimate_of, is_clustered, kind
from .headline import PREVALENCE, RHO, P, sgd

PHI = 0.5  # the labels' correlation: b copies a with this probability
SHIFT = 0.6
SETTINGS = ("null", "signal", "equal")
#: Each setting's class shifts (delta_a, delta_b) by feature, and where its data sets' seeds start.
DELTAS = {"null": (np.zeros(P), np.zeros(P)),
          "signal": (np.r_[SHIFT, SHIFT, 0, 0, 0], np.r_[0, 0, SHIFT, 0, 0]),
          "equal": (np.r_[SHIFT, SHIFT, 0, 0, 0], np.r_[0, 0, SHIFT, SHIFT, 0])}
OFFSETS = {"null": 0, "signal": 5000, "equal": 2500}


def labels(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Two labels of n patients, each with prevalence PREVALENCE, b a copy of a with probability PHI."""
    a = np.zeros(n, dtype=int)
    a[rng.permutation(n)[:round(PREVALENCE * n)]] = 1
    b = np.where(rng.random(n) < PHI, a, (rng.random(n) < PREVALENCE).astype(int))
    return a, b


def true_aucs(w: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Population AUC for the label whose shift is `first` of each linear score (rows of w, intercept first), the
    other label (shift `second`) a copy of it with probability PHI, else independent with prevalence PREVALENCE."""
    v = w[:, 1:]
    norms = np.sqrt((v * v).sum(axis=1))
    safe = np.where(norms > 0, norms, 1.0)
    other_if = {1: PHI + (1 - PHI) * PREVALENCE, 0: (1 - PHI) * PREVALENCE}  # P(other = 1 | this label)
    total = np.zeros(len(w))
    for j in (0, 1):
        for m in (0, 1):
            weight = (other_if[1] if j else 1 - other_if[1]) * (other_if[0] if m else 1 - other_if[0])
            total += weight * norm.cdf(v @ (first + (j - m) * second) / (np.sqrt(2) * safe))
    return np.where(norms > 0, total, 0.5)


def draw(rng: np.random.Generator, n: int, setting: str, clustered: bool
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Records (features, label a, label b, patient ids) of n patients under `setting` (module docstring): 1-3
    records a patient where `clustered`."""
    delta_a, delta_b = DELTAS[setting]
    a, b = labels(rng, n)
    k = rng.integers(1, 4, size=n) if clustered else np.ones(n, dtype=int)
    ids = np.repeat(np.arange(n), k)
    u = rng.normal(scale=np.sqrt(RHO), size=(n, P)) + a[:, None] * delta_a + b[:, None] * delta_b
    return u[ids] + rng.normal(scale=np.sqrt(1 - RHO), size=(ids.size, P)), a[ids], b[ids], ids


def one_set(n: int, setting: str, s: int) -> tuple[cs.Estimate, float, float]:
    """One data set through a deep run's path: the Estimate of a - b, its truth, and the seconds cardio took."""
    rng = np.random.default_rng(s)
    delta_a, delta_b = DELTAS[setting]
    x, ya, yb, ids = draw(rng, n, setting, is_clustered(s))
    table = pd.DataFrame({"patient_id": ids.astype(str), "record_id": np.arange(ids.size).astype(str), "label": ya})
    folds = make_folds(table, {"method": "kfold", "folds": 5, "repeats": 1, "stratify": True}, "label", s)
    mask = np.zeros((len(folds), ids.size))
    fold = np.empty(ids.size, dtype=object)
    for i, f in enumerate(folds):
        mask[i, f.train] = 1.0
        fold[f.test] = f.name
    state = rng.bit_generator.state  # both heads from one start and one batch order, as one network's
    heads = []
    for y in (ya, yb):
        rng.bit_generator.state = state
        heads.append(sgd(rng, x, y, mask))
    scores = [np.empty(ids.size), np.empty(ids.size)]
    for i, f in enumerate(folds):
        for score, w in zip(scores, heads):
            score[f.test] = w[i, 0] + x[f.test] @ w[i, 1:]
    truth = float(true_aucs(heads[0], delta_a, delta_b).mean() - true_aucs(heads[1], delta_b, delta_a).mean())
    t0 = time.perf_counter()
    d = cs.cv_auc_difference(ya, scores[0], scores[1], fold.astype(str), groups=ids, y_b=yb)
    return d, truth, time.perf_counter() - t0


@kind("ΔAUC, one deep model's two targets (echo_cmr's WMA - LGE)", SETTINGS)
def diff_two_targets(n: int, setting: str, n_sets: int, seed: int) -> Draws:
    """Each set read against its own design's truth (`Draws.design`: odd seeds have 1-3 records a patient)."""
    rows, truths, designs, seconds, without = [], [], [], 0.0, 0
    start = seed * 10**7 + n * 10**4 + OFFSETS[setting] + 9 * 10**6  # apart from the headline kinds' sets
    method = ""
    for s in range(start, start + n_sets):
        try:
            d, truth, took = one_set(n, setting, s)
        except cs.StatsError:  # a fold without both classes of b: no per-fold difference (the run says why)
            without += 1
            continue
        rows.append(estimate_of(d))
        truths.append(truth)
        designs.append(is_clustered(s))
        seconds += took
        method = d.method
    est, lo, hi = np.array(rows, dtype=float).reshape(-1, 3).T
    notes = [method] + ([f"{without} sets without an estimate: a fold lacked a class of b"] if without else [])
    return Draws(est, lo, hi, truth=float(np.mean(truths)), null=0.0, seconds=seconds, notes=notes,
                 design=np.array(designs), truths=np.array(truths))
