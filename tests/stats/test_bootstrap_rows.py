"""bootstrap_metric's row-wise path (``rows``) gives the loop's numbers exactly (issue 40), for a ratio of counts
(F1) and a mean (the Brier score): the two row functions a run's F1 and Brier intervals used until their bootstraps
gave way to cardio_stats.clustered's intervals (issue 53)."""
from typing import Any

import numpy as np
import pytest

from cardio_stats.bootstrap import bootstrap_metric


def f1_score_counts(y: np.ndarray, pred: np.ndarray) -> float:
    """F1 = 2TP / (2TP + FP + FN); NaN when there is no positive label and no positive prediction."""
    tp = np.count_nonzero((y == 1) & (pred == 1))
    denom = 2 * tp + np.count_nonzero(y != pred)
    return 2.0 * tp / denom if denom else float("nan")


def _f1_rows(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """f1_score_counts of every row (one resample each): the same integer counts, the same division."""
    tp = np.count_nonzero((y == 1) & (pred == 1), axis=1)
    denom = 2 * tp + np.count_nonzero(y != pred, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 2.0 * tp / denom, np.nan)


def _brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2))


def _brier_rows(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    return np.mean((p - y) ** 2, axis=1)


@pytest.mark.parametrize("by_patient", [False, True])
def test_rows_give_the_loops_estimates_exactly(by_patient):
    rng = np.random.default_rng(4)
    for trial in range(6):
        n = int(rng.integers(20, 300))
        y = rng.permutation(np.arange(n) % 2)
        p = rng.random(n)
        pred = (p > 0.4).astype(np.int8)
        groups = rng.integers(0, n // 2, n) if by_patient else None  # patients of 1, 2, 3... records
        for fn, rows, arrays in ((f1_score_counts, _f1_rows, (y, pred)), (_brier, _brier_rows, (y.astype(float), p))):
            kw: dict[str, Any] = {"n_resamples": 300, "seed": trial, "stratify": y, "groups": groups}
            loop, batched = bootstrap_metric(fn, *arrays, **kw), bootstrap_metric(fn, *arrays, rows=rows, **kw)
            assert batched.to_dict() == loop.to_dict()
            assert loop.ci_low is not None and loop.ci_high is not None
            assert loop.ci_low < loop.estimate < loop.ci_high


def test_rows_leave_out_undefined_resamples_as_the_loop_does():
    """F1 is undefined in a resample with no positive label and no positive prediction: both paths drop it."""
    y, pred = np.array([0] * 8 + [1]), np.array([0] * 9)
    kw: dict[str, Any] = {"n_resamples": 200, "seed": 1}
    loop = bootstrap_metric(f1_score_counts, y, pred, **kw)
    batched = bootstrap_metric(f1_score_counts, y, pred, rows=_f1_rows, **kw)
    assert batched.to_dict() == loop.to_dict() and batched.warnings
