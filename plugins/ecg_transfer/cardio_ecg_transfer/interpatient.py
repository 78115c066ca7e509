"""The inter-patient protocol of the pretraining task: grouped cross-validation inside DS1, and the ledgered DS2 look.

Every choice (side features, prior strength, caps, epochs) is made on DS1: `ds1_cv` holds out
whole DS1 records per fold and fits a pretraining (with its own record-level validation split)
on the rest. `ds2_look` is the one function that predicts DS2, the untouched test set: it fits on
DS1, predicts every DS2 beat and appends the result (UTC date, git commit, config hash, seed) to
the ledger `benchmarks/ledgers/aami_ds2.csv`, so that every look at the test set is on record.
`external_look` does the same for a beat database never used in development (databases.py: svdb,
incartdb), fitted on DS1 as the DS2 looks were, into a ledger of its own.
"""
from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from cardio import CardioError
from cardio_ecg_transfer import aami, databases, pretrain

#: Columns of the DS2 ledger, in order.
LEDGER_COLUMNS = ("look", "utc_date", "git_commit", "tree", "config_hash", "seed", "status", "records", "n_beats",
                  "macro_f1", "balanced_accuracy", "accuracy", "se_N", "ppv_N", "se_S", "ppv_S", "se_V", "ppv_V",
                  "se_F", "ppv_F", "prior_strength", "side_features", "note")
#: Protocols: "validated" is pretrain.fit_pretraining as a plugin run does it (record-level validation split, early
#: stopping, prior strength searched on the validation records); "fused" fits every training record, class-balanced,
#: a fixed number of epochs, and decides by a rule fixed beforehand (argmax of the summed log-probabilities of the
#: balanced CNN and the balanced side-feature logistic regression), so nothing is chosen on a few records.
PROTOCOLS = ("validated", "fused")
#: Decision rules of the fused protocol, all from one fit: the CNN alone, the side features alone, both summed.
FUSED_RULES = ("cnn", "side", "fused")
#: Sections of the plugin's config that define the pretraining (the ledger's config hash covers these, the rate and
#: the MIT-BIH lead, and nothing else).
HASHED = ("preprocess", "spectrogram", "pretrain")


def config_hash(config: dict, protocol: str = "validated") -> str:
    """First 12 hex digits of the SHA-256 of the settings that define a pretraining (seed excluded); the protocol
    counts when it is not "validated" (so earlier hashes stay the same).

    The hash is of the values, not of where the config keeps them: it hashes the dict the ledgered looks were
    hashed with (the three sections and data: {fs, mitdb_lead}, as the keys were named then), built from the
    ecg_transfer namespace, so moving keys leaves the ledger's hashes valid."""
    s = config["ecg_transfer"]
    part = {k: s[k] for k in HASHED}
    part["data"] = {k: s[k] for k in ("fs", "mitdb_lead")}
    if protocol != "validated":
        part["protocol"] = protocol
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


@dataclasses.dataclass
class FusedFit:
    """The fused protocol's fit: the balanced CNN and the balanced side-feature logistic regression."""

    model: object
    side_model: list  # pretrain.SideModel per entry of pretrain.side_models
    fit: object
    train_counts: dict
    strength: float = 0.0  # no prior correction (the ledger's prior_strength column)


def fit_fused(root: Path, records: list[str], config: dict, ctx, seed: int, name: str) -> FusedFit:
    """The fused protocol on `records`: the CNN on class-capped beats of every record (no validation split, Q left
    out, sampled with pretrain.balance_power, all pretrain.epochs), the side model on every beat of them."""
    pt = config["ecg_transfer"]["pretrain"]
    beats = pretrain.cached_beat_set(root, records, config, ctx.cache, max_per_class=pt["max_beats_per_class"],
                                     max_total=None, seed=seed, progress=ctx.progress, desc="DS1 fitting")
    train = pretrain.subset(beats, np.flatnonzero(beats.y != aami.AAMI_CLASSES.index("Q")))
    fctx = dataclasses.replace(ctx, seed=int(seed))  # the engine's sampler draws with ctx.seed
    model, fit = pretrain.train_classifier(train, None, config, fctx, int(seed), name)
    every = pretrain.cached_beat_set(root, records, config, ctx.cache, max_per_class=None, max_total=None, seed=0,
                                     progress=ctx.progress, desc="DS1 side model")
    return FusedFit(model, pretrain.fit_side_models(every, config, seed=int(seed)), fit, train.counts())


