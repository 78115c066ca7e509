"""What a new model adds over an old one in risk terms: the category-free net reclassification improvement
and the integrated discrimination improvement (Pencina et al. 2008, 2011).

Written here because no maintained Python library computes them (R's PredictABEL and nricens do); each is
a few lines of arithmetic on the two risk vectors. `reclassification` gives one model pair's values with t
intervals, patients the units (risks of fixed models: a holdout, an external cohort); `cv_reclassification`
gives the cross-validated values of a K-fold run, the mean of the per-fold values, without an interval
(cv_metrics.WHY_NOT says why).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from cardio_stats.bootstrap import patients_of
from cardio_stats.clustered import CLASS_DIFFERENCE_T, class_difference_t, units
from cardio_stats.cv_metrics import _fold_parts, fold_mean
from cardio_stats.result import Estimate, StatsError
from cardio_stats.validation import check_n_resamples


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
    """NRI and IDI of `new` over `old`, one pair of models' risks (a holdout, an external cohort), each a difference
    of two class means (of the risk gain's sign, of the risk gain) with the t interval of its linearised
    patient-clustered SE (`groups`: patient ids; clustered.class_difference_t). Their patient bootstrap missed
    8.7-9.7% of two fixed models' values at 40 patients and 6.3-7.3% at 100; this 6.0-7.1% at 40, 4.5-5.9% at
    100 and 300 (benchmarks/coverage.py's two-fixed-model kinds). ``n_resamples`` and ``seed`` are kept for
    callers."""
    check_n_resamples(n_resamples)
    y, old, new = _checked(y, old, new)
    codes, unit = units(patients_of(groups, y.size), y.size)
    out = []
    for name, v in (("nri", np.sign(new - old)), ("idi", new - old)):
        est, lo, hi = class_difference_t(v, y, codes, level)
        out.append(Estimate(name, est, lo, hi, level, CLASS_DIFFERENCE_T, int(y.size),
                            extra={"n_events": int(y.sum()), "n_nonevents": int((y == 0).sum()), **unit}))
    return out


def cv_reclassification(y: Any, old: Any, new: Any, fold: Any, *, groups: Any = None,
                        level: float = 0.95) -> list[Estimate]:
    """The cross-validated IDI and category-free NRI of `new` over `old` (out-of-fold risks of one K-fold split):
    each the mean of its per-fold values, the fold's own models compared on the records they scored. Neither
    carries an interval (benchmarks/coverage.py: the fold-level one missed 12.6-16.0% for the IDI with signal), and
    the NRI is no headline: it is positive for added features that carry nothing."""
    y, old, new = _checked(y, old, new)
    parts, ratios, reps = _fold_parts(fold, y.size, groups)
    names = [str(np.asarray(fold)[idx[0]]) for idx in parts]
    out = []
    for fn, name in ((idi, "idi"), (nri, "nri")):
        values = np.array([fn(y[i], old[i], new[i]) if 0 < y[i].sum() < i.size else np.nan for i in parts])
        est = fold_mean(name, values, ratios, reps, level, y.size, interval=False, names=names)
        est.extra.update({"n_events": int(y.sum()), "n_nonevents": int((y == 0).sum())})
        out.append(est)
    return out
