"""ecg_transfer pretraining on MIT-BIH, inter-patient (de Chazal 2004): choices by grouped CV in DS1, one ledgered
look at DS2.

Measures the pretraining task of the ecg_transfer plugin (same beat windows, spectrograms, ResNet, class-capped
sampling, the core's training loop). A plugin run pretrains with the "validated" protocol; the frozen protocol here
is "fused" (PROTOCOL), whose side models are not part of the transferred network. Two modes:

  cv     (default) grouped cross-validation inside DS1: whole records are held out per fold (with the
         validated protocol each fold's pretraining has its own record-level validation split). Every
         choice of the protocol (side features, caps, epochs, ...) is made here. DS2 is not read.
  final  the frozen protocol (FROZEN below, committed before the look; no --set) on >= 3 training seeds:
         each seed fits on DS1 and predicts every DS2 beat once, through interpatient.ds2_look, which
         appends the look to benchmarks/ledgers/aami_ds2.csv before anything is printed.
  external  the same frozen protocol, fitted on DS1 exactly as for the DS2 looks (DS2 stays a test set, never
         training data), on >= 3 seeds, predicts every annotated beat of a database never used in development
         (--db svdb | incartdb, --dir where `cardio data fetch <db>` put it) once, through
         interpatient.external_look, which appends each seed's look to benchmarks/ledgers/aami_<db>.csv before
         anything is printed. svdb (128 Hz) and incartdb (257 Hz) are resampled to 360 Hz; incartdb's lead II is
         read as MIT-BIH's MLII and V1 as its second channel (databases.py). A database whose ledger already holds
         a look of this protocol is refused: the first look is its result.

The headline is macro F1, balanced accuracy and per-class Se / +P with 95% CIs whose units are records
(beats of one record are not independent), beside the "always N" baseline and published inter-patient
results. Goal (final, mean over seeds): V Se >= 0.90 with V +P >= 0.90, and S Se >= 0.60.

    python benchmarks/aami_interpatient.py                             # DS1 CV of the frozen protocol
    python benchmarks/aami_interpatient.py --folds 3 --set ecg_transfer.pretrain.side_models=null
    python benchmarks/aami_interpatient.py --mode final --seeds 0 1 2  # the ledgered DS2 look
    cardio data fetch svdb --dir data/svdb                             # needs internet (PhysioNet)
    python benchmarks/aami_interpatient.py --mode external --db svdb --dir data/svdb --seeds 0 1 2

Issue 10, first comparison (rule fixed before any of its runs): candidates were the validated protocol frozen at
3fdc5b8 (balance_power 0.5: now `--protocol validated --set ecg_transfer.pretrain.balance_power=0.5 --set
ecg_transfer.pretrain.side_features=[rr,shape] --set ecg_transfer.pretrain.side_models=null`) and the fused protocol
with one logistic side model on [rr, shape] (a970518). Rule: the highest DS1 grouped 3-fold CV macro F1, mean over
seeds 0, 1, 2. Fused won (0.497 +- 0.030 against 0.434 +- 0.031).

Second comparison (bb5ef65; candidates and rule fixed before its runs, one network fit per fold serving all three):
the fused protocol with side models (a) logistic on [rr, shape] (a970518, measured above), (b) gradient boosting on
[rr, shape, two_lead], (c) both, log-probabilities added; the network's side input is [rr, shape, two_lead] in (b)
and (c). Rule: the highest mean DS1 grouped 3-fold CV macro F1 over seeds 0, 1, 2. (c) won: 0.565 +- 0.021 against
(b) 0.551 +- 0.010 and (a) 0.497 +- 0.030 (FROZEN below; (a)'s logistic model beside this run's network,
whose side input is [rr, shape, two_lead], gives 0.521 +- 0.023). The side models alone (not candidates: no
network) give 0.577 +- 0.041.

When the DS2 look is made: once per frozen protocol, after its DS1 comparison, whatever its DS1 CV figures. (Until
bb5ef65 the rule was "only if the DS1 CV means meet the goal"; it left the frozen protocol with no test-set figure at
all, so it was changed before this look, not after one.)

The protocol and its ledger (this file, so that no plugin module writes ledgers or runs git):
Every choice (side features, prior strength, caps, epochs) is made on DS1: `ds1_cv` holds out
whole DS1 records per fold and fits a pretraining (with its own record-level validation split)
on the rest. `ds2_look` is the one function that predicts DS2, the untouched test set: it fits on
DS1, predicts every DS2 beat and appends the result (UTC date, git commit, config hash, seed) to
the ledger `benchmarks/ledgers/aami_ds2.csv`, so that every look at the test set is on record.
`external_look` does the same for a beat database never used in development (databases.py: svdb,
incartdb), fitted on DS1 as the DS2 looks were, into a ledger of its own.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from cardio import CardioError, engine, write_text_atomic
from cardio.engine import FitResult
from cardio_ecg_transfer import aami, beat_metrics, beat_set, databases, pretrain, side_models
from cardio_ecg_transfer.resnet import SpectrogramResNet
from cardio_testing.harness import context, plugin_config

REPO = Path(__file__).resolve().parents[1]
LEDGER = REPO / "benchmarks" / "ledgers" / "aami_ds2.csv"
#: The frozen CPU-size protocol (issue 10): at most 2,000 beats per class of the training records (every S, V, F
#: beat; Q left out), class-balanced sampling (balance_power 1), 6 epochs, no validation split, no prior correction;
#: the decision is the argmax of the summed log-probabilities of the balanced CNN (side input [rr, shape, two_lead])
#: and two class-balanced side models fitted on every beat of the training records: a logistic regression on
#: [rr, shape] and gradient boosting on [rr, shape, two_lead]. Chosen by the second comparison above, DS1 grouped
#: 3-fold CV, mean +- SD over seeds 0, 1, 2: macro F1 0.565 +- 0.021, S Se 0.502, V Se 0.923, V +P 0.826.
#: prior_strength, val_fraction and patience apply to "validated" only.
FROZEN = ("ecg_transfer.pretrain.max_beats_per_class=2000", "ecg_transfer.pretrain.max_eval_beats=null",
          "ecg_transfer.pretrain.epochs=6", "ecg_transfer.pretrain.patience=3", "ecg_transfer.pretrain.batch_size=64",
          "ecg_transfer.pretrain.side_features=[rr,shape,two_lead]",
          "ecg_transfer.pretrain.side_models=[{model: logistic, features: [rr, shape]}, "
          "{model: boosting, features: [rr, shape, two_lead]}]",
          "ecg_transfer.pretrain.val_fraction=0.2", "ecg_transfer.pretrain.prior_strength=null",
          "ecg_transfer.pretrain.balance_power=1")
#: PROTOCOLS: how the network is fitted and how it decides (see FROZEN).
PROTOCOL = "fused"
GOALS = {"V Se": 0.90, "V +P": 0.90, "S Se": 0.60}
#: Published DS1 -> DS2 results (percent), each figure with the key of the source it was read from here
#: (PUBLISHED_SOURCES). The two papers are not in ../shared/papers and the search tools did not find their tables, so
#: no table or page is claimed; a figure that no source read here states is left out (printed "–").
PUBLISHED: dict[str, dict[str, tuple[float, str]]] = {
    "de Chazal et al. 2004 (IEEE TBME 51(7):1196-1206), LD, RR + morphology":
        {"accuracy": (86.2, "b"), "S Se": (75.9, "a"), "S +P": (38.5, "a"), "V Se": (77.7, "a"), "V +P": (81.9, "a")},
    "Mondejar-Guerra et al. 2019 (BSPC 47:41-48), SVM ensemble":
        {"accuracy": (94.5, "b"), "S Se": (78.0, "a"), "S +P": (49.5, "a"), "V Se": (94.7, "a")},
}
PUBLISHED_SOURCES = {
    "a": "as docs/benchmarks/ecg_transfer.md has cited it since the AAMI benchmark was written; the paper's table and "
         "page not confirmed here",
    "b": "the Acc. column of 'Comparison with state-of-the-art on MITBIH database' in the README of "
         "github.com/mondejar/ecg-classification (Mondejar-Guerra's code for the 2019 paper; its ensemble 0.945, de "
         "Chazal 0.862); the paper's own table not confirmed here",
}


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
    """(commit, 'clean' | 'modified') of the checkout at `repo`, for the plugin and the benchmark's files; in a copy
    of the tree without git's folder (a machine the files were copied to), $CARDIO_GIT_COMMIT names the commit it
    was copied from ('copied': the ledger cannot vouch for the files' state)."""
    if not (repo / ".git").exists() and os.environ.get("CARDIO_GIT_COMMIT"):
        return os.environ["CARDIO_GIT_COMMIT"], "copied"
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

    model: SpectrogramResNet
    side_model: list  # side_models.SideModel per entry of pretrain.side_models
    fit: FitResult
    train_counts: dict
    strength: float = 0.0  # no prior correction (the ledger's prior_strength column)


def fit_fused(root: Path, records: list[str], config: dict, ctx, seed: int, name: str,
              max_beats: int | None = None) -> FusedFit:
    """The fused protocol on `records`: the CNN on class-capped beats of every record (no validation split, Q left
    out, sampled with pretrain.balance_power, all pretrain.epochs), the side model on every beat of them (`max_beats`:
    at most that many, --smoke)."""
    pt = config["ecg_transfer"]["pretrain"]
    beats = beat_set.cached_beat_set(root, records, config, ctx.cache, max_per_class=pt["max_beats_per_class"],
                                     max_total=None, seed=seed, progress=ctx.progress, desc="DS1 fitting")
    train = beat_set.subset(beats, np.flatnonzero(beats.y != aami.AAMI_CLASSES.index("Q")))
    fctx = dataclasses.replace(ctx, seed=int(seed))  # the engine's sampler draws with ctx.seed
    model, fit = pretrain.train_classifier(train, None, config, fctx, int(seed), name)
    every = beat_set.cached_beat_set(root, records, config, ctx.cache, max_per_class=None, max_total=max_beats,
                                     seed=0, progress=ctx.progress, desc="DS1 side model")
    return FusedFit(model, side_models.fit_side_models(every, config, seed=int(seed)), fit, train.counts())


def fused_log_proba(fitted: FusedFit, beats: beat_set.BeatSet, ctx) -> dict[str, np.ndarray]:
    """(n, 5) scores of every rule of FUSED_RULES; each rule predicts the argmax of its scores.

    With several side models, "side<i>" and "fused<i>" are the rules of side model i alone (so one
    network fit per fold compares them)."""
    logits = ctx.engine.predict(fitted.model, ctx.engine.ArrayDataset(beats.inputs()), ctx).astype(np.float64)
    cnn = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    parts = [side_models.side_log_proba(m, beats) for m in fitted.side_model]
    side = sum(parts)
    out = {"cnn": cnn, "side": side, "fused": cnn + side}
    if len(parts) > 1:
        for i, p in enumerate(parts):
            out[f"side{i}"], out[f"fused{i}"] = p, cnn + p
    return out


def _check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise CardioError(f"unknown protocol {protocol!r}; use one of {PROTOCOLS}")


def _scored(y: np.ndarray, pred: np.ndarray, rec: np.ndarray, config: dict) -> dict:
    results = beat_metrics.classification_results(y, pred)
    results["ci"] = beat_metrics.record_intervals(y, pred, rec, config)
    results["always_n"] = beat_metrics.always_n(y)
    return results


def ds1_cv(config: dict, ctx, folds: int = 4, seed: int | None = None, protocol: str = "validated",
           max_beats: int | None = None) -> dict:
    """Grouped (record-level) cross-validation inside DS1: per fold a pretraining fitted on the other records
    predicts every beat of the held-out records (`max_beats`: a sample of at most that many, and as many for the fused
    protocol's side model: --smoke); the pooled predictions are scored with record-level CIs (records the units).

    With protocol "fused" the results are those of the fused rule, and `rules` holds every rule of FUSED_RULES
    (one fit per fold serves them all)."""
    _check_protocol(protocol)
    seed = ctx.seed if seed is None else int(seed)
    root = pretrain.mitdb_root(config, ctx)
    records = aami.ds1_records(config["ecg_transfer"]["pretrain"]["records"])
    ys, recs, per_fold = [], [], []
    preds: dict[str, list[np.ndarray]] = {}
    for k, held_out in enumerate(_fold_records(records, folds, seed)):
        rest = [r for r in records if r not in held_out]
        test = beat_set.cached_beat_set(root, held_out, config, ctx.cache, max_per_class=None, max_total=max_beats,
                                        seed=0, progress=ctx.progress, desc=f"DS1 fold {k}")  # all beats
        if protocol == "validated":
            fitted = pretrain.fit_pretraining(root, rest, config, ctx, seed=seed + 100 * k, name=f"cv{seed}-{k}")
            preds.setdefault("fused", []).append(pretrain.predict(fitted, test, ctx))
            per_fold.append({"held_out": held_out, "prior_strength": fitted.strength,
                             "epochs_run": len(fitted.fit.history), "best_epoch": fitted.fit.best_epoch})
        else:
            fused = fit_fused(root, rest, config, ctx, seed=seed + 100 * k, name=f"cv{seed}-{k}-fused",
                              max_beats=max_beats)
            for rule, score in fused_log_proba(fused, test, ctx).items():
                preds.setdefault(rule, []).append(score.argmax(axis=1))
            per_fold.append({"held_out": held_out, "prior_strength": 0.0, "train_counts": fused.train_counts,
                             "epochs_run": len(fused.fit.history), "best_epoch": fused.fit.best_epoch})
        ys.append(test.y)
        recs.append(test.record)
        ctx.log.info("DS1 CV fold %d: held out %s, %s", k, held_out, per_fold[-1])
    y, rec = np.concatenate(ys), np.concatenate(recs)
    results = _scored(y, np.concatenate(preds["fused"]), rec, config)
    if protocol == "fused":
        results["rules"] = {r: _scored(y, np.concatenate(p), rec, config) for r, p in preds.items()}
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
    fitted: pretrain.Fitted | FusedFit
    if protocol == "validated":
        fitted = pretrain.fit_pretraining(root, list(aami.DS1), config, ctx, seed=seed, name=f"ds2-seed{seed}")
        described = pretrain.describe(fitted, config)
    else:
        fitted = fused = fit_fused(root, list(aami.DS1), config, ctx, seed=seed, name=f"ds2-seed{seed}-fused")
        described = {"arch": pt["arch"], "train_counts": fused.train_counts, "prior_strength": 0.0,
                     "epochs_run": len(fused.fit.history), "best_epoch": fused.fit.best_epoch,
                     "val_records": [], "protocol": protocol}
    # every DS2 beat (no sampling, so one cached set serves every seed)
    test = beat_set.cached_beat_set(root, list(aami.DS2), config, ctx.cache, max_per_class=None, max_total=None,
                                    seed=0, progress=ctx.progress, desc="DS2", test_look=True)
    if isinstance(fitted, FusedFit):
        pred = fused_log_proba(fitted, test, ctx)["fused"].argmax(axis=1)
    else:
        pred = pretrain.predict(fitted, test, ctx)
    results = _scored(test.y, pred, test.record, config)
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
        test = beat_set.build_beat_set(Path(tmp), names, config, max_per_class=None, max_total=None, seed=0,
                                       progress=ctx.progress, desc=db)
    pred = fused_log_proba(fitted, test, ctx)["fused"].argmax(axis=1)
    results = _scored(test.y, pred, test.record, config)
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


def machine(device: torch.device) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"CPU {cpu}, {torch.get_num_threads()} torch thread(s)"
    if device.type == "cuda":
        text += f"; GPU {torch.cuda.get_device_name(device)}"
    return text


def headline(r: dict) -> dict:
    """The headline numbers of one results dict (Se/+P per class, macro F1, balanced accuracy)."""
    pc = r["per_class"]
    out = {"macro F1": r["macro_f1"], "bal. acc.": r["balanced_accuracy"], "accuracy": r["accuracy"]}
    for c in ("N", "S", "V", "F"):
        out[f"{c} Se"], out[f"{c} +P"] = pc[c]["se"], pc[c]["ppv"]
    return out


def _fmt(v) -> str:
    return "    –" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:5.3f}"


