"""Evaluation: every fold's predictions at the level the plugin predicts at, every plugin's report sections, and
the run's files (the evaluate task, the last of a run)."""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from cardio import engine, services
from cardio.context import RunContext
from cardio.data import CardioError, Cohort, Features, Predictions, Section, checks
from cardio.study import bundle, outputs, tasks
from cardio.study.fits import threads
from cardio.study.levels import at_level, labelled
from cardio.study.record import RunRecord, keep_key, read_run_json
from cardio.study.refits import refitted
from cardio.study.stages import Study, as_sections
from cardio_stats import StatsError


def evaluate(study: Study, stages: tasks.Study, cfg: dict, ctx: RunContext,
             ready: Callable[[], None] | None = None) -> None:
    """The evaluate task: every fold's predictions from its task folder, the report's sections, the run's files.
    `ready` is called before the final model's facts and bundle are read: the local executor starts evaluate once
    the folds are done, while a worker may still fit the final model, and waits there for it."""

    run_dir = ctx.out_dir
    folds = [f.name for f in stages.folds]
    names = [f"fit-{f}" for f in folds]
    parts = [tasks.read_predictions(run_dir, n, ctx.pseudonym_key, stages.features.table).table for n in names]
    predictions = Predictions(pd.concat(parts, ignore_index=True))
    predictions = at_level(predictions, stages.cohort)
    outputs.write_predictions(run_dir, predictions, ctx.pseudonym_key)  # kept even if evaluation fails
    refits = refitted(study, stages, cfg, ctx)  # the models cheap to refit, for their nested-CV intervals
    engine.seed_everything(ctx.seed)
    try:
        facts = {f: tasks.read_json(run_dir, f"fit-{f}", tasks.MODEL_FACTS) or {} for f in folds}
        # figures render on the allotted CPUs; every file is written before the block ends
        with services.figure_saves(), threads(cfg, ctx):
            sections = sections_of(study, stages.features, stages.prepared, labelled(predictions), stages.cohort,
                                   cfg, ctx, facts, refits) + tasks.read_sections(run_dir, names[-1])
    except StatsError as e:
        raise CardioError(f"evaluation failed: {e} (predictions are saved in {run_dir / 'predictions.csv'})") from None
    if ready is not None:
        ready()
    # after ready(): the fold models join the final model's bundle, which a local worker may still be writing
    if cfg["fold_models"]:
        add = services.installed().pm.hook.cardio_add_fold_models  # the deploy service's, for the fold ensemble
        if not (run_dir / "model" / "bundle.json").is_file():
            ctx.log.warning("fold_models: true, but this run exported no final model (final_model: false, a plugin "
                            "that cannot export, or the null control), whose bundle the fold models join: none was "
                            "kept")
        elif add(run_dir=run_dir, folds=folds, log=ctx.log) is None:
            ctx.log.warning("fold_models: true, but the bundle holds the final model alone: the fold models are kept "
                            "by the deploy service (cardio-crt-deploy, `cardio predict --ensemble folds`), not "
                            "installed")
    run = read_run_json(run_dir)
    meta = {**study.made_by(), "seed": ctx.seed, "device": str(ctx.device),
            "world_size": run.get("world_size", 1), **cohort_meta(stages.cohort), "cv": cfg["cv"],
            "folds": [{"name": f.name, "n_train": int(len(f.train)), "n_test": int(len(f.test)),
                       "n_val": int(len(f.val))} for f in stages.folds],
            "elapsed_s": _elapsed(run), "resumed": bool(run.get("continuations", 0)),  # cardio run --resume
            "null_control": stages.null_control,
            "probable_leaks": stages.leak_flags,
            "final_model": (tasks.read_json(run_dir, "final", tasks.FINAL) or {}).get("fitted")}
    rendered = outputs.write_run(run_dir, meta, predictions, sections, ctx.log, ctx.pseudonym_key)
    keep_key(run_dir, predictions, cfg, ctx.pseudonym_key)
    checkpoints = _checkpoints(run_dir, cfg, ctx)
    disk = folder_size(run_dir)
    RunRecord(run_dir).finished(checkpoints=checkpoints, disk_bytes=disk)
    ctx.log.info("run folder: %.1f MB (model bundle %.1f MB, fold models %.1f MB, figures %.1f MB, checkpoints "
                 "%.1f MB)", *(disk[k] / 1e6 for k in ("total", "model", "fold_models", "figures", "checkpoints")))
    if meta["resumed"]:  # its wall time is the last continuation's: were it kept, estimates would scale from it
        ctx.log.info("this run was resumed: its time (%s since then) is not kept for `cardio validate`'s estimates",
                     duration(meta["elapsed_s"]))
    elif not stages.null_control:
        checks.record_timing(ctx.cache_dir, study.plugin, len(stages.cohort), checks.fits_of(cfg), meta["elapsed_s"],
                             engine.device_name(ctx.device), cfg)
    ctx.log.info("done in %s%s: %s", duration(meta["elapsed_s"]), " since it was resumed" if meta["resumed"] else "",
                 run_dir / ("report.md" if rendered else "metrics.json"))


