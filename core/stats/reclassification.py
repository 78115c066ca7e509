"""What a new model adds over an old one in risk terms: the category-free net reclassification improvement
and the integrated discrimination improvement (Pencina et al. 2008, 2011), with patient-level bootstrap CIs.

Written here because no maintained Python library computes them (R's PredictABEL and nricens do); each is
a few lines of arithmetic on the two risk vectors, and the interval comes from the core's bootstrap.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from cardio.stats.bootstrap import bootstrap_metric
from cardio.stats.result import Estimate, StatsError


def _checked(y: Any, old: Any, new: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y, old, new = (np.asarray(a, dtype=np.float64) for a in (y, old, new))
    if not (y.shape == old.shape == new.shape) or y.ndim != 1:
        raise StatsError(f"y, old and new risks must be three vectors of one length, got {y.shape}, {old.shape}, "
                         f"{new.shape}")
    if not set(np.unique(y)) <= {0.0, 1.0} or len(np.unique(y)) < 2:
        raise StatsError("reclassification needs a 0/1 outcome with both classes")
    for name, p in (("old", old), ("new", new)):
        if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
            raise StatsError(f"the {name} risks must be probabilities in [0, 1]")
    return y, old, new


def nri(y: np.ndarray, old: np.ndarray, new: np.ndarray) -> float:
    """Category-free NRI: P(up | event) - P(down | event) + P(down | non-event) - P(up | non-event)."""
    up, down = new > old, new < old
    event = y == 1
    return float(up[event].mean() - down[event].mean() + down[~event].mean() - up[~event].mean())


def idi(y: np.ndarray, old: np.ndarray, new: np.ndarray) -> float:
    """IDI: the gain in mean risk among events minus the gain among non-events (the change in discrimination
    slope)."""
    gain = new - old
    return float(gain[y == 1].mean() - gain[y == 0].mean())


def reclassification(y: Any, old: Any, new: Any, *, level: float = 0.95, n_resamples: int = 2000,
                     seed: int | None = 0, groups: Any = None) -> list[Estimate]:
    """NRI and IDI of `new` over `old` with bootstrap CIs, resampling patients (`groups`) within outcome strata."""
    y, old, new = _checked(y, old, new)
    out = []
    for fn, name in ((nri, "nri"), (idi, "idi")):
        est = bootstrap_metric(fn, y, old, new, n_resamples=n_resamples, seed=seed, level=level, stratify=y,
                               metric=name, groups=groups)
        est.extra.update({"n_events": int(y.sum()), "n_nonevents": int((y == 0).sum())})
        out.append(est)
    return out
