"""What `cardio fuse` adds, and what it costs when a modality is noise, over seeds; and its intervals' coverage.

Whole runs (the README's multimodal sequence, per seed and setting): `cardio synthetic-crt`, one run per modality
plugin with inner folds, `cardio fuse`. `planted`: each modality carries its own part of response. `neutral`: only
the first modality (the ECG) carries it; the others' drives are independent of response (`overlap` 0), so they are
pure noise (truth.json's ideal-reader AUC of each drive says so, and is printed). For every seed it prints the fused
minus ECG cross-validated ΔAUC with its corrected t interval (the performance section's paired row), for the fusion
`cardio fuse` fits now (modality weights >= 0, `cardio_stats.fit_stacker`) and, on the same base runs and folds,
for the unconstrained logistic stacker it replaced (`fuse_fold(..., nonnegative=False)`); then the mean over seeds
and how often each interval covers 0.

    python benchmarks/crt_fusion.py --seeds 5 [--patients 160] [--weight 3] [--plugins ecg_transfer spect_polar]
        [--settings planted neutral] [--out DIR]

`--out DIR` keeps the runs, and a second call with the same DIR reuses the base runs it finds finished (fuse only).

Coverage (`--simulate N`): N data sets per setting through the code `cardio fuse` runs after reading the runs
(`cardio_fusion.fuse.fuse_fold`, then `cardio_stats.evaluate_predictions`, the performance section's estimates), with
cheap base models in cardio's nested split (a logistic regression per modality, outer and inner folds of
`cardio.data.make_folds`): `null` (no modality carries response: the fused AUC's interval should cover 0.5 in 95%),
`neutral` (only the first does: the fused - first ΔAUC interval should cover 0, and the mean ΔAUC should be near
0) and `planted` (each carries its own part: the gain over the first), for both stackers.

    python benchmarks/crt_fusion.py --simulate 200 [--patients 160] [--modalities 2] [--seed 0]

Measured (issue 38; `--simulate 200 --modalities 2`, seed 0 at 100 patients, seed 1000 at 40; 2 cores at load ~5):
the fused AUC's interval covered 0.5 in 97.5% (100 patients) and 98.5% (40) of null data sets with weights >= 0
(94.0%, 94.5% unconstrained); the neutral fused - first ΔAUC interval covered 0 in 99.5% and 100.0%, its mean
-0.008 and -0.012 (unconstrained -0.014, -0.021). Planted (both carry): mean gain +0.064 (100) and +0.071 (40),
found (interval above 0) in 11.5% and 6.5% of data sets: little power at these sizes. At 300 patients (seeds 2000 and
3000, 100 each): null fused AUC covered 0.5 in 98.5% (97.0% unconstrained), neutral ΔAUC covered 0 in 100.0%,
mean -0.002.

Both stackers are compared with one reference. Until then `fuse_fold(..., nonnegative=False)` also refitted the
single-modality rows without the sign constraint, so "mean first AUC" differed between the stackers (0.485 against
0.513 in null data): a one-modality recalibration whose inner slope is negative (89 of 150 folds of 30 null data
sets at 160 patients) reversed the modality's ranking unconstrained and made it constant (AUC 0.5) with weights
>= 0. On those 30 data sets the first modality's cross-validated AUC was 0.477 on its own scores, 0.502 and 0.490
as the two recalibrations, now 0.490 under both. `--simulate 20 --patients 100 --seed 0`, first AUC before/after:
null 0.495 and 0.501 / 0.501 and 0.501, neutral 0.745 and 0.748 / 0.748 and 0.748, planted 0.649 and 0.662 / 0.662
and 0.662 (unconstrained and weights >= 0); the weights >= 0 rows are unchanged, and the unconstrained rows of the
measurements above were taken against their own reference.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cardio_stats import format_ci

PLUGINS = ["ecg_transfer", "spect_polar", "mmode_septal_flash"]
# Each plugin's fast settings for a 5-fold run with inner folds (measured in each plugin's README).
WRITE = ["ecg_transfer:ecg_transfer.fs=250", "ecg_transfer:ecg_transfer.synthetic.seconds=5"]
RUN = {
    "ecg_transfer": ["profile=fast"],
    # the paper's 1,000 AE iterations on a coarser grid: clinical+ae reads the planted angle at AUC 0.673 on the
    # 200-patient cohort (100 iterations: 0.660; 400: 0.676), chosen on that single-modality AUC alone
    "spect_polar": ["spect_polar.phase.rings=16", "spect_polar.phase.sectors=32", "spect_polar.autoencoder.hidden=64",
                    "spect_polar.autoencoder.features=16", "spect_polar.autoencoder.batch_size=32"],
    "mmode_septal_flash": ["label=responder", "mmode_septal_flash.model.variants=[cropped]",
                           "mmode_septal_flash.mmode.offsets=1", "mmode_septal_flash.model.input_size=32",
                           "mmode_septal_flash.train.epochs=3", "mmode_septal_flash.train.batch_size=16",
                           "mmode_septal_flash.model.val_augment=false"],
}
COMMON = ["cv.method=kfold", "cv.folds=5", "cv.inner_folds=2", "explain=false", "final_model=false",
          "report.figures=false"]
# --seeds: the settings over several seeds, made cheaper (the AE at 200 iterations, one epoch fewer for the M-mode)
FAST = {"spect_polar": ["spect_polar.autoencoder.iterations=200"],
        "mmode_septal_flash": ["mmode_septal_flash.train.epochs=2"]}

# --smoke: ecg_transfer and spect_polar only, two folds, the smallest inputs (checks the sequence runs, not what it
# finds); fusion reads the folds' predictions, so no final model, explanation or figures either
SMOKE = {"ecg_transfer": ["cv.folds=2", "ecg_transfer.pretrain.enabled=false", "ecg_transfer.finetune.epochs=1",
                          "stats.n_resamples=100", "final_model=false", "explain=false", "report.figures=false"],
         "spect_polar": ["cv.folds=2", "spect_polar.autoencoder.iterations=20", "stats.n_resamples=100",
                         "final_model=false", "explain=false", "report.figures=false"]}
CARRYING = PLUGINS[0]  # the modality the comparison is made with, fixed before any result: the neutral one's carrier


def _cardio(*args: str, env: dict) -> float:
    started = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "cardio.cli", *args], env=env, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"cardio {' '.join(args[:3])} failed:\n{res.stderr[-3000:]}")
    return time.perf_counter() - started


def _sets(items: list[str]) -> list[str]:
    return [a for s in items for a in ("--set", s)]


def one(setting: str, n: int, root: Path, env: dict, weight: float = 1.2, extra: dict | None = None,
        seed: int = 0, plugins: list[str] = PLUGINS) -> dict:
    """One seed of one setting: the cohort, the base runs (reused when finished in `root`), and `cardio fuse`."""
    cohort = root / setting / "cohort"
    times = {}
    if not (cohort / "truth.json").is_file():
        shutil.rmtree(cohort, ignore_errors=True)
        times["synthetic-crt"] = _cardio("synthetic-crt", "--out", str(cohort), "--plugins", ",".join(plugins),
                                         "--patients", str(n), "--setting", setting, "--missing", "0.1",
                                         "--weight", str(weight), "--seed", str(seed), *_sets(WRITE), env=env)
    runs = []
    for p in plugins:
        out = root / setting / p
        if not (out / "metrics.json").is_file():
            shutil.rmtree(out, ignore_errors=True)
            times[p] = _cardio("run", "--plugin", p, "--out", str(out), "--seed", str(seed), *_sets(
                [f"cohort.dir={cohort / p}", f"cv.patients={cohort / 'patients.csv'}", *COMMON, *RUN[p],
                 *(extra or {}).get(p, [])]), env=env)
        runs.append(out)
    fused = root / setting / "fused"
    shutil.rmtree(fused, ignore_errors=True)
    times["fuse"] = _cardio("fuse", *map(str, runs), "--out", str(fused), "--clinical", str(cohort / "ecg_transfer" /
                            "cohort.csv"), "--guideline", "lbbb == 1 and qrs_ms >= 150", env=env)
    metrics = json.loads((fused / "metrics.json").read_text())
    truth = json.loads((cohort / "truth.json").read_text())
    return {"truth": truth, "metrics": metrics, "times": times, "before": unconstrained(runs)}


def unconstrained(runs: list[Path]) -> dict:
    """The fused - ECG cross-validated ΔAUC of the unconstrained logistic stacker, on the same runs and folds."""
    from cardio_fusion.fuse import fuse_fold, read_modality
    from cardio_stats import StatsError, cv_auc_difference

    read = [m for m, _ in (read_modality(r, None, None) for r in runs)]
    mods = [m for m in read if m is not None]
    if len(mods) < len(read):
        sys.exit(f"cannot read the runs {runs} back")
    folds = sorted(set(mods[0].outer["fold"]))
    pred = pd.concat([fuse_fold(mods, f, None, nonnegative=False)[0] for f in folds])
    wide = pred.pivot_table(index=["patient_id", "fold", "y_true"], columns="model", values="y_score")
    wide = wide.dropna(subset=["fused", CARRYING]).reset_index()
    try:
        d = cv_auc_difference(wide["y_true"].to_numpy(), wide["fused"].to_numpy(), wide[CARRYING].to_numpy(),
                              wide["fold"].to_numpy())
    except StatsError as e:  # fewer than 5 folds (--smoke): no estimate, and why
        return {"diff": None, "low": None, "high": None, "why": str(e)}
    return {"diff": d.estimate, "low": d.ci_low, "high": d.ci_high}


def _headline(metrics: dict) -> dict[str, dict]:
    from cardio_stats import headline_auc

    models = {e["model"] for e in metrics["estimates"] if e.get("section") == "Performance" and e["metric"] == "auc"}
    return {m: e for m in sorted(models) if (e := headline_auc(metrics["estimates"], model=m)) is not None}


def fused_vs_carrying(metrics: dict) -> dict:
    """The performance section's paired row of fused against the ECG: the cross-validated ΔAUC and interval."""
    from cardio_stats import paired_test

    t = paired_test([t for t in metrics["tests"] if t.get("section") == "Performance"], "fused", CARRYING,
                    interval="cv")
    if t is None or t["diff"] is None:
        sys.exit("the fused run has no cross-validated paired row of fused against the ECG")
    return {"diff": t["diff"], "low": t["low"], "high": t["high"], "p_holm": t["p_holm"]}


