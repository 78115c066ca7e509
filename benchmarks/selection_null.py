"""Null simulation of the SPECT paper analysis: does the incremental-value test hold its level after selection?

100 data sets of n = 102 synthetic CRT patients (the plugin's clinical simulation and responder labels),
with 64 pure-noise AE features and noise PSD/PBW: the AE features carry no information by construction.
Each data set goes through the plugin's own `fit_response_models` (in-sample LR test of clinical + PSD + AE
vs clinical + PSD, as in the paper) and through the permutation test of the whole screen -> select -> fit
-> LR-test recipe (selection.permutation_test). A valid test rejects about 5% of them at alpha = 0.05.

    .venv/bin/python benchmarks/selection_null.py [--datasets 100] [--permutations 1000]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from statsmodels.stats.proportion import proportion_confint

import cardio_stats as stats
from cardio_spect_polar.analysis import fit_response_models
from cardio_spect_polar.cohort import COVARIATES, simulate_clinical
from cardio_spect_polar.selection import permutation_test


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", type=int, default=100)
    ap.add_argument("--permutations", type=int, default=1000)
    ap.add_argument("--n", type=int, default=102)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: checks the script runs")
    args = ap.parse_args()
    if args.smoke:
        args.datasets, args.permutations = 2, 19
    clinical = [c for c in COVARIATES]
    ae_cols = [f"ae_{k:02d}" for k in range(64)]
    rej_perm = rej_lr = 0
    passed = []
    t0 = time.perf_counter()
    t_perm = 0.0
    for i in range(args.datasets):
        df, _ = simulate_clinical(args.n, seed=1000 + i)
        rng = np.random.default_rng(i)
        for c in ["psd", "pbw", *ae_cols]:
            df[c] = rng.normal(size=args.n)
        fitted = fit_response_models(df, "responder", clinical, ae_cols)
        lr = stats.likelihood_ratio_test(fitted.models["clinical+psd"], fitted.models["clinical+psd+ae"])
        rej_lr += lr.p_value < args.alpha
        passed.append(int((fitted.screen.set_index("variable")["p_value"].reindex(ae_cols) < 0.05).sum()))
        t = time.perf_counter()
        res = permutation_test(df[clinical].to_numpy(float), df["psd"].to_numpy(float), df[ae_cols].to_numpy(float),
                               df["responder"].to_numpy(float), permutations=args.permutations, seed=i)
        t_perm += time.perf_counter() - t
        rej_perm += res["p_value"] < args.alpha
    wall = time.perf_counter() - t0
    k = args.datasets
    for name, r in (("permutation test of the whole recipe", rej_perm), ("in-sample LR test (paper)", rej_lr)):
        lo, hi = proportion_confint(r, k, alpha=0.05, method="wilson")
        print(f"{name:40s} rejects {r}/{k} = {r / k:.2f} (95% Wilson CI {lo:.2f}-{hi:.2f}) at alpha {args.alpha}")
    print(f"AE features passing the p < 0.05 screen: mean {np.mean(passed):.1f} per data set")
    print(f"wall time {wall:.0f} s ({t_perm:.0f} s in {k} x {args.permutations} permutations, "
          f"{t_perm / k:.1f} s per data set)")


if __name__ == "__main__":
    main()
