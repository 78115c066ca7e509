"""bootstrap_metric's row-wise path (``rows``) gives the loop's numbers exactly: the F1 and Brier intervals of every
run's metrics.json did not move when they stopped looping over resamples (issue 40)."""
from typing import Any

import numpy as np
import pytest

from cardio_stats.bootstrap import bootstrap_metric
from cardio_stats.calibration import _brier, _brier_rows
from cardio_stats.thresholds import _f1_rows, f1_score_counts


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
