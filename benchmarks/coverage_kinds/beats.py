"""The coverage benchmark's beat-classification kinds (issue 53): the record-level intervals ecg_transfer prints for
its pretraining's DS1 validation records (4 by default) and benchmarks/aami_interpatient.py for DS2's 22 records
(`cardio_ecg_transfer.beat_metrics.record_intervals`).

Data: a data set is `n_patients` records (here the sizes are records: `--sizes 4 10 22`), each of 50-400 beats, of
the classes N, S and V in shares drawn per record (Dirichlet with means 0.85, 0.05, 0.10), each class's beats right
with the record's own probability, drawn per record and class from a Beta distribution: N mean 0.97, S 0.60, V 0.90.
A wrong N beat is called V, a wrong S or V beat N. "null": records alike (Beta with a + b = 300 for N, 50 for S,
100 for V); "signal": records that differ (a + b = 31, 5, 10: a record whose V beats are mostly missed is rare and
drives the pooled value, as MIT-BIH's records do). The record is the unit; shares and accuracies are drawn
independently, so the population values are exact: a class's sensitivity is the mean of its Beta, the balanced
accuracy their mean over the classes, the accuracy the share-weighted mean.
BEFORE: the percentile bootstrap over records these rows had (cardio_stats.bootstrap_metric over per-record
confusion matrices, 500 resamples; a report took 2,000), and the Wilson interval that replaced it at 67c03d4 (the
plain record-clustered variance, t with records - 1 df) before the bias-reduced variance and Bell-McCaffrey df.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.stats import norm
from scipy.stats import t as t_dist
from statsmodels.stats.proportion import proportion_confint

from cardio_ecg_transfer import aami
from cardio_ecg_transfer.beat_metrics import record_intervals, record_ratios
from cardio_stats import bootstrap_metric
from cardio_stats.clustered import _effective_n

from . import Kind, draws, estimate_of, kind

SHARES = np.array([0.85, 0.05, 0.10])  # N, S, V
MEANS = np.array([0.97, 0.60, 0.90])  # each class's mean probability of a right call
SPREAD = {"null": np.array([300.0, 50.0, 100.0]), "signal": np.array([31.0, 5.0, 10.0])}  # Beta's a + b
CODES = [aami.AAMI_CLASSES.index(c) for c in ("N", "S", "V")]
WRONG = [aami.AAMI_CLASSES.index(c) for c in ("V", "N", "N")]  # what a wrong call of each class says
RESAMPLES = 500
METRICS = {"accuracy": "accuracy", "balanced accuracy": "balanced_accuracy", "V sensitivity": "se_V"}


@dataclass
class Set:
    """One data set's record-level rows and the population values."""

    rows: dict
    cms: np.ndarray  # per-record confusion matrices (records, classes, classes)
    truth: dict[str, float]


def truths() -> dict[str, float]:
    return {"accuracy": float(SHARES @ MEANS), "balanced_accuracy": float(MEANS.mean()), "se_V": float(MEANS[2])}


def draw(rng: np.random.Generator, records: int, setting: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true class, call, record) of every beat."""
    y, pred, rec = [], [], []
    for r in range(records):
        n = int(rng.integers(50, 401))
        counts = rng.multinomial(n, rng.dirichlet(SHARES * 40))
        right = rng.beta(MEANS * SPREAD[setting], (1 - MEANS) * SPREAD[setting])
        for c, k in enumerate(counts):
            ok = rng.random(k) < right[c]
            y.append(np.full(k, CODES[c]))
            pred.append(np.where(ok, CODES[c], WRONG[c]))
            rec.append(np.full(k, r))
    return np.concatenate(y), np.concatenate(pred), np.concatenate(rec)


@lru_cache(maxsize=8)
def cell(records: int, setting: str, n_sets: int, seed: int) -> tuple[Set, ...]:
    out = []
    start = seed * 10**7 + records * 10**4 + 5000 * (setting == "signal") + 7 * 10**6
    config = {"stats": {"level": 0.95}}
    for s in range(start, start + n_sets):
        y, pred, rec = draw(np.random.default_rng(s), records, setting)
        labels = np.arange(len(aami.AAMI_CLASSES))
        cms = np.stack([np.bincount(labels.size * y[rec == r] + pred[rec == r], minlength=labels.size**2)
                        .reshape(labels.size, labels.size) for r in range(records)]).astype(float)
        out.append(Set(record_intervals(y, pred, rec, config)["estimates"], cms, truths()))
    return tuple(out)


def _after(metric: str) -> Kind:
    def interval(s: Set) -> tuple[float, float, float]:
        row = s.rows[metric]  # Estimate.to_dict()
        return (float(row["estimate"]), np.nan if row["ci_low"] is None else float(row["ci_low"]),
                np.nan if row["ci_high"] is None else float(row["ci_high"]))
    return lambda n, setting, n_sets, seed: draws(cell(n, setting, n_sets, seed), interval, metric)


def _pooled(metric: str) -> Callable[[np.ndarray], float]:
    """The metric of a stack of per-record confusion matrices (the old bootstrap's statistic)."""
    def value(cms: np.ndarray) -> float:
        cm = cms.sum(axis=0)
        with np.errstate(invalid="ignore"):  # a resample without a class's beats: NaN, as the old code's
            se = np.array([cm[c, c] / cm[c].sum() for c in CODES])
        return float({"accuracy": np.trace(cm) / cm.sum(), "balanced_accuracy": se.mean(), "se_V": se[2]}[metric])
    return value


def _before(metric: str) -> Kind:
    def interval(s: Set) -> tuple[float, float, float]:
        return estimate_of(bootstrap_metric(_pooled(metric), s.cms, metric=metric, n_resamples=RESAMPLES, seed=0))
    return lambda n, setting, n_sets, seed: draws(cell(n, setting, n_sets, seed), interval, metric)


def _plain_t(metric: str) -> Kind:
    """67c03d4's interval: Wilson at the effective n of the plain clustered variance, t with records - 1 df."""
    def interval(s: Set) -> tuple[float, float, float]:
        num, den = record_ratios(s.cms)[metric]
        held = den.sum(axis=1) > 0
        p, n_eff, _ = _effective_n(num[held], den[held], few_units=False)
        alpha = 2.0 * float(norm.sf(t_dist.ppf(0.975, int(held.sum()) - 1)))
        lo, hi = proportion_confint(p * n_eff, n_eff, alpha=alpha, method="wilson")
        return p, float(lo), float(hi)
    return lambda n, setting, n_sets, seed: draws(cell(n, setting, n_sets, seed), interval, metric)


BEFORE: dict[str, Kind] = {f"{shown}: percentile bootstrap over records": _before(m) for shown, m in METRICS.items()}
BEFORE.update({f"{shown}: Wilson, plain variance, t with records - 1 df": _plain_t(m) for shown, m in METRICS.items()})
for _shown, _metric in METRICS.items():
    kind(f"{_shown}, AAMI beats (records the units)")(_after(_metric))
