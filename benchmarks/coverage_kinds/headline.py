"""The headline intervals: the cross-validated AUC and the paired ΔAUC, for a pipeline cheap to refit (nested CV:
`cardio_stats.cross_validated_auc`, `cross_validated_auc_difference`) and for a deep one, which has only its K fold
models (`cardio_stats.cv_auc_interval`, `cv_auc_difference` on the out-of-fold scores of cardio's split, as a deep
plugin's run calls them).

Data (as benchmarks/cv_coverage.py): n patients, prevalence 0.4, half the data sets with 1-3 records a patient
(within-patient correlation 0.6); five Gaussian features; "signal": the classes differ by 0.6 SD on features 0 and 1;
"strong" and "separating" (the AUC kinds only): by 1.9 and 2.4 SD, A's AUC about 0.96 and 0.99, where many folds'
classes do not overlap.
Model A reads all five features, model B features 1-3 (B is A's comparator: a true ΔAUC of about +0.056 at 300
patients). The refitted pipeline is a ridge logistic regression (Newton, batched over every fit of a data set in
NumPy: hundreds of refits per data set). The deep one is a logistic model fitted by 3 epochs of minibatch SGD from a
random start: its fold fits are noisy, as a network's are. Truth: a fitted linear score w has the population AUC
Phi(w.delta / sqrt(2 w.w)); the estimand is the procedure's expected AUC at a training fold's size, the mean true AUC
of every fold model of every data set of the cell (docs/statistics.md).

The refits' splits are cardio's own (`cardio.study.refits.nested_plan`, handed to the statistics service).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from functools import partial

import numpy as np
from scipy.stats import norm

import cardio_stats as cs
from cardio.study.refits import nested_plan
from cardio_stats import NestedPlan

from . import Draws, estimate_of, is_clustered, kind

P, RHO, SHIFT, PREVALENCE = 5, 0.6, 0.6, 0.4
#: Each setting's class shift on features 0 and 1, and where its data sets' seeds start (within a size's 10^4).
SHIFTS = {"null": 0.0, "signal": SHIFT, "strong": 1.9, "separating": 2.4}
OFFSETS = {"null": 0, "strong": 2500, "signal": 5000, "separating": 7500}
NEAR_SEPARATION = ("null", "signal", "strong", "separating")
COLUMNS = {"A": np.arange(P), "B": np.array([1, 2, 3])}
#: A pair the ΔAUC interval's weights were not chosen on: models on disjoint features, each with one of the two
#: shifted ones, so that their AUCs are equal under signal too (cardio_stats.cv_auc's docstring).
DISJOINT = {"A": np.array([0, 2, 3]), "B": np.array([1, 4])}
_CACHE: dict[tuple, Draws] = {}  # the ΔAUC draws made beside the AUC draws of the same data sets


def draw(rng: np.random.Generator, n: int, clustered: bool, signal: bool, shift: float = SHIFT,
         shifts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Records (x, y, patient ids) of n patients and the class shift delta under signal: `shift` SD on features 0
    and 1 of P, or the vector `shifts` (one entry a feature)."""
    planted = np.r_[shift, shift, np.zeros(P - 2)] if shifts is None else np.asarray(shifts, dtype=float)
    p = planted.size
    y_pat = np.zeros(n, dtype=int)
    y_pat[rng.permutation(n)[:round(PREVALENCE * n)]] = 1
    k = rng.integers(1, 4, size=n) if clustered else np.ones(n, dtype=int)
    ids = np.repeat(np.arange(n), k)
    delta = planted if signal else np.zeros(p)
    u = rng.normal(scale=np.sqrt(RHO), size=(n, p)) + y_pat[:, None] * delta
    return u[ids] + rng.normal(scale=np.sqrt(1 - RHO), size=(ids.size, p)), y_pat[ids], ids, delta