def print_results(title: str, r: dict) -> None:
    """Per-class table with record CIs, and the always-N baseline in the same table."""
    est = r["ci"]["estimates"]
    level = est["accuracy"]["level"]
    print(f"\n{title}: {r['n']} beats of {r['ci']['n_records']} records; {level:.0%} CIs with records the units")
    print(f"{'':>10} {'model':>6} {'CI':>16} {'always N':>9}")
    base = headline(r["always_n"])
    for key, ci_key in (("macro F1", "macro_f1"), ("bal. acc.", "balanced_accuracy"), ("accuracy", "accuracy")):
        print(f"{key:>10} {_fmt(headline(r)[key]):>6} {beat_metrics.ci_text(r, ci_key):>16} {_fmt(base[key]):>9}")
    for c in ("N", "S", "V", "F"):
        for m, k in (("Se", "se"), ("+P", "ppv")):
            print(f"{c + ' ' + m:>10} {_fmt(headline(r)[f'{c} {m}']):>6} {beat_metrics.ci_text(r, f'{k}_{c}'):>16} "
                  f"{_fmt(base[f'{c} {m}']):>9}")
    print(f"  (Q: {r['per_class']['Q']['support']} beats, reported in the results file, not averaged)")


def summary_over_seeds(runs: list[dict]) -> dict:
    """Mean and SD over seeds of every headline number."""
    keys = headline(runs[0])
    out = {}
    for k in keys:
        v = np.array([np.nan if headline(r)[k] is None else headline(r)[k] for r in runs], dtype=float)
        ok = v[~np.isnan(v)]  # +P is undefined for a seed that never predicts the class
        out[k] = {"mean": float(ok.mean()) if len(ok) else float("nan"),
                  "sd": float(ok.std(ddof=1)) if len(ok) > 1 else 0.0, "values": v.tolist()}
    return out


