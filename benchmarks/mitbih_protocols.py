"""MIT-BIH beat classification under both protocols, side by side with published figures (issue 56).

The two protocols are not comparable and the table says which is which:

  inter-patient  de Chazal's DS1 -> DS2: no patient is in both training and test. This run's row is grouped
                 (record-level) cross-validation inside DS1 at the settings printed (DS2 is not read); the project's
                 ledgered DS2 looks are read from benchmarks/ledgers/aami_ds2.csv, labelled with their protocol.
  intra-patient  the beats of the same records split at random between training and test (the protocol behind the
                 97.45% and 99.00% the ECG paper cites): beats of one patient on both sides, so the figures are far
                 higher and say little about a new patient. This run splits the beats of the DS1 records only (DS2
                 stays the untouched test set); the published rows used every record.

Published rows (percent), each figure keyed to the source it was read from (printed under the table): inter-patient
as benchmarks/aami_interpatient.PUBLISHED holds them (de Chazal et al. 2004, IEEE TBME 51:1196-1206; Mondejar-Guerra
et al. 2019, BSPC 47:41-48; the papers are not in ../shared/papers, so no table or page is claimed, and a figure no
source read here states is printed "–"); intra-patient as the ECG paper cites them (He et al.,
../shared/papers/ecg_transfer_learning_crt.txt, section 4 "Discussion"): Hua et al. 2020 [40], a 1-D CNN, accuracy
97.45%; Huang et al. 2019 [24], STFT spectrograms into a 2-D CNN, 99.00% (against 90.93% for a 1-D CNN on the same
beats). Those two classified five beat types, not the AAMI classes.

The paper profile's DS2 look (`--look`) is made once: it runs benchmarks/aami_interpatient.ds2_look (which ledgers it
before anything is printed) with the paper profile's pretraining unchanged (no --set), on 3 seeds, and is refused when
the ledger already holds a look of that config and seed (--seeds splits the three over processes). `--project`
times training steps of the paper profile's pretraining on the device named and prints what one seed of the look
would take (epochs x steps x the measured step): on an H100 (bf16 autocast, as the engine trains) 0.038 s a step of
batch 256, 3.0 min a seed's 30 epochs before its data and evaluation, 2026-11-26.

    python benchmarks/mitbih_protocols.py --smoke                 # seconds: checks the script
    python benchmarks/mitbih_protocols.py --set ecg_transfer.pretrain.epochs=3 ...   # this run at the settings given
    python benchmarks/mitbih_protocols.py --project               # the paper profile's cost here
    python benchmarks/mitbih_protocols.py --look --device cuda    # the paper profile's one ledgered DS2 look (a GPU)
    python benchmarks/mitbih_protocols.py --look --device cuda --seeds 0   # its first seed alone; then --seeds 1,2
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cardio import CardioError
from cardio_ecg_transfer import aami, beat_metrics, beat_set, pretrain
from cardio_ecg_transfer.mitdb import mitdb_dir
from cardio_testing.harness import context, load_script, plugin_config

REPO = Path(__file__).resolve().parents[1]
AAMI = load_script(REPO / "benchmarks" / "aami_interpatient.py")  # the inter-patient protocol and its ledger

#: Intra-patient figures the ECG paper cites (section 4), accuracy in percent, with their source key (SOURCES_INTRA).
PUBLISHED_INTRA: dict[str, dict[str, tuple[float, str]]] = {
    "Hua et al. 2020 [40], 1-D CNN (cited by He et al., section 4)": {"accuracy": (97.45, "c")},
    "Huang et al. 2019 [24], STFT spectrogram 2-D CNN (cited by He et al., section 4)": {"accuracy": (99.00, "d")},
    "Huang et al. 2019 [24], 1-D CNN, same beats (cited by He et al., section 4)": {"accuracy": (90.93, "d")},
}
SOURCES_INTRA = {
    "c": "He et al. 2023 (../shared/papers/ecg_transfer_learning_crt.txt), section 4 'Discussion', on its ref. [40] "
         "(Hua et al., Multimedia Systems 2020; 28:1387-1399): 'a classification accuracy of 0.9745' on five beat "
         "types (normal, LBBB, RBBB, ventricular ectopic, paced), beats of all records",
    "d": "He et al. 2023, section 4 'Discussion', on its ref. [24] (Huang et al., IEEE Access 2019; 7:92871-92880): "
         "STFT spectrograms into a 2-D CNN 99.00%, a 1-D CNN 90.93%",
}
COLUMNS = ("accuracy", "macro F1", "S Se", "S +P", "V Se", "V +P")
#: What --smoke runs: six DS1 records, a few beats, one epoch (not a result).
SMOKE = ("ecg_transfer.pretrain.records=[101,106,109,118,207,223]", "ecg_transfer.pretrain.epochs=1",
         "ecg_transfer.pretrain.max_beats_per_class=16", "ecg_transfer.pretrain.max_eval_beats=200")
SMOKE_BEATS = 300


def _row(r: dict) -> dict:
    """The table's columns (percent) of a results dict of beat_metrics.classification_results."""
    pc = r["per_class"]
    pct = {"accuracy": r["accuracy"], "macro F1": r["macro_f1"], "S Se": pc["S"]["se"], "S +P": pc["S"]["ppv"],
           "V Se": pc["V"]["se"], "V +P": pc["V"]["ppv"]}
    return {k: None if v is None else 100 * float(v) for k, v in pct.items()}


