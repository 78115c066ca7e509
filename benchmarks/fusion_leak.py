"""Why `cardio fuse` is nested: a stacker fitted on pooled out-of-fold scores against cardio's nested one, on
null data sets (labels independent of every modality) and on the neutral setting, side by side in this run.

Usage: python benchmarks/fusion_leak.py [--datasets 50] [--patients 200] [--features 30]

Each data set has three modalities of `--features` noise features (null: the label is independent of all of
them). Each modality's base model is a weakly regularised logistic regression (a stand-in for a modality
plugin's model: fast, and prone to the fold artefact a deep model has too), fitted on the same patient-grouped
folds and inner folds cardio's split makes (`cardio.data.make_folds` with `cv.inner_folds`).

- naive: for each outer fold, a logistic stacker fitted on the other folds' pooled out-of-fold scores, applied to
  the fold's own out-of-fold scores. Each training score came from a base model fitted with the scored fold's
  labels, so the stacker learns the folds' label artefacts.
- nested: `cardio_fusion.fuse.fuse_fold`, the code `cardio fuse` runs: each fold's stacker sees inner-fold scores only.

It prints, over the data sets, the mean pooled AUC of each, its spread, and how often the 95% DeLong CI lies
above or below 0.5 (2.5% each for fixed scores), beside one modality's own recalibrated out-of-fold scores: a
pooled out-of-fold AUC varies more than DeLong assumes (each fold's model adds its own offset), with or without
fusion, and that row shows how much. Then one neutral data set (only the first modality carries response)
gives fused against that modality, whose ΔAUC CI should cover 0.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from cardio.data import make_folds
from cardio_fusion.fuse import Modality, fuse_fold
from cardio_stats import TestResult, delong_ci, delong_test

NAMES = ["ecg", "spect", "echo"]
CV = {"method": "kfold", "folds": 5, "repeats": 1, "stratify": True, "inner_folds": 4}


def _scores(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> np.ndarray:
    model = LogisticRegression(C=10.0, max_iter=2000).fit(x[train], y[train])
    return model.predict_proba(x[test])[:, 1]


def _modality(name: str, x: np.ndarray, table: pd.DataFrame, folds) -> Modality:
    y = table["label"].to_numpy()
    outer, inner = [], []
    for f in folds:
        outer.append(pd.DataFrame({"patient_id": table["patient_id"].iloc[f.test], "fold": f.name,
                                   "y": y[f.test], "score": _scores(x, y, f.train, f.test)}))
        for g in f.inner:
            inner.append(pd.DataFrame({"patient_id": table["patient_id"].iloc[g.test], "fold": f.name,
                                       "inner_fold": g.name,
                                       "y": y[g.test], "score": _scores(x, y, g.train, g.test)}))
    return Modality(name, Path(name), "benchmark", "logistic", {"cv": CV}, pd.concat(outer), pd.concat(inner))


def _naive(mods: list[Modality], fold: str) -> pd.DataFrame:
    """A stacker on the pooled out-of-fold scores of the other folds, applied to this fold's."""
    wide = pd.concat([m.outer.set_index("patient_id")[["score"]].rename(columns={"score": m.name}) for m in mods],
                     axis=1)
    first = mods[0].outer.set_index("patient_id")
    train, test = first["fold"] != fold, first["fold"] == fold
    lr = LogisticRegression(max_iter=1000).fit(wide[train].to_numpy(), first.loc[train, "y"].to_numpy())
    return pd.DataFrame({"y": first.loc[test, "y"], "score": lr.predict_proba(wide[test].to_numpy())[:, 1]})


def one(seed: int, n: int, p: int, weights: tuple[float, ...] = (0.0, 0.0, 0.0)) -> dict:
    rng = np.random.default_rng(seed)
    drive = rng.normal(size=(n, 3))
    y = (rng.random(n) < 1 / (1 + np.exp(-drive @ np.array(weights)))).astype(int)
    table = pd.DataFrame({"patient_id": [f"p{i:04d}" for i in range(n)], "record_id": [f"r{i}" for i in range(n)],
                          "label": y})
    folds = make_folds(table, CV, "label", seed)
    xs = []
    for j in range(3):
        x = rng.normal(size=(n, p))
        x[:, :3] += drive[:, [j]]  # the drive, read with noise (nothing, where its weight is 0)
        xs.append(x)
    mods = [_modality(name, x, table, folds) for name, x in zip(NAMES, xs)]
    nested = pd.concat([fuse_fold(mods, f.name, None)[0] for f in folds])
    fused = nested[nested["model"] == "fused"].set_index("patient_id")
    first = nested[nested["model"] == NAMES[0]].set_index("patient_id").loc[fused.index]
    naive = pd.concat([_naive(mods, f.name) for f in folds])
    out: dict[str, tuple[float, float | None, float | None] | TestResult] = {}
    for what, yy, s in (("naive", naive["y"], naive["score"]), ("nested", fused["y_true"], fused["y_score"]),
                        (f"{NAMES[0]} alone", first["y_true"], first["y_score"])):
        est = delong_ci(yy.to_numpy(), s.to_numpy())
        out[what] = (est.estimate, est.ci_low, est.ci_high)
    out["vs_first"] = delong_test(fused["y_true"].to_numpy(), fused["y_score"].to_numpy(),
                                  first["y_score"].to_numpy())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", type=int, default=50)
    ap.add_argument("--patients", type=int, default=200)
    ap.add_argument("--features", type=int, default=30)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: checks the script runs")
    args = ap.parse_args()
    if args.smoke:
        args.datasets, args.patients, args.features = 1, 60, 5
    runs = [one(s, args.patients, args.features) for s in range(args.datasets)]
    print(f"{args.datasets} null data sets, {args.patients} patients, 3 modalities x {args.features} noise features, "
          f"{CV['folds']} outer x {CV['inner_folds']} inner folds")
    print("| scores | mean pooled AUC | SD | 95% CI above 0.5 | 95% CI below 0.5 |")
    print("|---|---|---|---|---|")
    for what in ("naive", "nested", f"{NAMES[0]} alone"):
        aucs = np.array([r[what][0] for r in runs])
        above, below = np.mean([r[what][1] > 0.5 for r in runs]), np.mean([r[what][2] < 0.5 for r in runs])
        print(f"| {what} | {aucs.mean():.3f} | {aucs.std(ddof=1):.3f} | {above:.0%} | {below:.0%} |")
    aucs_naive = np.array([r["naive"][0] for r in runs])
    aucs_nested = np.array([r["nested"][0] for r in runs])
    print(f"optimism of the naive stacker over the nested one: {np.mean(aucs_naive - aucs_nested):+.3f} AUC "
          f"(mean over data sets)")
    neutral = one(1000, args.patients, args.features, weights=(2.0, 0.0, 0.0))
    t = neutral["vs_first"]
    print(f"neutral setting (only {NAMES[0]} carries response): fused {neutral['nested'][0]:.3f}, fused - {NAMES[0]} "
          f"ΔAUC {t.extra['diff']:+.3f} [{t.extra['diff_ci_low']:+.3f}, {t.extra['diff_ci_high']:+.3f}], "
          f"p {t.p_value:.3f}")


if __name__ == "__main__":
    main()