def print_published() -> None:
    print("\nPublished DS1 -> DS2 results (%; [key] names the source each was read from):")
    for name, v in PUBLISHED.items():
        print("  " + name + ": " + ", ".join(f"{k} {x} [{key}]" for k, (x, key) in v.items()))
    for key, text in PUBLISHED_SOURCES.items():
        print(f"  [{key}] {text}")


def run_cv(config: dict, ctx, folds: int, seeds: list[int], out: Path, protocol: str,
           max_beats: int | None = None) -> dict:
    runs = []
    for seed in seeds:
        engine.seed_everything(seed)
        t0 = time.perf_counter()
        r = ds1_cv(config, ctx, folds=folds, seed=seed, protocol=protocol, max_beats=max_beats)
        r["seconds"] = time.perf_counter() - t0
        for rule, rr in (r.get("rules") or {protocol: r}).items():
            print_results(f"DS1 grouped {folds}-fold CV, seed {seed}, {protocol} protocol, rule {rule} (prior "
                          f"strength per fold {[f['prior_strength'] for f in r['folds']]}; {r['seconds']:.0f} s)", rr)
        runs.append(r)
        write_text_atomic(out / "ds1_cv.json", json.dumps(runs, indent=1, default=str))
    summary = summary_over_seeds(runs)
    rules = {rule: summary_over_seeds([r["rules"][rule] for r in runs]) for rule in (runs[0].get("rules") or {})}
    for rule, summ in (rules or {protocol: summary}).items():
        print(f"\nDS1 CV over seeds {seeds}, rule {rule} (mean ± SD): " + "; ".join(
            f"{k} {v['mean']:.3f} ± {v['sd']:.3f}" for k, v in summ.items()))
        print("goal on DS1 CV (mean over seeds): " + ", ".join(
            f"{k} >= {g}: {'met' if summ[k]['mean'] >= g else 'NOT met'}" for k, g in GOALS.items()))
    return {"runs": runs, "summary": summary, "rules": rules}


