"""What the fusion section says fusion adds (issue 53): the cross-validated IDI of the fused risk over each single
model's, without an interval, and the category-free NRI in metrics.json only, never in the section's table."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from cardio_fusion.report import _added_value, _value_table
from cardio_stats import idi
from cardio_stats.clustered import CLASS_DIFFERENCE_T


def _pred(folds: int = 5, n: int = 150) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    y = (rng.random(n) < 0.4).astype(float)
    ecg = expit(rng.normal(size=n) + y)
    fused = expit(np.log(ecg / (1 - ecg)) + 0.8 * (y - 0.4) + rng.normal(scale=0.3, size=n))
    fold = [f"fold{i % folds}" for i in range(n)]
    base = {"patient_id": [f"p{i}" for i in range(n)], "y_true": y, "fold": fold, "task": "responder"}
    return pd.concat([pd.DataFrame({**base, "model": "fused", "y_score": fused}),
                      pd.DataFrame({**base, "model": "ecg", "y_score": ecg})], ignore_index=True)


CFG = {"stats": {"level": 0.95, "n_resamples": 200}, "label": "responder"}


def test_fusion_adds_the_cross_validated_idi_and_keeps_the_nri_out_of_its_table():
    pred = _pred()
    est = {e["metric"]: e for e in _added_value(pred, ["ecg"], CFG, seed=0)}
    wide = pred.pivot_table(index="patient_id", columns="model", values="y_score")
    first = pred.drop_duplicates("patient_id").set_index("patient_id").loc[wide.index]
    per_fold = [idi(first.y_true[first.fold == f].to_numpy(), wide.ecg[first.fold == f].to_numpy(),
                    wide.fused[first.fold == f].to_numpy()) for f in sorted(set(first.fold))]
    assert est["idi"]["estimate"] == pytest.approx(np.mean(per_fold))
    assert est["idi"]["ci_low"] is None and est["idi"]["warnings"][0].startswith("no interval")
    assert est["nri"]["ci_low"] is None and est["nri"]["extra"]["headline"] is False
    table = _value_table(list(est.values()), 95)
    assert list(table.columns) == ["fused over", "n", "IDI, cross-validated (no interval)"]
    assert table.iloc[0, 2] == f"{est['idi']['estimate']:+.3f}"
    assert not any("NRI" in c for c in table.columns)


def test_a_one_split_fusion_gives_its_one_set_of_risks_one_models_interval():
    pred = _pred().assign(fold="holdout")
    est = {e["metric"]: e for e in _added_value(pred, ["ecg"], CFG, seed=0)}
    assert est["idi"]["method"] == CLASS_DIFFERENCE_T and est["idi"]["ci_low"] < est["idi"]["estimate"]
    assert "IDI [95% CI]" in _value_table(list(est.values()), 95).columns
