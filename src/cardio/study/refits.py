"""The refits behind nested CV's intervals: a run's models that are cheap to refit (its plugin's `cardio_refit`),
refitted on R of cardio's K-fold splits of the run's rows (repeat r has the run's seed + r, so repeat 0 is the run's
own split) in forked workers over the run's CPUs, scored at the level the run is evaluated at (`evaluate.at_level`).
The performance section turns them into the nested-CV intervals of those models (cardio_stats.nested_cv); every
other model keeps the fold-DeLong interval of the run's K fold models. `nested_plan` gives the same splits of bare
labels to the statistics service's `cross_validated_auc` (which has no split of its own: one split, the kernel's)."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from cardio.context import RunContext
from cardio.data import CardioError, Predictions, make_folds
from cardio.study import tasks
from cardio.study.fits import threads
from cardio.study.levels import at_level, labelled
from cardio.study.stages import Study, expect
from cardio_stats import StatsError
from cardio_stats.cv_auc import MIN_FOLDS
from cardio_stats.nested_cv import NestedPlan, Refitted
from cardio_stats.validation import as_binary_labels

#: Random K-fold splits nested CV averages (benchmarks/coverage.py: fewer leave MSE-hat too noisy to hold the level).
DEFAULT_REPEATS = 20


def nested_plan(y: object, groups: object = None, folds: int = 5, repeats: int = DEFAULT_REPEATS,
                seed: int = 0) -> NestedPlan:
    """R of cardio's patient-grouped, stratified K-fold splits of these records (`make_folds`; repeat r has seed + r,
    so repeat 0 is a run's own split of these records with that seed), for `cardio_stats.cross_validated_auc`."""
    yy = as_binary_labels(y)
    ids = (np.arange(yy.size) if groups is None else np.asarray(groups)).astype(str)
    table = pd.DataFrame({"patient_id": ids, "record_id": np.arange(yy.size).astype(str), "label": yy})
    cv = {"method": "kfold", "folds": int(folds), "repeats": int(repeats), "stratify": True}
    return NestedPlan.of_folds(make_folds(table, cv, "label", seed), yy.size)


def refitted(study: Study, stages: tasks.Study, cfg: dict, ctx: RunContext) -> Refitted | None:
    """The run's refittable models refitted on nested CV's splits (a cardio_stats.Refitted), or None: the plugin
    refits nothing, the run is not K-fold with K >= 5, `stats.nested_repeats` is 0, or a refit failed (logged)."""
    cv, repeats = cfg["cv"], int(cfg["stats"].get("nested_repeats", 0))
    if (repeats <= 0 or cv["method"] != "kfold" or int(cv["folds"]) < MIN_FOLDS
            or not study.pm.hook.cardio_refit.get_hookimpls()):
        return None
    features = stages.features
    label = features.label if features.label in features.table.columns else None
    started = time.perf_counter()
    plan = NestedPlan.of_folds(make_folds(features.table, {**cv, "repeats": repeats, "inner_folds": 0}, label,
                                          ctx.seed), len(features))
    global _job
    _job = _Job(study, stages, cfg, ctx, plan)
    try:
        # hundreds of small fits, over the run's CPUs in forked workers that inherit the study (nothing pickled but
        # the fit's number and its predictions); one BLAS and one OpenMP thread each: their threads cost more than
        # they bring on fits this small (perfusion_polar's took 2.6-3 times as long with two beside one other busy
        # process), and OpenMP's pool does not survive a fork
        with threads(cfg, ctx), threadpool_limits(limits=1):
            results = ctx.map(_refit, range(len(plan.fits)), desc="nested CV refits")
    finally:
        _job = None
    parts = []
    for i, result in enumerate(results):
        if result is None:
            return None
        if isinstance(result, Exception):
            ctx.log.warning("nested CV: refit %d of %d failed (%s); the fold-DeLong intervals of the run's folds "
                            "instead", i + 1, len(plan.fits), result)
            return None
        parts.append(result)
    table = labelled(at_level(Predictions(pd.concat(parts, ignore_index=True).assign(repeat=0)),
                              stages.cohort)).table
    table = table[table["kind"] == "binary"].assign(fit=lambda t: t["fold"].astype(int))
    seconds = round(time.perf_counter() - started, 1)
    models = sorted(map(str, table["model"].unique()))
    ctx.log.info("nested CV: %d refits of %s (%d repeats of %d folds) in %.1f s", len(plan.fits),
                 ", ".join(models), plan.repeats, plan.folds, seconds)
    keep = ["fit", "model", "task", "record_id", "y_score"]
    return Refitted(table[keep].reset_index(drop=True), plan.folds, plan.repeats, seconds)


@dataclass(frozen=True)
class _Job:
    """What every refit reads: set before the workers fork, so that they inherit it instead of unpickling it (one
    refitted() at a time in a process: a run evaluates once)."""
    study: Study
    stages: tasks.Study
    cfg: dict
    ctx: RunContext
    plan: NestedPlan


_job: _Job | None = None


def _refit(i: int) -> pd.DataFrame | Exception | None:
    """Refit i of the plan (in a worker of ctx.map): its test rows' predictions, None where the plugin refits
    nothing, or the error that stopped it (the caller names the first in order)."""
    job = _job
    assert job is not None, "nested CV's refits run inside refitted()"
    features = job.stages.features
    train, test = job.plan.split(job.plan.fits[i])
    try:
        pred = job.study.hooks.cardio_refit(features=features, train_index=features.trainable(train),
                                            test_index=test, prepared=job.stages.prepared, config=job.cfg,
                                            settings=job.study.settings(job.cfg), ctx=job.ctx.for_fit(f"nested-{i}"))
        if pred is None:
            return None
        return expect(pred, Predictions, "cardio_refit", job.study.plugin).table.assign(fold=str(i))
    except (CardioError, StatsError) as exc:
        return exc