def show_seed(setting: str, seed: int, r: dict) -> None:
    aucs = _headline(r["metrics"])
    print(f"\n### {setting}, seed {seed}: {r['truth']['n_patients']} patients, weights {r['truth']['weights']}, "
          f"ideal-reader AUC of each drive {r['truth']['auc_of_drive']}, missing {r['truth']['missing']}")
    print("cross-validated AUC [corrected t]: " + "; ".join(
        f"{m} {format_ci(e)}" for m, e in aucs.items()))
    print("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in r["times"].items()))


def _cell(d: dict) -> str:
    if d["diff"] is None:  # fewer than 5 folds (--smoke): the unconstrained stacker's difference is not formed
        return f"– ({d.get('why', 'no estimate')})"
    if d["low"] is None:  # fewer than 5 folds (--smoke): no interval
        return f"{d['diff']:+.3f} (no interval)"
    return f"{d['diff']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]"


def _covers(d: dict) -> bool:
    return d["low"] is not None and d["low"] <= 0.0 <= d["high"]


def _above(d: dict) -> bool:
    return d["low"] is not None and d["low"] > 0


def summary(setting: str, results: dict[int, dict]) -> None:
    """Per seed and on average: fused - ECG under both stackers, and how often each interval covers 0."""
    print(f"\n## {setting}: fused − {CARRYING} cross-validated ΔAUC [95% corrected t], per seed")
    print(f"| seed | {CARRYING} AUC | fused AUC (weights >= 0) | ΔAUC, unconstrained stacker (before) | "
          "ΔAUC, weights >= 0 (now) |")
    print("|---|---|---|---|---|")
    after = {s: fused_vs_carrying(r["metrics"]) for s, r in results.items()}
    for s, r in results.items():
        aucs = _headline(r["metrics"])
        print(f"| {s} | {aucs[CARRYING]['estimate']:.3f} | {aucs['fused']['estimate']:.3f} | "
              f"{_cell(r['before'])} | {_cell(after[s])} |")
    k = len(results)
    for name, ds in (("unconstrained (before)", [r["before"] for r in results.values()]),
                     ("weights >= 0 (now)", list(after.values()))):
        diffs = [d["diff"] for d in ds if d["diff"] is not None]
        mean = f"{np.mean(diffs):+.4f} over {len(diffs)} of {k} seeds" if diffs else f"none formed over {k} seeds"
        print(f"{name}: mean ΔAUC {mean}; interval covers 0 in "
              f"{sum(map(_covers, ds))}/{k}, lies above 0 in {sum(_above(d) for d in ds)}/{k}")


def readme_table(first: dict[str, dict], seed: int) -> None:
    """The README's table, from each setting's run at one seed: the intervals the fused report leads with."""
    label = {"planted": "planted (each modality carries its own part)",
             "neutral": "neutral (only the ECG carries response)"}
    print(f"\n## the README's table (seed {seed})")
    print("| setting | fused AUC | best single modality (ECG) | fused − ECG ΔAUC [95% CI], p (Holm over SPECT, echo, "
          "ECG, guideline) |")
    print("|---|---|---|---|")
    for setting, r in first.items():
        aucs, d = _headline(r["metrics"]), fused_vs_carrying(r["metrics"])
        cells = [format_ci(a) for a in (aucs["fused"], aucs[CARRYING])]
        p = "–" if d["p_holm"] is None else f"{d['p_holm']:.3g}"  # no test without an interval
        print(f"| {label.get(setting, setting)} | {cells[0]} | {cells[1]} | {_cell(d).replace('-', '−')}, p {p} |")


# ---- coverage through cardio's fusion and statistics code, with cheap base models ----

def _base_scores(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=0.05, max_iter=2000).fit(x[train], y[train])
    return model.predict_proba(x[test])[:, 1]


def simulated(seed: int, n: int, weights: list[float], noise_sd: float = 1.5, features: int = 10):
    """Modalities (cardio_fusion.fuse.Modality) of one data set: latent z_m ~ N(0, 1), response ~ logistic(sum w_m z_m);
    modality m reads z_m with noise in 2 of its `features` columns; its model is scored in cardio's nested split."""
    from cardio.data import make_folds
    from cardio_fusion.fuse import Modality

    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, len(weights)))
    y = (rng.random(n) < 1 / (1 + np.exp(-z @ np.asarray(weights)))).astype(int)
    ids = np.array([f"p{i:04d}" for i in range(n)])
    cv = {"method": "kfold", "folds": 5, "repeats": 1, "stratify": True, "inner_folds": 2}
    folds = make_folds(pd.DataFrame({"patient_id": ids, "record_id": ids, "label": y}), cv, "label", seed)
    mods = []
    for j in range(len(weights)):
        x = rng.normal(size=(n, features))
        x[:, :2] = z[:, [j]] + noise_sd * rng.normal(size=(n, 2))
        outer = [pd.DataFrame({"patient_id": ids[f.test], "fold": f.name, "y": y[f.test],
                               "score": _base_scores(x, y, f.train, f.test)}) for f in folds]
        inner = [pd.DataFrame({"patient_id": ids[g.test], "fold": f.name, "inner_fold": g.name, "y": y[g.test],
                               "score": _base_scores(x, y, g.train, g.test)}) for f in folds for g in f.inner]
        mods.append(Modality(f"m{j}", Path(f"m{j}"), "simulated", "logistic", {"cv": cv}, pd.concat(outer),
                             pd.concat(inner)))
    return mods, [f.name for f in folds]