def intra_patient(config: dict, ctx, seed: int, max_beats: int | None) -> dict:
    """Intra-patient: every beat of the DS1 records (at most `max_beats`), 80% of each record's beats at random to
    training (class-capped as the pretraining caps them), 20% to test; one fit, every epoch, no validation."""
    pt = config["ecg_transfer"]["pretrain"]
    root = pretrain.mitdb_root(config, ctx)
    beats = beat_set.cached_beat_set(root, aami.ds1_records(pt["records"]), config, ctx.cache, max_per_class=None,
                                     max_total=max_beats, seed=0, progress=ctx.progress, desc="DS1 intra-patient")
    rng = np.random.default_rng(seed)
    test = rng.random(len(beats.y)) < 0.2
    train_rows = np.flatnonzero(~test & (beats.y != aami.AAMI_CLASSES.index("Q")))
    cap = pt["max_beats_per_class"]
    if cap:  # the pretraining's class cap, drawn from the training beats only
        train_rows = np.concatenate([rng.permutation(train_rows[beats.y[train_rows] == c])[:cap]
                                     for c in np.unique(beats.y[train_rows])])
    model, _ = pretrain.train_classifier(beat_set.subset(beats, np.sort(train_rows)), None, config,
                                         dataclasses.replace(ctx, seed=seed), seed, name=f"intra-{seed}")
    held = beat_set.subset(beats, np.flatnonzero(test))
    pred = ctx.engine.predict(model, ctx.engine.ArrayDataset(held.inputs()), ctx).argmax(axis=1)
    return beat_metrics.classification_results(held.y, pred)


def ledgered_looks() -> list[tuple[str, dict]]:
    """The project's ledgered DS2 looks, one row per protocol (mean over its seeds), labelled with commit and note."""
    groups: dict[str, list[dict]] = {}
    for row in AAMI.read_ledger(AAMI.LEDGER):
        if row["status"] == "ledgered":
            groups.setdefault(row["config_hash"], []).append(row)
    out = []
    for rows in groups.values():
        mean = {k: float(np.mean([float(r[f]) for r in rows if r[f]])) * 100 if any(r[f] for r in rows) else None
                for k, f in zip(COLUMNS, ("accuracy", "macro_f1", "se_S", "ppv_S", "se_V", "ppv_V"))}
        first = rows[0]
        out.append((f"this project, DS2 looks {', '.join(r['look'] for r in rows)} ({first['git_commit'][:7]}; "
                    f"{first['note'][:60]})", mean))
    return out


def _cell(x: float | tuple[float, str] | None) -> str:
    """A figure in percent; a published one carries the key of its source, "[a]"; "–" where not reported."""
    if x is None:
        return "–"
    return f"{x[0]:.2f} [{x[1]}]" if isinstance(x, tuple) else f"{x:.2f}"


def print_table(rows: list[tuple[str, str, dict]]) -> None:
    """protocol | source | the six columns, then the source of every keyed published figure."""
    print(f"\n| protocol | source | {' | '.join(COLUMNS)} |")
    print("|---|---|" + "---|" * len(COLUMNS))
    keys = set()
    for protocol, source, v in rows:
        print(f"| {protocol} | {source} | {' | '.join(_cell(v.get(c)) for c in COLUMNS)} |")
        keys |= {x[1] for x in v.values() if isinstance(x, tuple)}
    for key, text in {**AAMI.PUBLISHED_SOURCES, **SOURCES_INTRA}.items():
        if key in keys:
            print(f"\n[{key}] {text}")


