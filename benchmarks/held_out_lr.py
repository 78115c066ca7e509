"""spect_polar's held-out incremental-value test: false positives, power and the OR interval, through the plugin's code.

Each data set is a synthetic CRT cohort of n patients (spect_polar's clinical simulation, `cohort.simulate_clinical`)
with PSD and PBW (the global dyssynchrony in SD, plus unit noise each) and 64 autoencoder features. It is split into 5
patient folds by the core (`cardio.data.make_folds`); inside every training fold the plugin's recipe
(`analysis.fit_response_models`: the univariate screen, then clinical + AE, + PSD and + PBW) is fitted, and the
held-out fold scored. `analysis.held_out_incremental_value` then tests, on the out-of-fold scores, whether the
clinical+ae score adds to the clinical+psd and the clinical+pbw scores, with its variance factor at 1 (one model's
Wald and LR test: before) and at the default for 5 folds (cardio_stats.variance_factor, 2: after), on the same fits.

Planted effects (`spect_polar.synthetic.truth`):
- "null": late_lateral 0 (the neutral profile) and 64 noise AE features: the AE score carries nothing PSD lacks, so
  every rejection is a false positive;
- "planted": late_lateral 2.2 (the default) and AE feature 0 = 3 x late_lateral + noise (SD 0.5), the spatial effect
  PSD and PBW cannot see: the rejections are the power.

The AE features are drawn, not learned: the autoencoder's own training, a further source of fold-to-fold variation, is
not simulated. The OR interval's truth is the mean log OR over the data sets (the procedure's expected value at this
size); the oracle width is 2 x z x their SD.

    PYTHONPATH=benchmarks .venv/bin/python benchmarks/held_out_lr.py --sizes 103 300 --settings null planted \
        --sets 500 --seed 1 --markdown
"""
from __future__ import annotations

import argparse
import time
from typing import Literal

import numpy as np
import pandas as pd
from scipy.stats import norm
from tqdm import tqdm

from cardio.data import make_folds
from cardio_spect_polar.analysis import MODEL_NAMES, fit_response_models, held_out_incremental_value
from cardio_spect_polar.cohort import COVARIATES, late_lateral, simulate_clinical

N_AE = 64
FACTORS: dict[str, float | Literal["by folds"]] = {"one model (before)": 1.0, "fold factor (after)": "by folds"}


def data_set(n: int, setting: str, seed: int, i: int) -> pd.DataFrame:
    """One cohort with its phase variables and AE features (module docstring)."""
    planted = setting == "planted"
    table, truth = simulate_clinical(n, seed=10_000 * seed + i, truth={"late_lateral": 2.2 if planted else 0.0})
    rng = np.random.default_rng([seed, i, 56])
    dys = truth["dyssynchrony"].to_numpy(float)
    for c in ("psd", "pbw"):
        table[c] = (dys - 150) / 45 + rng.normal(size=n)
    table = pd.concat([table, pd.DataFrame(rng.normal(size=(n, N_AE)), columns=[f"ae_{k:02d}" for k in range(N_AE)])],
                      axis=1)
    if planted:
        table["ae_00"] = 3 * late_lateral(truth["late_angle"].to_numpy(float), dys) + 0.5 * rng.normal(size=n)
    return table.assign(responder=table["responder"].astype(int), record_id=table["patient_id"])


def out_of_fold(table: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The plugin's recipe in each of 5 training folds, its three models scoring the held-out fold."""
    ae = [f"ae_{k:02d}" for k in range(N_AE)]
    parts = []
    for fold in make_folds(table, {"method": "kfold", "folds": 5}, "responder", seed):
        train, test = table.iloc[fold.train], table.iloc[fold.test]
        fitted = fit_response_models(train, "responder", list(COVARIATES), ae)
        for name in MODEL_NAMES:
            parts.append(test[["record_id", "patient_id"]].assign(
                model=name, task="responder", kind="binary", y_true=test["responder"].to_numpy(),
                y_score=fitted.models[name].predict_proba(test), fold=fold.name, repeat=0))
    return pd.concat(parts, ignore_index=True)


def cell(n: int, setting: str, sets: int, seed: int) -> pd.DataFrame:
    """Every data set's held-out rows under both variance factors."""
    rows = []
    for i in tqdm(range(sets), desc=f"{setting}, {n} patients", leave=False):
        pred = out_of_fold(data_set(n, setting, seed, i), seed=10_000 * seed + i)
        for label, factor in FACTORS.items():
            rows.append(held_out_incremental_value(pred, "responder", fold_factor=factor).assign(
                variance=label, data_set=i, patients=n, setting=setting))
    return pd.concat(rows, ignore_index=True)


def summary(rows: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Per variance, size, setting and comparison: rejections (each direction), the OR interval's misses of the
    mean log OR per tail, and its width against the oracle's."""
    out = []
    z = norm.ppf(0.5 + level / 2)
    for (variance, n, setting, comparison), g in rows[rows["status"] == "estimated"].groupby(
            ["variance", "patients", "setting", "comparison"], sort=False):
        b = np.log(g["or_reference_per_sd"].astype(float))
        ci = np.log(g["or_reference_ci"].str.strip("[]").str.split(",", expand=True).astype(float))
        p = g["p_value"].astype(float) < 1 - level
        truth, sd = b.mean(), b.std(ddof=1)
        other = comparison.removeprefix("held-out clinical+ae score added to ").removesuffix(" score")
        out.append({"variance": variance, "patients": n, "setting": setting, "comparison": other,
                    "sets": len(g), "rejects %": 100 * p.mean(), "rejects, OR > 1 %": 100 * (p & (b > 0)).mean(),
                    "rejects, OR < 1 %": 100 * (p & (b < 0)).mean(),
                    "Holm rejects %": 100 * (g["p_holm"].astype(float) < 1 - level).mean(),
                    "interval misses below %": 100 * (ci[1] < truth).mean(),
                    "misses above %": 100 * (ci[0] > truth).mean(), "mean log OR": truth,
                    "width ÷ oracle": (ci[1] - ci[0]).mean() / (2 * z * sd)})
    return pd.DataFrame(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[103, 300])
    ap.add_argument("--settings", nargs="+", default=["null", "planted"], choices=["null", "planted"])
    ap.add_argument("--sets", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--markdown", action="store_true", help="print the table as markdown")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: checks the script runs")
    args = ap.parse_args()
    if args.smoke:
        args.sizes, args.sets = [60], 2
    start = time.perf_counter()
    rows = pd.concat([cell(n, s, args.sets, args.seed) for n in args.sizes for s in args.settings], ignore_index=True)
    table = summary(rows).round(3)
    print(f"{args.sets} data sets per size and setting; seed {args.seed}; 5 folds; alpha 0.05 and 95% intervals; "
          f"{time.perf_counter() - start:.0f} s")
    print(table.to_markdown(index=False) if args.markdown else table.to_string(index=False))


if __name__ == "__main__":
    main()