def run_final(config: dict, ctx, seeds: list[int], out: Path, note: str) -> dict:
    runs = []
    for seed in seeds:
        engine.seed_everything(seed)
        t0 = time.perf_counter()
        r = ds2_look(config, ctx, LEDGER, REPO, seed=seed, note=note, protocol=PROTOCOL)
        r["seconds"] = time.perf_counter() - t0
        print_results(f"DS2 look {r['look']} (ledgered), seed {seed}: prior strength {r['prior_strength']}, "
                      f"epochs run {r['epochs_run']} (best {r['best_epoch']}), validation records "
                      f"{r['val_records']}; {r['seconds']:.0f} s", r)
        runs.append(r)
        write_text_atomic(out / f"ds2_seed{seed}.json", json.dumps(r, indent=1, default=str))
    summary = summary_over_seeds(runs)
    print(f"\nDS2 over {len(seeds)} seeds (mean ± SD): " + "; ".join(
        f"{k} {v['mean']:.3f} ± {v['sd']:.3f}" for k, v in summary.items()))
    print("chosen per seed: " + "; ".join(f"seed {s}: prior strength {r['prior_strength']}, best epoch "
                                          f"{r['best_epoch']}" for s, r in zip(seeds, runs)))
    met = {k: summary[k]["mean"] >= g for k, g in GOALS.items()}
    print("goal (mean over seeds): " + ", ".join(f"{k} >= {g}: {'met' if met[k] else 'NOT met'}"
                                                 for k, g in GOALS.items()))
    return {"runs": runs, "summary": summary, "goal_met": all(met.values())}