def _evaluate(mods: list, folds: list[str], nonnegative: bool) -> tuple[dict, dict]:
    """The fused AUC row and the fused - first paired row, as `cardio fuse`'s performance section computes them."""
    from cardio_fusion.fuse import fuse_fold
    from cardio_stats import evaluate_predictions, headline_auc, paired_test

    pred = pd.concat([fuse_fold(mods, f, None, nonnegative)[0] for f in folds], ignore_index=True)
    pred = pred.assign(record_id=pred["patient_id"], task="y", kind="binary")
    estimates, tests = evaluate_predictions(pred, n_resamples=100, reference="fused")
    head, paired = headline_auc(estimates, model="fused"), paired_test(tests, "fused", mods[0].name, interval="cv")
    assert head is not None and paired is not None  # the fused model and its test against the first are evaluated
    return head, paired


def simulate(datasets: int, n: int, modalities: int, seed: int) -> None:
    """Coverage of the fused AUC (null) and of the fused - first ΔAUC (neutral) intervals, both stackers."""
    print(f"{datasets} simulated data sets per setting, {n} patients, {modalities} modalities, 5 outer x 2 inner "
          "folds; through cardio_fusion.fuse.fuse_fold and cardio_stats.evaluate_predictions")
    print("| setting | stacker | mean fused AUC | mean first AUC | mean ΔAUC fused − first | SD | ΔAUC interval covers "
          "0 | fused AUC interval covers 0.5 |")
    print("|---|---|---|---|---|---|---|---|")
    for setting, weights in (("null", [0.0] * modalities), ("neutral", [3.0] + [0.0] * (modalities - 1)),
                             ("planted", [3.0] * modalities)):
        rows: dict[bool, list] = {False: [], True: []}
        for i in range(datasets):
            mods, folds = simulated(seed + i, n, weights)
            for nonneg in (False, True):
                auc, diff = _evaluate(mods, folds, nonneg)
                rows[nonneg].append((auc["estimate"], auc["ci_low"] <= 0.5 <= auc["ci_high"], diff["diff"],
                                     diff["low"] <= 0 <= diff["high"], diff["diff"] is not None))
        for nonneg, r in rows.items():
            a = np.array([x[:4] for x in r], dtype=float)
            first = a[:, 0] - a[:, 2]
            stacker = "weights >= 0 (now)" if nonneg else "unconstrained (before)"
            sd = f"{a[:, 2].std(ddof=1):.4f}" if datasets > 1 else "–"  # one data set (--smoke): no spread
            print(f"| {setting} | {stacker} | {a[:, 0].mean():.3f} | {first.mean():.3f} | {a[:, 2].mean():+.4f} | "
                  f"{sd} | {a[:, 3].mean():.1%} | {a[:, 1].mean():.1%} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--patients", type=int, default=300)
    ap.add_argument("--settings", nargs="+", default=["planted", "neutral"])
    ap.add_argument("--plugins", nargs="+", default=PLUGINS, choices=PLUGINS,
                    help="the modalities (the first, ecg_transfer, carries response in the neutral setting)")
    ap.add_argument("--weight", type=float, default=1.2, help="cardio synthetic-crt --weight")
    ap.add_argument("--seeds", type=int, default=0, help="run seeds 1..N (the settings made cheaper: FAST); 0: seed "
                                                         "0 at the README's settings")
    ap.add_argument("--out")
    ap.add_argument("--simulate", type=int, default=0, help="N simulated data sets per setting (coverage); no runs")
    ap.add_argument("--modalities", type=int, default=2, help="--simulate: modalities, the first carrying response")
    ap.add_argument("--seed", type=int, default=0, help="--simulate: first data set's seed")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: checks the script runs")
    args = ap.parse_args()
    if args.simulate:
        simulate(args.simulate, args.patients, args.modalities, args.seed)
        return
    if args.smoke:  # two modalities, the fewest patients the nested folds take
        args.patients, args.settings, args.seeds, args.plugins = 60, ["neutral"], 0, PLUGINS[:2]
        simulate(1, 60, 2, 0)
    seeds = list(range(1, args.seeds + 1)) or [0]
    extra = SMOKE if args.smoke else (FAST if args.seeds else None)
    root = Path(args.out or tempfile.mkdtemp(prefix="crt_fusion_"))
    if args.plugins[0] != CARRYING or len(args.plugins) < 2:
        sys.exit(f"--plugins: {CARRYING} first, then at least one other")
    print(f"multimodal CRT fusion, {args.patients} patients, {', '.join(args.plugins)}, folds 5 x inner 2, weight "
          f"{args.weight:g}, seeds {seeds}, in {root}")
    first = {}
    for setting in args.settings:
        results = {}
        for seed in seeds:
            env = {**os.environ, "CARDIO_CACHE": str(root / "cache")}
            results[seed] = one(setting, args.patients, root / f"seed{seed}", env, args.weight, extra, seed,
                                args.plugins)
            show_seed(setting, seed, results[seed])
        summary(setting, results)
        first[setting] = results[seeds[0]]
    readme_table(first, seeds[0])
    if args.smoke and not args.out:  # a smoke run's folder is not a result (CI runs it each time)
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
