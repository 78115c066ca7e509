"""The interval kinds that benchmarks/coverage.py simulates, and how one kind's draws are summarised.

A kind is a function `(n_patients, setting, n_sets, seed) -> Draws`: it simulates `n_sets` data sets of
`n_patients` patients under `setting` ("null": no effect; "signal": a planted one), runs each through cardio's own
code path, and returns every set's estimate and interval with the truth the interval is meant to cover (the
estimand that docs/statistics.md states for that kind). Register it with `@kind("name")`, or with the settings it
simulates where it has more (`@kind("name", ("null", "signal", "strong"))`).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import norm

Z = float(norm.ppf(0.975))


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


Kind = Callable[[int, str, int, int], Draws]
KINDS: dict[str, Kind] = {}
SETTINGS: dict[str, tuple[str, ...]] = {}  # each kind's settings


def kind(name: str, settings: tuple[str, ...] = ("null", "signal")) -> Callable[[Kind], Kind]:
    """Register a kind under the name the table prints, with the settings it simulates."""
    def register(f: Kind) -> Kind:
        KINDS[name], SETTINGS[name] = f, settings
        return f
    return register


def summarise(d: Draws) -> dict[str, float]:
    """Misses per tail (the interval wholly above or below the truth), width against the oracle (2 x 1.96 x the
    SD of the estimate across data sets) and power (the share whose interval excludes the null value)."""
    ok = np.isfinite(d.lower) & np.isfinite(d.upper) & np.isfinite(d.estimate)
    lo, hi, est = d.lower[ok], d.upper[ok], d.estimate[ok]
    oracle = 2 * Z * float(np.std(est, ddof=1)) if est.size > 1 else float("nan")
    width = float(np.mean(hi - lo)) if est.size else float("nan")
    power = float(np.mean((lo > d.null) | (hi < d.null))) if d.null is not None and est.size else float("nan")
    return {"sets": float(ok.sum()), "no_interval": float((~ok).sum()),
            "miss_below": float(np.mean(hi < d.truth)) if est.size else float("nan"),  # the truth above the interval
            "miss_above": float(np.mean(lo > d.truth)) if est.size else float("nan"),  # the truth below it
            "miss": float(np.mean((hi < d.truth) | (lo > d.truth))) if est.size else float("nan"),
            "width": width, "oracle": oracle, "width_ratio": width / oracle if oracle > 0 else float("nan"),
            "power": power, "seconds": d.seconds}


def fmt(r: dict[str, float]) -> str:
    """One grid cell of a `summarise` result: misses (below / above) % · width ÷ oracle · power %."""
    return (f"{100 * r['miss']:.1f} ({100 * r['miss_below']:.1f} / {100 * r['miss_above']:.1f}) · "
            f"{r['width_ratio']:.2f} · {100 * r['power']:.1f}")


def holds(r: dict[str, float], miss: float) -> bool:
    """A grid's rule for one cell: misses at most `miss`, each tail at most 3.5%."""
    return r["miss"] <= miss and r["miss_below"] <= 0.035 and r["miss_above"] <= 0.035
