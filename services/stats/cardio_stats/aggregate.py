"""Sample scores (beats, clips, views) to one score per patient or study, with the rule named."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from cardio_stats.result import StatsError

AGGREGATIONS = ("mean", "max", "logit_mean")


def aggregate_scores(group_id: Any, scores: Any, how: str = "mean") -> pd.Series:
    """One score per group (index: group id as str, in order of first appearance; name: `how`).

    mean: the mean probability; max: the highest (one abnormal clip flags the study);
    logit_mean: the mean on the log-odds scale, mapped back (less pulled by near-0/1 samples).
    """
    if how not in AGGREGATIONS:
        raise StatsError(f"unknown aggregation {how!r}; use one of {list(AGGREGATIONS)}")
    ids = np.asarray(group_id).astype(str)
    s = np.asarray(scores, dtype=float)
    if s.ndim != 1 or s.shape != ids.shape:
        raise StatsError(f"aggregate_scores needs one score per sample: {ids.shape} ids, {s.shape} scores")
    if how == "logit_mean":
        if (s < 0).any() or (s > 1).any():
            raise StatsError("logit_mean aggregates probabilities in [0, 1]")
        eps = 1e-7
        s = logit(np.clip(s, eps, 1 - eps))
    grouped = pd.Series(s, index=pd.Index(ids)).groupby(level=0, sort=False)
    out = grouped.max() if how == "max" else grouped.mean()
    if how == "logit_mean":
        out = pd.Series(expit(out.to_numpy()), index=out.index)
    out.name = how
    return out
