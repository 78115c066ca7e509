"""Vectorized stratified bootstrap AUC vs a loop of sklearn roc_auc_score on the same resamples; DeLong at n=100k.

Usage: python benchmarks/stats_bootstrap.py [--n 2000] [--resamples 10000] [--loop-resamples N]
Both paths see the identical resample indices; results must agree to 1e-12. Times are measured side by
side in this one run; --loop-resamples times the sklearn loop on the first N resamples only (the ratio is then
scaled per resample) for a quick look, the default loops over all of them.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from sklearn.metrics import roc_auc_score

from cardio.stats import auc_from_indices, bootstrap_ci, delong_ci, resample_indices


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--resamples", type=int, default=10_000)
    ap.add_argument("--loop-resamples", type=int, default=None)
    ap.add_argument("--delong-n", type=int, default=100_000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    y = (rng.random(args.n) < 0.3).astype(int)
    score = np.round(rng.normal(size=args.n) + 0.8 * y, 2)  # rounded: ties, the harder case

    t0 = time.perf_counter()
    idx = resample_indices(y.size, args.resamples, seed=1, strata=y)
    t_draw = time.perf_counter() - t0

    t0 = time.perf_counter()
    fast = auc_from_indices(y, score, idx)
    t_fast = time.perf_counter() - t0

    n_loop = args.loop_resamples or args.resamples
    t0 = time.perf_counter()
    slow = np.array([roc_auc_score(y[i], score[i]) for i in idx[:n_loop]])
    t_slow = time.perf_counter() - t0
    max_diff = float(np.max(np.abs(fast[:n_loop] - slow)))
    per_resample_ratio = (t_slow / n_loop) / (t_fast / args.resamples)

    t0 = time.perf_counter()
    est = bootstrap_ci(y, score, n_resamples=args.resamples, seed=1)
    t_full = time.perf_counter() - t0
    assert est.ci_low == float(np.percentile(fast, 2.5)) and est.ci_high == float(np.percentile(fast, 97.5))

    print(f"stratified bootstrap AUC, n = {args.n} ({int(y.sum())} positive), {args.resamples} resamples, same indices")
    print(f"  drawing the resample indices:            {t_draw:8.3f} s")
    print(f"  vectorized auc_from_indices:             {t_fast:8.3f} s")
    print(f"  Python loop, sklearn roc_auc_score:      {t_slow:8.3f} s  ({n_loop} resamples)")
    print(f"  speed-up (per resample):                 {per_resample_ratio:8.1f} x  (goal >= 100 x)")
    print(f"  bootstrap_ci end to end (draw + AUC + CI): {t_full:6.3f} s  -> "
          f"{(t_slow / n_loop * args.resamples) / t_full:.1f} x the loop")
    print(f"  max |vectorized - sklearn|:              {max_diff:.2e}  (must be < 1e-12)")
    print(f"  AUC {est.estimate:.4f}, 95% CI [{est.ci_low:.4f}, {est.ci_high:.4f}]")

    big_y = (rng.random(args.delong_n) < 0.3).astype(int)
    big_s = rng.normal(size=args.delong_n) + 0.5 * big_y
    delong_ci(big_y[:1000], big_s[:1000])  # warm-up
    t0 = time.perf_counter()
    d = delong_ci(big_y, big_s)
    t_delong = time.perf_counter() - t0
    print(f"DeLong CI at n = {args.delong_n}: {t_delong:.3f} s  "
          f"(AUC {d.estimate:.4f} [{d.ci_low:.4f}, {d.ci_high:.4f}])")
    return 0 if max_diff < 1e-12 else 1


if __name__ == "__main__":
    sys.exit(main())
