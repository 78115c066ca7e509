"""The interval kinds that benchmarks/coverage.py simulates, and how one kind's draws are summarised.

A kind is a function `(n_patients, setting, n_sets, seed) -> Draws`: it simulates `n_sets` data sets of
`n_patients` patients under `setting` ("null": no effect; "signal": a planted one), runs each through cardio's own
code path, and returns every set's estimate and interval with the truth the interval is meant to cover (the
estimand that docs/statistics.md states for that kind). Register it with `@kind("name")`, or with the settings it
simulates where it has more (`@kind("name", ("null", "signal", "strong"))`).
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, cast

import numpy as np
from scipy.stats import norm

from cardio_stats import StatsError

Z = float(norm.ppf(0.975))


def is_clustered(seed: int) -> bool:
    """The design of data set `seed`: odd seeds draw 1-3 records a patient, even ones one, so that every cell holds
    both (the kinds draw by it, and read each set against its design's truth by it)."""
    return seed % 2 == 1


@dataclass
class Draws:
    """One kind at one setting: per simulated data set its estimate and interval (NaN where it printed none)."""

    estimate: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    truth: float  # the value the interval is meant to cover (its stated estimand) in this setting
    null: float | None = None  # the no-effect value, for power (None: no power column)
    seconds: float = 0.0  # wall time of the cardio calls, for the cost column
    notes: list[str] = field(default_factory=list)  # e.g. "12 sets without an interval: a fold lacked a class"
    #: Each set's design (one record a patient, or 1-3) and its own truth, where the kind's cell mixes designs whose
    #: expected values differ: each set is then read against its design's truth (``summarise``).
    design: np.ndarray | None = None
    truths: np.ndarray | None = None


Kind = Callable[[int, str, int, int], Draws]
KINDS: dict[str, Kind] = {}
SETTINGS: dict[str, tuple[str, ...]] = {}  # each kind's settings


def kind(name: str, settings: tuple[str, ...] = ("null", "signal")) -> Callable[[Kind], Kind]:
    """Register a kind under the name the table prints, with the settings it simulates."""
    def register(f: Kind) -> Kind:
        KINDS[name], SETTINGS[name] = f, settings
        return f
    return register


class HasTruth(Protocol):
    """A simulated data set: each metric's true value for it (the mean of its fold models' values)."""

    truth: dict[str, float]


S = TypeVar("S", bound=HasTruth)


def draws(sets: Sequence[S], interval: Callable[[S], tuple[float, float, float]], truth: str,
          null: float | None = None) -> Draws:
    """Every set's (estimate, low, high) from `interval`, timed; NaN where it gave none (the reason in notes), and
    the truth the mean of the sets' `truth[truth]`."""
    rows: list[tuple[float, float, float]] = []
    why: dict[str, int] = {}
    t0 = time.perf_counter()
    for s in sets:
        try:
            rows.append(interval(s))
        except StatsError as e:
            rows.append((np.nan, np.nan, np.nan))
            reason = re.sub(r"\d+", "#", str(e))  # one count per reason, whichever fold
            why[reason] = why.get(reason, 0) + 1
    seconds = time.perf_counter() - t0
    a = np.array(rows, dtype=float).reshape(-1, 3)
    own = np.array([s.truth[truth] for s in sets], dtype=float)
    target = float(own.mean())
    notes = [f"{k} sets without an estimate: {w}" for w, k in why.items()]
    with np.errstate(invalid="ignore"):
        outside = int(np.sum((a[:, 0] < a[:, 1]) | (a[:, 0] > a[:, 2])))
    if outside:  # an interval that leaves out its own estimate is read wrong whatever its coverage
        notes.append(f"{outside} sets whose interval leaves out its own estimate")
    point = np.isfinite(a[:, 0]) & ~np.isfinite(a[:, 1])
    if point.any():
        alone = a[point, 0]
        sd = f"{alone.std(ddof=1):.3f}" if alone.size > 1 else "–"  # one set has none (NumPy warned, ddof <= 0)
        notes.append(f"{int(point.sum())} sets printed without an interval: mean estimate {alone.mean():+.3f} against "
                     f"the truth {target:+.3f} (bias {alone.mean() - target:+.3f}, SD {sd})")
    elif np.isfinite(a[:, 0]).any():
        notes.append(f"mean estimate {np.nanmean(a[:, 0]):+.3f} against the truth {target:+.3f}")
    design = (np.array([getattr(s, "clustered") for s in sets]) if all(hasattr(s, "clustered") for s in sets)
              else None)
    return Draws(a[:, 0], a[:, 1], a[:, 2], target, null, seconds, notes, design, own)


_MEMO: dict[tuple, Any] = {}  # one call's result per data set, shared by the kinds that read it (calibration: 3)
R = TypeVar("R")


def memo(key: tuple, compute: Callable[[], R]) -> R:
    """compute()'s result for `key` (the module, the call and the data set's seed and size), computed once."""
    if key not in _MEMO:
        if len(_MEMO) > 50_000:
            _MEMO.clear()
        _MEMO[key] = compute()
    return cast(R, _MEMO[key])  # the key names the call, so its value is what compute returned


def estimate_of(e: Any) -> tuple[float, float, float]:
    """(estimate, low, high) of a cardio Estimate, NaN for a missing bound."""
    lo = np.nan if e.ci_low is None else e.ci_low
    hi = np.nan if e.ci_high is None else e.ci_high
    return float(e.estimate), float(lo), float(hi)


def _by_design(d: Draws, ok: np.ndarray) -> tuple[np.ndarray | float, float]:
    """Each kept set's truth and the estimate's SD across data sets. Where the cell mixes designs (`d.design`), a
    set's truth is its design's mean truth and the SD is within designs (pooled): a data set of patients with 1-3
    records is another cohort than one of a record each, and a learner whose steps count records (the regression
    kinds' SGD) expects another value on it (an MAE of 1.00 against 0.88 at 100 patients), which a pooled truth
    and SD would read as misses and spread."""
    est = d.estimate[ok]
    if d.design is None or d.truths is None:
        return d.truth, float(np.std(est, ddof=1)) if est.size > 1 else float("nan")
    design, truths = d.design[ok], d.truths
    target = np.empty(est.size)
    squares, df = 0.0, 0
    for g in np.unique(d.design):
        target[design == g] = float(truths[d.design == g].mean())
        e = est[design == g]
        if e.size > 1:
            squares, df = squares + float(((e - e.mean()) ** 2).sum()), df + e.size - 1
    return target, float(np.sqrt(squares / df)) if df else float("nan")


def summarise(d: Draws) -> dict[str, float]:
    """Misses per tail (the interval wholly above or below the truth), width against the oracle (2 x 1.96 x the
    SD of the estimate across data sets) and power (the share whose interval excludes the null value); a cell that
    mixes designs reads each set against its own design's truth and spread (``_by_design``)."""
    ok = np.isfinite(d.lower) & np.isfinite(d.upper) & np.isfinite(d.estimate)
    lo, hi, est = d.lower[ok], d.upper[ok], d.estimate[ok]
    truth, sd = _by_design(d, ok)
    oracle = 2 * Z * sd
    width = float(np.mean(hi - lo)) if est.size else float("nan")
    power = float(np.mean((lo > d.null) | (hi < d.null))) if d.null is not None and est.size else float("nan")
    return {"sets": float(ok.sum()), "no_interval": float((~ok).sum()),
            "miss_below": float(np.mean(hi < truth)) if est.size else float("nan"),  # the truth above the interval
            "miss_above": float(np.mean(lo > truth)) if est.size else float("nan"),  # the truth below it
            "miss": float(np.mean((hi < truth) | (lo > truth))) if est.size else float("nan"),
            "width": width, "oracle": oracle, "width_ratio": width / oracle if oracle > 0 else float("nan"),
            "power": power, "seconds": d.seconds}


def fmt(r: dict[str, float]) -> str:
    """One grid cell of a `summarise` result: misses (below / above) % · width ÷ oracle · power %."""
    return (f"{100 * r['miss']:.1f} ({100 * r['miss_below']:.1f} / {100 * r['miss_above']:.1f}) · "
            f"{r['width_ratio']:.2f} · {100 * r['power']:.1f}")


def holds(r: dict[str, float], miss: float) -> bool:
    """A grid's rule for one cell: misses at most `miss`, each tail at most 3.5%."""
    return r["miss"] <= miss and r["miss_below"] <= 0.035 and r["miss_above"] <= 0.035