def true_auc(w: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Population AUC of each linear score (rows of w, intercept first)."""
    v = w[:, 1:]
    norms = np.sqrt((v * v).sum(axis=1))
    safe = np.where(norms > 0, norms, 1.0)
    return np.where(norms > 0, norm.cdf(v @ delta / (np.sqrt(2) * safe)), 0.5)


def newton(x: np.ndarray, y: np.ndarray, weights: np.ndarray, lam: float = 1.0) -> np.ndarray:
    """Ridge logistic regressions (intercept unpenalised), one per row of 0/1 record weights, by batched Newton
    steps. Hand-written: scikit-learn fits one model a call, and a data set here needs hundreds."""
    xa = np.c_[np.ones(len(x)), x]
    pen = np.diag(np.r_[0.0, np.full(x.shape[1], lam)])
    w = np.zeros((weights.shape[0], xa.shape[1]))
    for _ in range(30):
        p = 1.0 / (1.0 + np.exp(-(w @ xa.T)))
        grad = ((p - y) * weights) @ xa + w @ pen
        hess = np.einsum("fn,ni,nj->fij", weights * p * (1 - p), xa, xa) + pen
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def sgd(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, weights: np.ndarray, epochs: int = 3,
        lr: float = 0.5, lam: float = 1.0) -> np.ndarray:
    """The 'deep' fit: minibatch SGD from a random start, a few epochs, batched over rows of record weights."""
    xa = np.c_[np.ones(len(x)), x]
    w = rng.normal(scale=0.5, size=(weights.shape[0], xa.shape[1]))
    for _ in range(epochs):
        for batch in np.array_split(rng.permutation(len(x)), max(1, len(x) // 16)):
            p = 1.0 / (1.0 + np.exp(-(w @ xa[batch].T)))
            wb = weights[:, batch]
            grad = ((p - y[batch]) * wb) @ xa[batch] / np.maximum(wb.sum(axis=1, keepdims=True), 1) + lam * w / len(x)
            w -= lr * grad
    return w


Interval = tuple[float, float | None, float | None]  # (estimate, low, high)
Fit = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (x, y, rows of record weights) -> weights a row
Run = tuple[Interval, Interval, float, float, float, str, str]  # AUC of A, ΔAUC A - B, truths, seconds, methods


class Fitted:
    """A refit callable over precomputed fits: `cardio_stats` calls it per fit (train, test); the fits themselves
    were made at once (batched). A fit not precomputed (cardio's code before nested CV) is made on demand."""

    def __init__(self, x: np.ndarray, y: np.ndarray, fit: Callable[[np.ndarray], np.ndarray]):
        self.x, self.y, self.fit = x, y, fit
        self.memo: dict[bytes, np.ndarray] = {}
        self.weights: list[np.ndarray] = []

    def precompute(self, trains: list[np.ndarray]) -> None:
        mask = np.zeros((len(trains), self.y.size))
        for i, t in enumerate(trains):
            mask[i, t] = 1.0
        for t, w in zip(trains, self.fit(mask)):
            self.memo[t.tobytes()] = w

    def __call__(self, train: np.ndarray, test: np.ndarray) -> np.ndarray:
        key = train.tobytes()
        if key not in self.memo:
            self.precompute([train])
        w = self.memo[key]
        if train.size > 0.7 * self.y.size:  # an outer fit ((K - 1)/K of the records), not an inner pair's
            self.weights.append(w)
        return w[0] + self.x[test] @ w[1:]


def _run_folds(plan: NestedPlan, model: Fitted) -> tuple[np.ndarray, np.ndarray]:
    """The out-of-fold scores of the plan's first repeat (the run's own folds) and each record's fold; the truth's
    list of outer fits is left as nested CV made it."""
    score, fold, fits = np.empty(model.y.size), plan.fold[0], len(model.weights)
    for k in np.unique(fold):
        test = np.flatnonzero(fold == k)
        score[test] = model(np.flatnonzero(fold != k), test)
    del model.weights[fits:]
    return score, fold


def refitted_estimates(n: int, signal: bool, s: int, columns: dict[str, np.ndarray] = COLUMNS, shift: float = SHIFT,
                       shifts: np.ndarray | None = None, fit: Fit = newton
                       ) -> tuple[cs.Estimate, cs.Estimate, float, float, float]:
    """One data set through cardio's nested CV: the Estimates of A's AUC and of A - B, their truths, the cardio
    seconds (the batched fits are the pipeline's, not cardio's). `shifts` and `fit` as refitted_data's."""
    t0 = time.perf_counter()
    y, ids, models, plan, delta, outside = refitted_data(n, signal, s, columns, shift, shifts, fit)
    t0 += outside
    try:
        a = cs.cross_validated_auc(y, ids, models["A"], plan)
    except cs.StatsError:  # every outer fold separated: the run's folds' interval, as cardio's evaluation takes
        a = cs.cv_auc_interval(y, *_run_folds(plan, models["A"]), groups=ids)
    try:
        d = cs.cross_validated_auc_difference(y, ids, models["A"], models["B"], plan)
    except cs.StatsError:  # both models separated every outer fold: so too
        (sa, fold), (sb, _) = _run_folds(plan, models["A"]), _run_folds(plan, models["B"])
        d = cs.cv_auc_difference(y, sa, sb, fold, groups=ids)
    seconds = time.perf_counter() - t0
    ta, td = truths(models, columns, delta)
    return a, d, ta, td, seconds


def refitted_data(n: int, signal: bool, s: int, columns: dict[str, np.ndarray] = COLUMNS, shift: float = SHIFT,
                  shifts: np.ndarray | None = None, fit: Fit = newton
                  ) -> tuple[np.ndarray, np.ndarray, dict[str, Fitted], NestedPlan, np.ndarray, float]:
    """One data set's records (labels, patient ids), its models A and B with every fit of cardio's nested plan
    made, the plan, the class shift delta, and the seconds spent outside cardio (drawing the data, the fits).
    `shifts`: draw's class shift per feature under signal; `fit(x, y, weights)`: the pipeline (newton's ridge
    logistic regression by default)."""
    start = time.perf_counter()
    rng = np.random.default_rng(s)
    x, y, ids, delta = draw(rng, n, is_clustered(s), signal, shift, shifts)
    models = {m: Fitted(x[:, c], y, partial(fit, x[:, c], y)) for m, c in columns.items()}
    drawn = time.perf_counter()
    plan = nested_plan(y, ids, seed=s)  # cardio's
    trains = [plan.split(f)[0] for f in plan.fits]
    planned = time.perf_counter()
    for m in models.values():
        m.precompute(trains)
    return y, ids, models, plan, delta, (drawn - start) + (time.perf_counter() - planned)


def truths(models: dict[str, Fitted], columns: dict[str, np.ndarray], delta: np.ndarray) -> tuple[float, float]:
    """The true AUC of A and ΔAUC A - B: the mean population AUC of the outer fits cardio's nested CV called."""
    ta = true_auc(np.array(models["A"].weights), delta[columns["A"]]).mean()
    tb = true_auc(np.array(models["B"].weights), delta[columns["B"]]).mean()
    return float(ta), float(ta - tb)


def _refitted(n: int, signal: bool, s: int, columns: dict[str, np.ndarray] = COLUMNS, shift: float = SHIFT,
              shifts: np.ndarray | None = None, fit: Fit = newton) -> Run:
    """One data set through cardio's nested CV: the AUC of A and ΔAUC A - B, their truths, the cardio seconds, the
    AUC's method."""
    a, d, ta, td, seconds = refitted_estimates(n, signal, s, columns, shift, shifts, fit)
    return (a.estimate, a.ci_low, a.ci_high), (d.estimate, d.ci_low, d.ci_high), ta, td, seconds, a.method, d.method


def _deep(n: int, signal: bool, s: int, columns: dict[str, np.ndarray] = COLUMNS, repeats: int = 1,
          shift: float = SHIFT) -> Run:
    """One data set through a deep run's path: SGD fits on cardio's split (`repeats` K-fold splits, each fitted
    afresh: cv.repeats), the interval of the out-of-fold scores of every repeat (fold labels "repeat/fold")."""
    import pandas as pd

    from cardio.data import make_folds

    rng = np.random.default_rng(s)
    x, y, ids, delta = draw(rng, n, is_clustered(s), signal, shift)
    table = pd.DataFrame({"patient_id": ids.astype(str), "record_id": np.arange(y.size).astype(str), "label": y})
    split = make_folds(table, {"method": "kfold", "folds": 5, "repeats": repeats, "stratify": True}, "label", s)
    label = np.empty((repeats, y.size), dtype=object)
    scores = {m: np.empty((repeats, y.size)) for m in columns}
    weights: dict[str, list[np.ndarray]] = {m: [] for m in columns}
    for r in range(repeats):
        folds = [f for f in split if f.repeat == r]
        mask = np.zeros((len(folds), y.size))
        for i, f in enumerate(folds):
            mask[i, f.train] = 1.0
            label[r, f.test] = f"{r}/{f.name}" if repeats > 1 else f.name
        for m, c in columns.items():
            w = sgd(rng, x[:, c], y, mask)
            for i, f in enumerate(folds):
                scores[m][r, f.test] = w[i, 0] + x[f.test][:, c] @ w[i, 1:]
            weights[m].append(w)
    truth = {m: true_auc(np.concatenate(weights[m]), delta[c]).mean() for m, c in columns.items()}
    yy, groups, fold = np.tile(y, repeats), np.tile(ids, repeats), label.ravel().astype(str)
    t0 = time.perf_counter()
    a = cs.cv_auc_interval(yy, scores["A"].ravel(), fold, groups=groups)
    d = cs.cv_auc_difference(yy, scores["A"].ravel(), scores["B"].ravel(), fold, groups=groups)
    seconds = time.perf_counter() - t0
    return (a.estimate, a.ci_low, a.ci_high), (d.estimate, d.ci_low, d.ci_high), truth["A"], \
        truth["A"] - truth["B"], seconds, a.method, d.method


def _both(name: str, one: Callable[..., Run], n: int, setting: str, n_sets: int, seed: int,
          offsets: dict[str, int] = OFFSETS) -> Draws:
    """Run `one` on n_sets data sets (seeds from the setting's offset); return the AUC draws, keep the ΔAUC draws of
    the same sets for its kind. Each set is read against its design's truth (odd seeds draw 1-3 records a patient,
    even ones one): the fits see more records there (at 100 planted patients the deep kind's true AUC is 0.009
    higher); on seed 16's sets no cell's misses moved by more than 0.5 point, nor its width ratio by 0.01
    (docs/statistics.md, "A cell that mixes designs")."""
    start = seed * 10**7 + n * 10**4 + offsets[setting]
    seeds = range(start, start + n_sets)
    runs = [one(n, setting != "null", s, shift=SHIFTS.get(setting, SHIFT)) for s in seeds]
    auc, diff = (np.array([r[i] for r in runs], dtype=float) for i in (0, 1))
    truth_auc, truth_diff = (np.array([r[i] for r in runs], dtype=float) for i in (2, 3))
    design = np.array([is_clustered(s) for s in seeds])
    seconds = float(sum(r[4] for r in runs))
    method = runs[0][5]
    _CACHE[(f"ΔAUC, {name}", n, setting, n_sets, seed)] = Draws(
        diff[:, 0], diff[:, 1], diff[:, 2], truth=float(truth_diff.mean()), null=0.0, seconds=seconds,
        notes=[runs[0][6]], design=design, truths=truth_diff)
    return Draws(auc[:, 0], auc[:, 1], auc[:, 2], truth=float(truth_auc.mean()), null=0.5, seconds=seconds,
                 notes=[method], design=design, truths=truth_auc)


def _diff(name: str, one: Callable[..., Run], n: int, setting: str, n_sets: int, seed: int,
          offsets: dict[str, int] = OFFSETS) -> Draws:
    key = (f"ΔAUC, {name}", n, setting, n_sets, seed)
    if key not in _CACHE:
        _both(name, one, n, setting, n_sets, seed, offsets)
    return _CACHE.pop(key)


@kind("AUC, one fixed model (holdout, external)", NEAR_SEPARATION)
def auc_fixed(n: int, setting: str, n_sets: int, seed: int) -> Draws:
    """One fixed model's AUC on a cohort of n patients (a holdout or `cardio predict`): the score x0 + x1 is not
    fitted, so its population AUC is exact, Phi(shift); the interval is the one a one-fold run's row carries
    (DeLong's score interval, clustered: `cardio_stats.delong_ci(..., interval="score")`)."""
    rows, seconds = [], 0.0
    start = seed * 10**7 + n * 10**4 + OFFSETS[setting] + 1000  # apart from the refitted and deep kinds' sets
    for s in range(start, start + n_sets):
        x, y, ids, _ = draw(np.random.default_rng(s), n, is_clustered(s), setting != "null", SHIFTS[setting])
        t0 = time.perf_counter()
        e = cs.delong_ci(y, x[:, 0] + x[:, 1], groups=ids, interval="score")
        seconds += time.perf_counter() - t0
        rows.append(estimate_of(e))
    est, lo, hi = np.array(rows).T
    return Draws(est, lo, hi, truth=float(norm.cdf(SHIFTS[setting])), null=0.5, seconds=seconds,
                 notes=[e.method])


#: Pairs of fixed scores (neither fitted): "nested" A = x0 + x1 against B = x1, the holdout kind's; "disjoint" x0
#: against x1, equal AUCs (benchmarks/holdout_diff_floor.py). "constant": x0 + x1 against a score that is the same
#: for every patient (a rule every test patient meets), the pair whose DeLong variance is 0 where A separates.
FIXED_PAIRS = ("nested", "disjoint")


def fixed_pair_sets(n: int, setting: str, n_sets: int, seed: int, pair: str = "nested"
                    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Each data set's labels, patient ids and the pair's two scores (A, B)."""
    start = seed * 10**7 + n * 10**4 + OFFSETS[setting] + 1500  # apart from the other kinds' sets
    for s in range(start, start + n_sets):
        x, y, ids, _ = draw(np.random.default_rng(s), n, is_clustered(s), setting != "null", SHIFTS[setting])
        b = {"nested": x[:, 1], "disjoint": x[:, 1], "constant": np.zeros(y.size)}[pair]
        yield y, ids, (x[:, 0] if pair == "disjoint" else x[:, 0] + x[:, 1]), b


def fixed_pair_truth(setting: str, pair: str = "nested") -> float:
    """The pair's population ΔAUC: x0 + x1 has Phi(shift), x0 and x1 each Phi(shift / sqrt(2)), a constant 0.5."""
    shift = SHIFTS[setting]
    return {"nested": float(norm.cdf(shift) - norm.cdf(shift / np.sqrt(2))), "disjoint": 0.0,
            "constant": float(norm.cdf(shift)) - 0.5}[pair]


@kind("ΔAUC, two fixed models (holdout, external)", NEAR_SEPARATION)
def diff_fixed(n: int, setting: str, n_sets: int, seed: int) -> Draws:
    """Two fixed models' paired ΔAUC on a cohort of n patients (a holdout run's test row, `cardio predict`'s fold
    ensemble against the final model): the "nested" fixed pair, so the truth is exact, Phi(shift) - Phi(shift /
    sqrt(2)) (+0.061 under signal); the interval is the one such a row carries, the paired DeLong test's score
    interval (`cardio_stats.delong_test(..., interval="score")`, clustered, each AUC's variance kept at least
    DIFF_SCORE_FLOOR times Hanley & McNeil's; pROC's normal interval before)."""
    rows, seconds = [], 0.0
    for y, ids, a, b in fixed_pair_sets(n, setting, n_sets, seed):
        t0 = time.perf_counter()
        t = cs.delong_test(y, a, b, groups=ids, interval="score")
        seconds += time.perf_counter() - t0
        rows.append((t.extra["diff"], t.extra["diff_ci_low"], t.extra["diff_ci_high"]))
    est, lo, hi = np.array(rows).T
    return Draws(est, lo, hi, truth=fixed_pair_truth(setting), null=0.0, seconds=seconds, notes=[t.method])


@kind("ΔAUC, a fixed model against a constant score (holdout)", NEAR_SEPARATION)
def diff_constant(n: int, setting: str, n_sets: int, seed: int) -> Draws:
    """A fixed model x0 + x1 against a score that is the same for every patient (a rule every test patient meets,
    AUC 0.5), on a holdout's cohort of n patients: the truth is Phi(shift) - 0.5. Where x0 + x1 separates the
    classes, DeLong's variance of the difference is 0; the paired test's score interval (delong_test(...,
    interval="score")) has a variance there, the constant's Hanley & McNeil floor ("not tested" before)."""
    rows, seconds, zero = [], 0.0, 0
    for y, ids, a, b in fixed_pair_sets(n, setting, n_sets, seed, "constant"):
        t0 = time.perf_counter()
        t = cs.delong_test(y, a, b, groups=ids, interval="score")
        seconds += time.perf_counter() - t0
        zero += t.extra["se_diff"] == 0.0
        rows.append((t.extra["diff"], t.extra["diff_ci_low"], t.extra["diff_ci_high"]))
    est, lo, hi = np.array(rows).T
    return Draws(est, lo, hi, truth=fixed_pair_truth(setting, "constant"), null=0.0, seconds=seconds,
                 notes=[f"{t.method}; DeLong's variance 0 in {zero} sets"])


@kind("AUC, refitted pipeline", NEAR_SEPARATION)
def auc_refitted(n: int, setting: str, n_sets: int, seed: int) -> Draws:
    return _both("refitted", _refitted, n, setting, n_sets, seed)


@kind("ΔAUC, refitted pipelines", NEAR_SEPARATION)
def diff_refitted(n: int, setting: str, n_sets: int, seed: int) -> Draws:
    return _diff("refitted", _refitted, n, setting, n_sets, seed)


@kind("ΔAUC, refitted pipelines on disjoint features")
def diff_refitted_disjoint(n: int, setting: str, n_sets: int, seed: int) -> Draws:
    """Two informative models of equal AUC under signal, neither nested in the other: the null a user's comparison
    usually has (under "null" both read noise)."""
    return _diff("refitted, disjoint", partial(_refitted, columns=DISJOINT), n, setting, n_sets, seed)


@kind("AUC, deep pipeline", NEAR_SEPARATION)
def auc_deep(n: int, setting: str, n_sets: int, seed: int) -> Draws:
    return _both("deep", _deep, n, setting, n_sets, seed)


@kind("ΔAUC, deep pipelines", NEAR_SEPARATION)
def diff_deep(n: int, setting: str, n_sets: int, seed: int) -> Draws:
    return _diff("deep", _deep, n, setting, n_sets, seed)


@kind("AUC, deep pipeline, 3 repeats")
def auc_deep_repeated(n: int, setting: str, n_sets: int, seed: int) -> Draws:
    return _both("deep, 3 repeats", partial(_deep, repeats=3), n, setting, n_sets, seed)


@kind("ΔAUC, deep pipelines, 3 repeats")
def diff_deep_repeated(n: int, setting: str, n_sets: int, seed: int) -> Draws:
    return _diff("deep, 3 repeats", partial(_deep, repeats=3), n, setting, n_sets, seed)


@kind("ΔAUC, deep pipelines on disjoint features")
def diff_deep_disjoint(n: int, setting: str, n_sets: int, seed: int) -> Draws:
    return _diff("deep, disjoint", partial(_deep, columns=DISJOINT), n, setting, n_sets, seed)