def project(config: dict, ctx, steps: int) -> dict:
    """Seconds per training step of the paper profile's pretraining network here, and one seed's projected cost."""
    import torch

    from cardio.engine.device import autocast
    from cardio_ecg_transfer.resnet import build_resnet

    pt = config["ecg_transfer"]["pretrain"]
    spec = (config["ecg_transfer"]["spectrogram"]["nperseg"] // 2 + 1, 33)
    batch = int(pt["batch_size"])
    device = torch.device(ctx.device)
    model = build_resnet(pt["arch"], n_outputs=5).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=float(pt["lr"]))
    x, y = torch.randn(batch, 1, *spec, device=device), torch.randint(0, 5, (batch,), device=device)
    times = []
    for _ in range(steps + 1):  # the first step warms up
        t0 = time.perf_counter()
        opt.zero_grad()
        with autocast(device, bool(config["train"]["amp"])):  # as the engine's loop trains: bf16 on CUDA
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()  # the step's GPU work inside its time
        times.append(time.perf_counter() - t0)
    per_step = float(np.median(times[1:]))
    fit_beats = 0.8 * 50977  # DS1's beats of the 22 records (docs/benchmarks/ecg_transfer.md), 80% fitting records
    seed_s = per_step * np.ceil(fit_beats / batch) * int(pt["epochs"])
    return {"arch": pt["arch"], "batch": batch, "input": spec, "threads": torch.get_num_threads(),
            "device": str(device), "seconds_per_step": per_step, "epochs": int(pt["epochs"]),
            "one_seed_hours": seed_s / 3600}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", action="append", default=[], dest="sets", help="this run's settings (not --look)")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smoke", action="store_true", help="six DS1 records, one epoch, a few beats")
    ap.add_argument("--project", action="store_true", help="time the paper profile's training step here")
    ap.add_argument("--look", action="store_true", help="the paper profile's one ledgered DS2 look")
    ap.add_argument("--seeds", default="0,1,2", help="--look: the seeds this process looks with (the look is 0,1,2)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, ... (the paper profile's look is meant for a GPU)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.look and (args.sets or args.smoke):
        ap.error("--look runs the paper profile unchanged; no --set, no --smoke")
    sets = [*(SMOKE if args.smoke else ()), *args.sets, f"device={args.device}"]
    out = Path(args.out or tempfile.mkdtemp(prefix="mitbih_protocols-"))
    cache = os.environ.get("CARDIO_CACHE", Path.home() / ".cache" / "cardio")
    if args.project or args.look:
        config = plugin_config("ecg_transfer", ["profile=paper", f"device={args.device}"])
        ctx = context(out, device=args.device, seed=args.seed, cache_dir=cache)
        if args.project:
            p = project(config, ctx, steps=2 if args.device == "cpu" else 20)
            print(json.dumps(p))
            print(f"paper profile, one seed here: {p['one_seed_hours']:.2f} h of training ({p['epochs']} epochs of "
                  f"{p['arch']}, batch {p['batch']}, {p['seconds_per_step']:.1f} s a step on {p['threads']} "
                  f"thread(s)); the DS2 look needs 3 seeds (aami_interpatient --mode final)")
            return 0
        return look(config, ctx, out, [int(x) for x in args.seeds.split(",")])
    config = plugin_config("ecg_transfer", sets)
    ctx = context(out, device=args.device, seed=args.seed, cache_dir=cache)
    if args.smoke and not (mitdb_dir(None, cache) / "101.dat").is_file():
        print("skipped: MIT-BIH is not in $CARDIO_DATA/mitdb or the cache (cardio data fetch mitdb --dir ...)")
        return 0
    pt = config["ecg_transfer"]["pretrain"]
    label = (f"{pt['arch']}, {pt['epochs']} epoch(s), <= {pt['max_beats_per_class']} beats/class"
             + (" (smoke: not a result)" if args.smoke else ""))
    t0 = time.perf_counter()
    inter = AAMI.ds1_cv(config, ctx, folds=2 if args.smoke else args.folds, seed=args.seed, protocol="validated",
                        max_beats=SMOKE_BEATS if args.smoke else None)
    intra = intra_patient(config, ctx, args.seed, SMOKE_BEATS * 4 if args.smoke else None)
    rows = [("inter-patient", f"published: {name}", v) for name, v in AAMI.PUBLISHED.items()]
    rows += [("inter-patient", src, v) for src, v in ledgered_looks()]
    rows.append(("inter-patient", f"this run: DS1 grouped {2 if args.smoke else args.folds}-fold CV, {label}",
                 _row(inter)))
    rows += [("intra-patient", f"published: {name}", v) for name, v in PUBLISHED_INTRA.items()]
    rows.append(("intra-patient", f"this run: DS1 beats 80/20 at random, {label}", _row(intra)))
    print_table(rows)
    print(f"\nwall {time.perf_counter() - t0:.0f} s; this run's inter-patient beats {inter['n']}, intra-patient test "
          f"beats {intra['n']}")
    (out / "table.json").write_text(json.dumps(rows, indent=1))
    if args.smoke and not args.out:  # a smoke run's folder is not a result (CI runs it each time: 129 MB a time)
        shutil.rmtree(out)
    else:
        print(f"table and checkpoints in {out}")
    return 0


def look(config: dict, ctx, out: Path, seeds: list[int]) -> int:
    """The paper profile's DS2 look, once per seed: refused when the ledger holds a look of its config hash and that
    seed (the three seeds may run in separate processes, e.g. where one process may not outlast a time limit; the
    config hash shows that nothing changed between them)."""
    chash = AAMI.config_hash(config, "validated")
    ledgered = [r.get("seed") or "" for r in AAMI.read_ledger(AAMI.LEDGER) if r["config_hash"] == chash]
    done = seeds if "" in ledgered else sorted({int(x) for x in ledgered} & set(seeds))  # no seed: every seed
    if done:
        raise CardioError(f"{AAMI.LEDGER} already holds the paper profile's DS2 look of seed(s) {done} (config hash "
                          f"{chash}): the first look is its result")
    for seed in seeds:
        r = AAMI.ds2_look(config, ctx, AAMI.LEDGER, REPO, seed=seed, note="paper profile (issue 56)",
                          protocol="validated")
        print_table([("inter-patient", f"this run: DS2 look {r['look']}, paper profile, seed {seed}", _row(r))])
    return 0


if __name__ == "__main__":
    sys.exit(main())