def fused_log_proba(fitted: FusedFit, beats: pretrain.BeatSet, ctx) -> dict[str, np.ndarray]:
    """(n, 5) scores of every rule of FUSED_RULES; each rule predicts the argmax of its scores.

    With several side models, "side<i>" and "fused<i>" are the rules of side model i alone (so one
    network fit per fold compares them)."""
    logits = ctx.engine.predict(fitted.model, ctx.engine.ArrayDataset(beats.inputs()), ctx).astype(np.float64)
    cnn = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    parts = [pretrain.side_log_proba(m, beats) for m in fitted.side_model]
    side = sum(parts)
    out = {"cnn": cnn, "side": side, "fused": cnn + side}
    if len(parts) > 1:
        for i, p in enumerate(parts):
            out[f"side{i}"], out[f"fused{i}"] = p, cnn + p
    return out


def _check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise CardioError(f"unknown protocol {protocol!r}; use one of {PROTOCOLS}")


def _scored(y: np.ndarray, pred: np.ndarray, rec: np.ndarray, config: dict, seed: int) -> dict:
    results = pretrain.classification_results(y, pred)
    results["ci"] = pretrain.record_bootstrap(y, pred, rec, config, seed=seed)
    results["always_n"] = pretrain.always_n(y)
    return results


def ds1_cv(config: dict, ctx, folds: int = 4, seed: int | None = None, protocol: str = "validated") -> dict:
    """Grouped (record-level) cross-validation inside DS1: per fold a pretraining fitted on the other records
    predicts every beat of the held-out records; the pooled predictions are scored with record-bootstrap CIs.

    With protocol "fused" the results are those of the fused rule, and `rules` holds every rule of FUSED_RULES
    (one fit per fold serves them all)."""
    _check_protocol(protocol)
    seed = ctx.seed if seed is None else int(seed)
    root = pretrain.mitdb_root(config, ctx)
    records = aami.ds1_records(config["ecg_transfer"]["pretrain"]["records"])
    ys, preds, recs, per_fold = [], {}, [], []
    for k, held_out in enumerate(_fold_records(records, folds, seed)):
        rest = [r for r in records if r not in held_out]
        test = pretrain.cached_beat_set(root, held_out, config, ctx.cache, max_per_class=None, max_total=None,
                                        seed=0, progress=ctx.progress, desc=f"DS1 fold {k}")  # all beats
        if protocol == "validated":
            fitted = pretrain.fit_pretraining(root, rest, config, ctx, seed=seed + 100 * k, name=f"cv{seed}-{k}")
            preds.setdefault("fused", []).append(pretrain.predict(fitted, test, ctx))
            per_fold.append({"held_out": held_out, "prior_strength": fitted.strength,
                             "epochs_run": len(fitted.fit.history), "best_epoch": fitted.fit.best_epoch})
        else:
            fused = fit_fused(root, rest, config, ctx, seed=seed + 100 * k, name=f"cv{seed}-{k}-fused")
            for rule, score in fused_log_proba(fused, test, ctx).items():
                preds.setdefault(rule, []).append(score.argmax(axis=1))
            per_fold.append({"held_out": held_out, "prior_strength": 0.0, "train_counts": fused.train_counts,
                             "epochs_run": len(fused.fit.history), "best_epoch": fused.fit.best_epoch})
        ys.append(test.y)
        recs.append(test.record)
        ctx.log.info("DS1 CV fold %d: held out %s, %s", k, held_out, per_fold[-1])
    y, rec = np.concatenate(ys), np.concatenate(recs)
    results = _scored(y, np.concatenate(preds["fused"]), rec, config, seed)
    if protocol == "fused":
        results["rules"] = {r: _scored(y, np.concatenate(p), rec, config, seed) for r, p in preds.items()}
    results["folds"] = per_fold
    results["protocol"] = protocol
    return results


