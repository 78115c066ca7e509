"""The refits behind nested CV's intervals: a run's models that are cheap to refit (its plugin's `cardio_refit`),
refitted on R of cardio's K-fold splits of the run's rows (repeat r has the run's seed + r, so repeat 0 is the run's
own split), scored at the level the run is evaluated at (`evaluate.at_level`). The performance section turns them
into the nested-CV intervals of those models (cardio_stats.nested_cv); every other model keeps the fold-DeLong
interval of the run's K fold models. `nested_plan` gives the same splits of bare labels to the statistics service's
`cross_validated_auc` (which has no split of its own: one split, the kernel's)."""
from __future__ import annotations

import time

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
    parts = []
    try:
        # hundreds of small fits: BLAS threads cost more than they bring (perfusion_polar's refit took 2.6-3 times
        # as long with two beside one other busy process), so one each
        with threads(cfg, ctx), threadpool_limits(limits=1, user_api="blas"):
            for i, fit in enumerate(plan.fits):
                train, test = plan.split(fit)
                pred = study.hooks.cardio_refit(features=features, train_index=features.trainable(train),
                                                test_index=test, prepared=stages.prepared, config=cfg,
                                                settings=study.settings(cfg), ctx=ctx.for_fit(f"nested-{i}"))
                if pred is None:
                    return None
                parts.append(expect(pred, Predictions, "cardio_refit", study.plugin).table.assign(fold=str(i)))
    except (CardioError, StatsError) as exc:
        ctx.log.warning("nested CV: refit %d of %d failed (%s); the fold-DeLong intervals of the run's folds "
                        "instead", len(parts) + 1, len(plan.fits), exc)
        return None
    table = labelled(at_level(Predictions(pd.concat(parts, ignore_index=True).assign(repeat=0)),
                              stages.cohort)).table
    table = table[table["kind"] == "binary"].assign(fit=lambda t: t["fold"].astype(int))
    seconds = round(time.perf_counter() - started, 1)
    models = sorted(map(str, table["model"].unique()))
    ctx.log.info("nested CV: %d refits of %s (%d repeats of %d folds) in %.1f s", len(plan.fits),
                 ", ".join(models), plan.repeats, plan.folds, seconds)
    keep = ["fit", "model", "task", "record_id", "y_score"]
    return Refitted(table[keep].reset_index(drop=True), plan.folds, plan.repeats, seconds)
