"""Null calibration of the AUC intervals: on no-signal data, 95% DeLong and bootstrap CIs should cover 0.5 in 93-97%.

Usage: python benchmarks/stats_null_calibration.py [--datasets 1000] [--n 200] [--resamples 1000]
Each data set has n records, prevalence 0.3, scores independent of the label (so the true AUC is 0.5).
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from cardio_stats import bootstrap_ci, delong_ci


def coverage(n_datasets: int, n: int, n_resamples: int, seed: int = 2024) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    hits = {"delong": 0, "bootstrap-percentile": 0}
    n_pos = int(round(0.3 * n))
    for i in range(n_datasets):
        y = np.zeros(n, dtype=int)
        y[:n_pos] = 1
        score = rng.normal(size=n)  # no signal
        d = delong_ci(y, score)
        b = bootstrap_ci(y, score, n_resamples=n_resamples, seed=i)
        assert d.ci_low is not None and d.ci_high is not None and b.ci_low is not None and b.ci_high is not None
        hits["delong"] += d.ci_low <= 0.5 <= d.ci_high
        hits["bootstrap-percentile"] += b.ci_low <= 0.5 <= b.ci_high
    return {k: v / n_datasets for k, v in hits.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", type=int, default=1000)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: checks the script runs")
    args = ap.parse_args()
    if args.smoke:
        args.datasets, args.n, args.resamples = 20, 60, 200
    t0 = time.perf_counter()
    cov = coverage(args.datasets, args.n, args.resamples)
    took = time.perf_counter() - t0
    half = 1.96 * (0.95 * 0.05 / args.datasets) ** 0.5
    print(f"null data sets: {args.datasets}, n = {args.n} (30% positive), bootstrap resamples = {args.resamples}, "
          f"{took:.1f} s")
    ok = True
    for method, c in cov.items():
        inside = 0.93 <= c <= 0.97
        ok &= inside
        print(f"  coverage of AUC = 0.5 by the 95% {method:<21} CI: {100 * c:5.1f}%  "
              f"(Monte Carlo +/- {100 * half:.1f} pts; target 93-97%: {'ok' if inside else 'OUT OF RANGE'})")
    return 0 if ok or args.smoke else 1  # smoke: 20 data sets check that it runs, not the coverage


if __name__ == "__main__":
    sys.exit(main())