def cohort_meta(cohort: Cohort) -> dict:
    """The cohort in metrics.json: its records and patients, whether it is synthetic and the truth a synthetic-crt
    cohort states (the report's checklist reads them)."""
    return {"n_records": int(len(cohort)), "n_patients": int(cohort.table["patient_id"].nunique()),
            "synthetic": cohort.synthetic, "truth": cohort.truth}


def _checkpoints(run_dir: Path, cfg: dict, ctx: RunContext) -> dict:
    """run.json's account of the run's checkpoints (every task's, from their done markers); then, unless
    train.keep_checkpoints, their files go: every other task is done, and a finished run is never resumed."""
    names = [n for n in tasks.task_names(cfg) if n != "evaluate"]
    totals = tasks.checkpoint_totals(run_dir, names)
    kept = bool(cfg["train"]["keep_checkpoints"])
    if not kept:
        count, size = tasks.remove_checkpoints(run_dir, names)
        if count:
            ctx.log.info("checkpoints removed: %d file(s), %.1f MB (train.keep_checkpoints: true keeps them)", count,
                         size / 1e6)
        left = tasks.remove_leftovers(run_dir)
        if left:  # what a plugin kept beside its fits (ecg_transfer's pretrained start): named, not left behind
            ctx.log.info("also removed from checkpoints/: %s", ", ".join(f"{n} ({b / 1e6:.1f} MB)" for n, b in left))
    return {**totals, "kept": kept}


def folder_size(run_dir: Path) -> dict[str, int]:
    """Bytes of the run folder, in all and by part (the model bundle, its fold models, figures, checkpoints); a file
    hard-linked in two places (a fold model in its task's folder and in the bundle) counts once, as on the disk."""
    def size(path: Path) -> int:
        files = {(s.st_dev, s.st_ino): s.st_size for s in (f.stat() for f in path.rglob("*") if f.is_file())}
        return sum(files.values())

    model, folds = size(run_dir / "model"), size(run_dir / "model" / bundle.FOLDS)
    return {"total": size(run_dir), "model": model - folds, "fold_models": folds,
            "figures": size(run_dir / "figures"), "checkpoints": size(run_dir / "checkpoints")}


def _elapsed(run: dict) -> float:
    """Seconds since this run (or its latest continuation) started, from its run.json."""
    started = run.get("started")
    try:
        return round(time.time() - time.mktime(time.strptime(str(started), "%Y-%m-%dT%H:%M:%S")), 1)
    except (TypeError, ValueError):
        return 0.0


def duration(seconds: float) -> str:
    """42 s, 3 min 10 s, 2 h 05 min: how long, as a person says it."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def sections_of(study: Study, features: Features, prepared: Any, predictions: Predictions, cohort: Cohort,
                cfg: dict, ctx: RunContext, model_facts: dict[str, dict] | None = None,
                refits: Any = None) -> list[Section]:
    """Every plugin's evaluate sections, each called on its own (in pluggy's order: the built-in performance
    section first, subgroups last) so that a wrong result names the plugin that gave it."""
    ctx.log.info("stage evaluate")
    pm = study.pm
    sections: list[Section] = []
    everyone = {p for _, p in pm.list_name_plugin()}
    for impl in reversed(pm.hook.cardio_evaluate.get_hookimpls()):
        only = pm.subset_hook_caller("cardio_evaluate", remove_plugins=everyone - {impl.plugin})
        before = [e for s in sections for e in s.estimates], [t for s in sections for t in s.tests]
        for result in only(predictions=predictions, cohort=cohort, features=features, prepared=prepared,
                           config=cfg, settings=study.settings(cfg), ctx=ctx, estimates=before[0], tests=before[1],
                           model_facts=model_facts or {}, refits=refits):
            sections += as_sections(result, "cardio_evaluate", impl.plugin_name)
    return sections