def external_ledger(db: str) -> Path:
    return REPO / "benchmarks" / "ledgers" / f"aami_{db}.csv"


def run_external(config: dict, ctx, db: str, db_dir: Path, seeds: list[int], out: Path, note: str,
                 ledger: Path | None = None) -> dict:
    """The frozen protocol's one look at an external database, one ledger row per seed."""
    ledger = ledger or external_ledger(db)
    chash = config_hash(config, PROTOCOL)
    earlier = [r for r in read_ledger(ledger) if r["config_hash"] == chash and r["status"] == "ledgered"]
    if earlier:
        raise CardioError(f"{ledger} already holds {len(earlier)} look(s) of this protocol (config hash {chash}) at "
                          f"{db}: the first look is its result; a new look needs a new protocol, frozen first")
    runs = []
    for seed in seeds:
        engine.seed_everything(seed)
        t0 = time.perf_counter()
        r = external_look(config, ctx, db_dir, db, ledger, REPO, seed=seed, note=note)
        r["seconds"] = time.perf_counter() - t0
        print_results(f"{db} look {r['look']} (ledgered in {ledger.name}), seed {seed}: leads {r['leads']}; "
                      f"{r['seconds']:.0f} s", r)
        runs.append(r)
        write_text_atomic(out / f"{db}_seed{seed}.json", json.dumps(r, indent=1, default=str))
    summary = summary_over_seeds(runs)
    print(f"\n{db} over {len(seeds)} seeds (mean ± SD): " + "; ".join(
        f"{k} {v['mean']:.3f} ± {v['sd']:.3f}" for k, v in summary.items()))
    return {"runs": runs, "summary": summary}


