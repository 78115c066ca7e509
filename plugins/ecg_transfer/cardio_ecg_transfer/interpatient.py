"""The inter-patient protocol of the pretraining task: grouped cross-validation inside DS1, and the ledgered DS2 look.

Every choice (side features, prior strength, caps, epochs) is made on DS1: `ds1_cv` holds out
whole DS1 records per fold and fits a pretraining (with its own record-level validation split)
on the rest. `ds2_look` is the one function that predicts DS2, the untouched test set: it fits on
DS1, predicts every DS2 beat and appends the result (UTC date, git commit, config hash, seed) to
the ledger `benchmarks/ledgers/aami_ds2.csv`, so that every look at the test set is on record.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import subprocess
from pathlib import Path

import numpy as np

from cardio import CardioError
from cardio_ecg_transfer import aami, pretrain

#: Columns of the DS2 ledger, in order.
LEDGER_COLUMNS = ("look", "utc_date", "git_commit", "tree", "config_hash", "seed", "status", "records", "n_beats",
                  "macro_f1", "balanced_accuracy", "accuracy", "se_N", "ppv_N", "se_S", "ppv_S", "se_V", "ppv_V",
                  "se_F", "ppv_F", "prior_strength", "side_features", "note")
#: Config sections that define the pretraining (the ledger's config hash covers these and nothing else).
HASHED = ("preprocess", "spectrogram", "pretrain")


def config_hash(config: dict) -> str:
    """First 12 hex digits of the SHA-256 of the settings that define a pretraining (seed excluded)."""
    part = {k: config[k] for k in HASHED}
    part["data"] = {k: config["data"][k] for k in ("fs", "mitdb_lead")}
    return hashlib.sha256(json.dumps(part, sort_keys=True, default=str).encode()).hexdigest()[:12]


def git_state(repo: Path) -> tuple[str, str]:
    """(commit, 'clean' | 'modified') of the checkout at `repo`, for the plugin and the benchmark's files."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "plugins/ecg_transfer", "benchmarks",
                                ":(exclude)benchmarks/ledgers"],  # the ledger's own new rows are no change
                               cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown", "unknown"
    return commit, "modified" if dirty else "clean"


def _fold_records(records: list[str], folds: int, seed: int) -> list[list[str]]:
    """Records shuffled by seed and dealt into `folds` groups (a record's beats stay together)."""
    if not 2 <= folds <= len(records):
        raise CardioError(f"DS1 cross-validation needs 2 to {len(records)} folds, got {folds}")
    order = np.random.default_rng(np.random.SeedSequence([seed, 11])).permutation(records).tolist()
    return [order[i::folds] for i in range(folds)]


def ds1_cv(config: dict, ctx, folds: int = 4, seed: int | None = None) -> dict:
    """Grouped (record-level) cross-validation inside DS1: per fold a pretraining fitted on the other records
    predicts every beat of the held-out records; the pooled predictions are scored with record-bootstrap CIs."""
    seed = ctx.seed if seed is None else int(seed)
    root = pretrain.mitdb_root(config, ctx)
    records = aami.ds1_records(config["pretrain"]["records"])
    ys, preds, recs, per_fold = [], [], [], []
    for k, held_out in enumerate(_fold_records(records, folds, seed)):
        rest = [r for r in records if r not in held_out]
        fitted = pretrain.fit_pretraining(root, rest, config, ctx, seed=seed + 100 * k, name=f"cv{seed}-{k}")
        test = pretrain.cached_beat_set(root, held_out, config, ctx.cache, max_per_class=None, max_total=None,
                                        seed=0, progress=ctx.progress, desc=f"DS1 fold {k}")  # all beats
        ys.append(test.y)
        preds.append(pretrain.predict(fitted, test, ctx))
        recs.append(test.record)
        per_fold.append({"held_out": held_out, "prior_strength": fitted.strength,
                         "epochs_run": len(fitted.fit.history), "best_epoch": fitted.fit.best_epoch})
        ctx.log.info("DS1 CV fold %d: held out %s, prior strength %g", k, held_out, fitted.strength)
    y, pred, rec = np.concatenate(ys), np.concatenate(preds), np.concatenate(recs)
    results = pretrain.classification_results(y, pred)
    results["ci"] = pretrain.record_bootstrap(y, pred, rec, config, seed=seed)
    results["always_n"] = pretrain.always_n(y)
    results["folds"] = per_fold
    return results


def _ledger_row(results: dict, look: int, commit: str, tree: str, chash: str, seed: int, note: str) -> dict:
    pc = results["per_class"]
    row = {"look": look, "utc_date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "git_commit": commit, "tree": tree, "config_hash": chash, "seed": seed, "status": "ledgered",
           "records": "DS2 (22)", "n_beats": results["n"], "macro_f1": results["macro_f1"],
           "balanced_accuracy": results["balanced_accuracy"], "accuracy": results["accuracy"],
           "prior_strength": results["prior_strength"], "side_features": "+".join(results["side_kinds"]),
           "note": note}
    for c in ("N", "S", "V", "F"):
        row[f"se_{c}"], row[f"ppv_{c}"] = pc[c]["se"], pc[c]["ppv"]
    return {k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()}


def read_ledger(ledger: Path) -> list[dict]:
    """The ledger's rows (empty when there is no ledger yet)."""
    if not ledger.is_file():
        return []
    with ledger.open(newline="") as f:
        return list(csv.DictReader(f))


def append_ledger(ledger: Path, row: dict) -> None:
    """Append one row (the header first when the ledger is new); each look is flushed as soon as it is made."""
    new = not ledger.is_file()
    ledger.parent.mkdir(parents=True, exist_ok=True)
    with ledger.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=LEDGER_COLUMNS)
        if new:
            w.writeheader()
        w.writerow({k: row.get(k, "") for k in LEDGER_COLUMNS})


def ds2_look(config: dict, ctx, ledger: Path, repo: Path, seed: int, note: str = "") -> dict:
    """Fit the pretraining on DS1 (seed `seed`), predict every DS2 beat once, append the look to `ledger`.

    The only function that predicts DS2. The row is written before the results are returned.
    """
    pt = config["pretrain"]
    if pt["records"] not in (None, "all"):
        raise CardioError("the DS2 look trains on all of DS1 and tests on all of DS2 (pretrain.records: null)")
    root = pretrain.mitdb_root(config, ctx)
    fitted = pretrain.fit_pretraining(root, list(aami.DS1), config, ctx, seed=seed, name=f"ds2-seed{seed}")
    # every DS2 beat (no sampling, so one cached set serves every seed)
    test = pretrain.cached_beat_set(root, list(aami.DS2), config, ctx.cache, max_per_class=None, max_total=None,
                                    seed=0, progress=ctx.progress, desc="DS2", test_look=True)
    pred = pretrain.predict(fitted, test, ctx)
    results = pretrain.classification_results(test.y, pred)
    results["ci"] = pretrain.record_bootstrap(test.y, pred, test.record, config, seed=seed)
    results["always_n"] = pretrain.always_n(test.y)
    results.update(pretrain.describe(fitted, config))
    results["evaluated_on"] = "DS2 (all beats)"
    results["side_kinds"] = list(pt["side_features"])
    commit, tree = git_state(repo)
    look = len(read_ledger(ledger)) + 1
    append_ledger(ledger, _ledger_row(results, look, commit, tree, config_hash(config), seed, note))
    results.update({"look": look, "git_commit": commit, "tree": tree, "config_hash": config_hash(config)})
    return results
