"""The coverage benchmark's attention-score kind (issue 53): mmode_septal_flash's mean Grad-CAM++ attention score per
class (`cardio_mmode_septal_flash.attention.summarize`), one model's scores of the test patients of a class.

Data: `n_patients` patients of the class (here the sizes are patients of one class: `--sizes 12 17 40`, the
default holdout's 12 and 17 and a larger cohort), half the data sets with one record a patient, half with 1-3, each
patient's score a share of the map's mass in [0, 1] drawn from a Beta distribution and the same for each of its
records, give or take a record's own noise (records' scores Beta around the patient's, a + b = 40). "null":
Beta(3, 7), mean 0.30, scores spread over the middle; "signal": Beta(0.5, 3), mean 0.14, most scores near 0 and a
few large (a network that mostly looks elsewhere). The truth is the Beta's mean (the patient's mean; a record's
noise has mean 0 on it). BEFORE: the percentile bootstrap of the records' mean these rows had
(cardio_stats.bootstrap_metric, 500 resamples; a report took 2,000). CANDIDATES: Hall's (1992) skewness-corrected
t, measured and not adopted (docs/statistics.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy.stats import t as t_dist

from cardio_mmode_septal_flash.attention import summarize
from cardio_stats import bootstrap_metric
from cardio_stats.clustered import _sums

from . import Kind, draws, estimate_of, is_clustered, kind

BETA = {"null": (3.0, 7.0), "signal": (0.5, 3.0)}
RECORD_SPREAD = 40.0  # a + b of a record's score around its patient's
RESAMPLES = 500


@dataclass
class Set:
    """One class's scores, the row summarize() gives and the population mean."""

    scores: pd.DataFrame
    row: dict
    truth: dict[str, float]


def draw(rng: np.random.Generator, n: int, clustered: bool, setting: str) -> pd.DataFrame:
    a, b = BETA[setting]
    patient = rng.beta(a, b, n)
    ids = np.repeat(np.arange(n), rng.integers(1, 4, size=n) if clustered else 1)
    mean = np.clip(patient[ids], 1e-4, 1 - 1e-4)
    score = rng.beta(mean * RECORD_SPREAD, (1 - mean) * RECORD_SPREAD) if clustered else patient[ids]
    return pd.DataFrame({"record_id": np.arange(ids.size), "patient_id": ids, "septal_flash": 1.0,
                         "score": score, "area_share": 0.02})


@lru_cache(maxsize=8)
def cell(n: int, setting: str, n_sets: int, seed: int) -> tuple[Set, ...]:
    a, b = BETA[setting]
    out = []
    start = seed * 10**7 + n * 10**4 + 5000 * (setting == "signal") + 6 * 10**6
    for s in range(start, start + n_sets):
        scores = draw(np.random.default_rng(s), n, is_clustered(s), setting)
        out.append(Set(scores, summarize(scores, "full", 0.95)[0], {"attention_score": a / (a + b)}))
    return tuple(out)


def _row(s: Set) -> tuple[float, float, float]:
    lo, hi = s.row["ci_low"], s.row["ci_high"]
    return float(s.row["estimate"]), np.nan if lo is None else float(lo), np.nan if hi is None else float(hi)


def _bootstrap(s: Set) -> tuple[float, float, float]:
    return estimate_of(bootstrap_metric(np.mean, s.scores["score"].to_numpy(), n_resamples=RESAMPLES, seed=0))


BEFORE: dict[str, Kind] = {"attention score: percentile bootstrap of the records' mean": (
    lambda n, setting, n_sets, seed: draws(cell(n, setting, n_sets, seed), _bootstrap, "attention_score"))}
kind("attention score per class, one model (mmode_septal_flash)")(
    lambda n, setting, n_sets, seed: draws(cell(n, setting, n_sets, seed), _row, "attention_score"))


def _hall(s: Set) -> tuple[float, float, float]:
    """Hall's (1992) monotone cubic that removes the studentized mean's skewness, patients the units: with S the
    studentized error and k the skewness of the patients' influence terms, ((1 + k S / 3)^3 - 1) / k + k / 6 is
    taken as t with patients - 1 df."""
    x = s.scores["score"].to_numpy()
    codes = np.unique(s.scores["patient_id"].to_numpy(), return_inverse=True)[1]
    g, m = int(codes.max()) + 1, float(x.mean())
    u = _sums(x - m, codes) / x.size
    se, k = float(np.sqrt(g / (g - 1) * (u @ u))), float((u**3).sum() / (u @ u) ** 1.5)
    q = float(t_dist.ppf(0.975, g - 1))

    def studentized(w: float) -> float:  # the inverse of the cubic
        return w - k / 6 if abs(k) < 1e-12 else float((np.cbrt(1 + k * (w - k / 6)) - 1) / (k / 3))
    return m, max(m - se * studentized(q), 0.0), m - se * studentized(-q)


CANDIDATES: dict[str, Kind] = {"attention score: Hall's skewness-corrected t, patients the units": (
    lambda n, setting, n_sets, seed: draws(cell(n, setting, n_sets, seed), _hall, "attention_score"))}
