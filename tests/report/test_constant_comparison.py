"""A comparison against a model that scores every patient of a fold alike says which interval it carries (issue 53)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from cardio_report.performance import _test_row
from cardio_stats import CV_METHOD, evaluate_predictions


def test_the_comparison_row_names_the_other_models_interval_less_a_half():
    """A prior-only model (each fold's training event rate) has AUC 0.5 in every fold: the cross-validated
    difference is the other model's AUC interval less 0.5, and the report's interval column says so, naming both."""
    rng = np.random.default_rng(0)
    n = 200
    y = (rng.random(n) < 0.4).astype(int)
    fold = np.arange(n) % 5
    prior = np.array([y[fold != f].mean() for f in fold])
    base = {"record_id": [f"r{i}" for i in range(n)], "patient_id": [f"p{i}" for i in range(n)], "task": "crt",
            "kind": "binary", "y_true": y, "fold": [f"fold{f}" for f in fold]}
    pred = pd.concat([pd.DataFrame({**base, "model": "ecg", "y_score": y + rng.normal(size=n)}),
                      pd.DataFrame({**base, "model": "prior", "y_score": prior})], ignore_index=True)
    est, [t] = evaluate_predictions(pred, n_resamples=100)
    auc = next(e for e in est if e["model"] == "ecg" and e["metric"] == "auc" and e["method"] == CV_METHOD)
    flip = t["extra"]["model_a"] == "prior"  # the pair's order is evaluate's
    shift = -1.0 if flip else 1.0
    assert t["extra"]["constant"] == ("A" if flip else "B")
    assert t["estimate"] == shift * (auc["estimate"] - 0.5)
    row = _test_row(t, 95)
    assert row["interval"].endswith("; prior scored every patient of each fold alike: ecg's own AUC interval less 0.5")