# --smoke: what the cv mode does, on a few records and beats (seconds of training, not a result): SMOKE_BEATS of the
# held-out records' beats and of the side model's, not all of them (their images and predictions)
SMOKE_BEATS = 300
SMOKE = ("ecg_transfer.pretrain.records=[101,106,109,118,207,223]", "ecg_transfer.pretrain.epochs=1",
         "ecg_transfer.pretrain.max_beats_per_class=16", "ecg_transfer.pretrain.max_eval_beats=200")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("cv", "final", "external"), default="cv")
    ap.add_argument("--db", choices=sorted(databases.DATABASES), help="external: the beat database")
    ap.add_argument("--dir", dest="db_dir", help="external: the folder `cardio data fetch <db>` filled")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (final, external: >= 3)")
    ap.add_argument("--folds", type=int, default=3, help="cv: record folds of DS1")
    ap.add_argument("--protocol", choices=PROTOCOLS, default=PROTOCOL,
                    help="cv only: the protocol to cross-validate (final runs PROTOCOL)")
    ap.add_argument("--set", action="append", default=[], dest="sets",
                    help="cv only: override, e.g. ecg_transfer.pretrain.epochs=8")
    ap.add_argument("--note", default="", help="final: a note for the ledger row")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--out", default=None, help="folder for checkpoints and results")
    ap.add_argument("--smoke", action="store_true", help="cv on 6 DS1 records, 1 epoch, a few beats: checks the "
                    "script runs")
    args = ap.parse_args(argv)
    if args.smoke:
        args.folds, args.sets = 2, [*SMOKE, *args.sets]
    if args.mode != "cv" and (args.sets or args.protocol != PROTOCOL):
        ap.error(f"the {args.mode} mode runs the frozen protocol (FROZEN); change it, commit it, then look")
    if args.mode != "cv" and len(args.seeds) < 3:
        ap.error(f"the {args.mode} mode needs at least 3 seeds")
    if (args.mode == "external") != bool(args.db and args.db_dir):
        ap.error("--db and --dir go with --mode external, and it needs both")
    if args.threads:
        torch.set_num_threads(args.threads)

    sets = FROZEN + tuple(args.sets) + (f"device={args.device}",)
    config = plugin_config("ecg_transfer", sets)
    out = Path(args.out or tempfile.mkdtemp(prefix=f"aami_{args.mode}-"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    cache = config["cache_dir"] or os.environ.get("CARDIO_CACHE", Path.home() / ".cache" / "cardio")
    ctx = context(out, device=config["device"], seed=args.seeds[0], cache_dir=cache)
    pt = config["ecg_transfer"]["pretrain"]
    print(f"machine: {machine(ctx.device)}")
    chash = config_hash(config, args.protocol)
    print(f"protocol ({args.mode}, {args.protocol}; config hash {chash}): arch={pt['arch']} "
          f"side_features={pt['side_features']} side_models={pt['side_models']} "
          f"epochs={pt['epochs']} batch_size={pt['batch_size']} lr={pt['lr']} "
          f"max_beats_per_class={pt['max_beats_per_class']} max_eval_beats={pt['max_eval_beats']} "
          f"balance_power={pt['balance_power']} prior_correction={pt['prior_correction']} "
          f"prior_strength={pt['prior_strength']} val_fraction={pt['val_fraction']} patience={pt['patience']}")
    t0 = time.perf_counter()
    if args.mode == "cv":
        result = run_cv(config, ctx, args.folds, args.seeds, out, args.protocol, SMOKE_BEATS if args.smoke else None)
    elif args.mode == "external":
        result = run_external(config, ctx, args.db, Path(args.db_dir), args.seeds, out, args.note)
    else:
        result = run_final(config, ctx, args.seeds, out, args.note)
        print(f"\nEvery DS2 look on record ({LEDGER.relative_to(REPO)}):")
        for row in read_ledger(LEDGER):
            print(f"  look {row['look']} {row['utc_date']} {row['git_commit'][:10]} seed {row['seed']} "
                  f"[{row['status']}] macro F1 {row['macro_f1'] or '–'} S Se {row['se_S'] or '–'} "
                  f"V Se {row['se_V'] or '–'} V +P {row['ppv_V'] or '–'} accuracy {row['accuracy'] or '–'}")
    print_published()
    seconds = time.perf_counter() - t0
    print(f"wall {seconds:.0f} s; results in {out}")
    write_text_atomic(out / "summary.json", json.dumps({"machine": machine(ctx.device), "mode": args.mode,
                                                        "sets": list(sets), "seeds": args.seeds, "seconds": seconds,
                                                        "summary": result["summary"], "rules": result.get("rules"),
                                                        "protocol": args.protocol,
                                                        "goal_met": result.get("goal_met")}, indent=1))
    if args.smoke and not args.out:  # a smoke run's folder is not a result (CI runs it each time)
        shutil.rmtree(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