def _ledger_row(results: dict, look: int, commit: str, tree: str, chash: str, seed: int, note: str,
                records: str = "DS2 (22)") -> dict:
    pc = results["per_class"]
    row = {"look": look, "utc_date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "git_commit": commit, "tree": tree, "config_hash": chash, "seed": seed, "status": "ledgered",
           "records": records, "n_beats": results["n"], "macro_f1": results["macro_f1"],
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


def ds2_look(config: dict, ctx, ledger: Path, repo: Path, seed: int, note: str = "",
             protocol: str = "validated") -> dict:
    """Fit the pretraining on DS1 (seed `seed`), predict every DS2 beat once, append the look to `ledger`.

    The only function that predicts DS2. The row is written before the results are returned.
    """
    pt = config["ecg_transfer"]["pretrain"]
    if pt["records"] not in (None, "all"):
        raise CardioError("the DS2 look trains on all of DS1 and tests on all of DS2 "
                          "(ecg_transfer.pretrain.records: null)")
    _check_protocol(protocol)
    root = pretrain.mitdb_root(config, ctx)
    if protocol == "validated":
        fitted = pretrain.fit_pretraining(root, list(aami.DS1), config, ctx, seed=seed, name=f"ds2-seed{seed}")
        described = pretrain.describe(fitted, config)
    else:
        fitted = fit_fused(root, list(aami.DS1), config, ctx, seed=seed, name=f"ds2-seed{seed}-fused")
        described = {"arch": pt["arch"], "train_counts": fitted.train_counts, "prior_strength": 0.0,
                     "epochs_run": len(fitted.fit.history), "best_epoch": fitted.fit.best_epoch,
                     "val_records": [], "protocol": protocol}
    # every DS2 beat (no sampling, so one cached set serves every seed)
    test = pretrain.cached_beat_set(root, list(aami.DS2), config, ctx.cache, max_per_class=None, max_total=None,
                                    seed=0, progress=ctx.progress, desc="DS2", test_look=True)
    if protocol == "validated":
        pred = pretrain.predict(fitted, test, ctx)
    else:
        pred = fused_log_proba(fitted, test, ctx)["fused"].argmax(axis=1)
    results = _scored(test.y, pred, test.record, config, seed)
    results.update(described)
    results["evaluated_on"] = "DS2 (all beats)"
    results["side_kinds"] = list(pt["side_features"])
    commit, tree = git_state(repo)
    look = len(read_ledger(ledger)) + 1
    chash = config_hash(config, protocol)
    append_ledger(ledger, _ledger_row(results, look, commit, tree, chash, seed, note or f"{protocol} protocol"))
    results.update({"look": look, "git_commit": commit, "tree": tree, "config_hash": chash})
    return results


def external_look(config: dict, ctx, db_root: Path, db: str, ledger: Path, repo: Path, seed: int, note: str = "",
                  fitted: FusedFit | None = None) -> dict:
    """The fused protocol fitted on all of DS1 (as its DS2 looks were; `fitted`: a fit already made) predicts every
    annotated beat of the external database `db` in `db_root` once; the look is appended to `ledger` (records
    named `db (n)`) before the results are returned. The database's records are first written as MIT-BIH's (two
    channels at the protocol's rate, .atr labels) so that the pretraining's beat reader reads them unchanged."""
    pt = config["ecg_transfer"]["pretrain"]
    if fitted is None:
        if pt["records"] not in (None, "all"):
            raise CardioError("the external look trains on all of DS1 (ecg_transfer.pretrain.records: null)")
        fitted = fit_fused(pretrain.mitdb_root(config, ctx), list(aami.DS1), config, ctx, seed=seed,
                           name=f"{db}-seed{seed}-fused")
    with tempfile.TemporaryDirectory(prefix=f"{db}-as-mitdb-") as tmp:
        names = databases.to_mitdb_layout(db_root, db, tmp, fs=float(config["ecg_transfer"]["fs"]))
        test = pretrain.build_beat_set(Path(tmp), names, config, max_per_class=None, max_total=None, seed=0,
                                       progress=ctx.progress, desc=db)
    pred = fused_log_proba(fitted, test, ctx)["fused"].argmax(axis=1)
    results = _scored(test.y, pred, test.record, config, seed)
    results.update({"arch": pt["arch"], "train_counts": fitted.train_counts, "prior_strength": 0.0,
                    "epochs_run": len(fitted.fit.history), "best_epoch": fitted.fit.best_epoch, "protocol": "fused",
                    "evaluated_on": f"{db} (all annotated beats)", "side_kinds": list(pt["side_features"]),
                    "leads": [str(x) for x in databases.database(db).leads]})
    commit, tree = git_state(repo)
    look = len(read_ledger(ledger)) + 1
    chash = config_hash(config, "fused")
    append_ledger(ledger, _ledger_row(results, look, commit, tree, chash, seed, note or "fused protocol, fitted on DS1",
                                      records=f"{db} ({len(names)})"))
    results.update({"look": look, "git_commit": commit, "tree": tree, "config_hash": chash, "records": names})
    return results
