"""The fits of a run: each outer fold (and its inner folds) trained and predicted, and the final model on every row.

Each fit is set up here, once for every plugin (`train`): its own context (`ctx.for_fit`), whose fold tags its
checkpoints and history; the validation rows; a binary label with both classes in the training rows (one line
naming the fit otherwise); and torch, NumPy and random seeded from the run's seed right before cardio_train, so a
fit's model does not depend on the process, machine or order that fits it. A plugin that builds several networks
in one fit builds each with `engine.build`, which seeds the same way.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cardio import engine, services
from cardio.context import RunContext
from cardio.data import CardioError, Features, ModelState, Predictions, inner_split
from cardio.study import bundle, tasks
from cardio.study.record import provenance
from cardio.study.stages import Study, as_sections, expect


def threads(cfg: dict, ctx: RunContext) -> Any:
    """The torch CPU threads of a fit and of everything that runs its models (train, predict, explain, export,
    evaluate, predict on a new cohort): train.cpu_threads, else as the process has them (the executor's share of
    the CPUs). Sums split over threads round differently, so a fit's result depends on its thread count; one
    count for all of a model's steps keeps a run's results to the last digit wherever it runs at that count."""
    return engine.cpu_threads(cfg["train"]["cpu_threads"], ctx.device)


def fit_fold(study: Study, stages: tasks.Study, i: int, cfg: dict, ctx: RunContext, left: str) -> None:
    """Fold i's task: train, predict its test rows, and, for the last fold, explain; written to tasks/fit-<fold>/.
    With cv.inner_folds, the fold's inner folds are fitted after it and their predictions kept beside. All of it
    on the fits' threads."""
    with threads(cfg, ctx):
        _fit_fold(study, stages, i, cfg, ctx, left)


def _fit_fold(study: Study, stages: tasks.Study, i: int, cfg: dict, ctx: RunContext, left: str) -> None:
    features, fold = stages.features, stages.folds[i]
    ctx.log.info("fold %d of %d (%s): %d train rows, %d test rows%s", i + 1, len(stages.folds), fold.name,
                 len(features.trainable(fold.train)), len(fold.test), left)
    if len(features.trainable(fold.train)) < len(fold.train):
        ctx.log.info("fold %s: %d training row(s) have no target value and are left out of training",
                     fold.name, len(fold.train) - len(features.trainable(fold.train)))
    model, pred = fit_predict(study, features, fold, stages.prepared, cfg, ctx)
    name = f"fit-{fold.name}"
    inner = [fit_predict(study, features, f, stages.prepared, cfg, ctx, f"inner fit {j + 1} of "
                         f"{len(fold.inner)}")[1].table.assign(inner_fold=f.name) for j, f in enumerate(fold.inner)]
    if not ctx.is_main:
        return
    keep = services.installed().pm.hook.cardio_keep_fold_model  # the deploy service's, for the fold ensemble
    if cfg["final_model"] and cfg["fold_models"] and keep.get_hookimpls() and not stages.null_control \
            and not bundle.support(study.pm, study.plugin):
        keep(state=export(study, model, cfg, ctx.for_fit(fold.name)), plugin=study.plugin, fold=fold.name, config=cfg,
             run_dir=ctx.out_dir)
    facts = study.hooks.cardio_describe_model(model=model, config=cfg, settings=study.settings(cfg))
    if facts is not None:
        tasks.write_json(ctx.out_dir, name, tasks.MODEL_FACTS,
                         expect(facts, dict, "cardio_describe_model", study.plugin))
    if inner:
        tasks.write_predictions(ctx.out_dir, name, Predictions(pd.concat(inner, ignore_index=True).assign(
            fold=fold.name, repeat=fold.repeat)), ctx.pseudonym_key, tasks.INNER)
    tasks.write_predictions(ctx.out_dir, name, Predictions(pred.table.assign(fold=fold.name, repeat=fold.repeat)),
                            ctx.pseudonym_key)
    if cfg.get("explain", True) and i == len(stages.folds) - 1:
        ctx.log.info("stage explain (fold %s)", fold.name)
        with services.figure_saves():  # its figures render side by side; every file is written when the block ends
            result = study.hooks.cardio_explain(model=model, features=features, index=fold.test, config=cfg,
                                                settings=study.settings(cfg), ctx=ctx.for_fit(fold.name))
        tasks.write_sections(ctx.out_dir, name, as_sections(result, "cardio_explain", study.plugin))


def fit_predict(study: Study, features: Features, fold, prepared: Any, cfg: dict, ctx: RunContext,
                what: str = "") -> tuple[Any, Predictions]:
    """One fit on a fold's trainable rows (its context's fold tags its checkpoints) and its predictions on the
    test rows."""
    if what:
        ctx.log.info("%s: %s, %d train rows, %d test rows", fold.name, what, len(features.trainable(fold.train)),
                     len(fold.test))
    fit_ctx = ctx.for_fit(fold.name)
    model = train(study, features, features.trainable(fold.train), features.trainable(fold.val), prepared, cfg,
                  fit_ctx)
    pred = expect(study.hooks.cardio_predict(model=model, features=features, test_index=fold.test, config=cfg,
                                             settings=study.settings(cfg), ctx=fit_ctx), Predictions,
                  "cardio_predict", study.plugin)
    return model, pred


def train(study: Study, features: Features, train: np.ndarray, val: np.ndarray, prepared: Any, cfg: dict,
          ctx: RunContext) -> Any:
    """cardio_train on the rows to fit and the validation rows the core chose: the protocol's own (holdout,
    predefined), else `train.val_fraction` of the training patients (inner_split), else none. The training rows must
    hold both classes of a binary label; validation rows that would leave the rows to fit with one class are not
    used (the fit takes the whole training fold, logged). Seeded from the run's seed right before the hook."""
    features.check_classes(np.union1d(train, val), ctx.fold or "")
    fraction = float(cfg["train"]["val_fraction"])
    if not len(val) and fraction > 0:
        train, val = inner_split(features.table, train, fraction=fraction, seed=ctx.seed, label=features.label)
    if len(val) and features.one_class(train):
        ctx.log.warning("fit %s: the validation rows would leave one class of %r to fit; fitting on the whole "
                        "training fold, without validation rows", ctx.fold, features.label)
        train, val = np.union1d(train, val), val[:0]
    engine.seed_everything(ctx.seed)  # the fit's model does not depend on which fits ran before it here
    model = study.hooks.cardio_train(features=features, train_index=train, val_index=val, prepared=prepared,
                                     config=cfg, settings=study.settings(cfg), ctx=ctx)
    if model is None:
        raise CardioError(f"plugin {study.plugin!r}: cardio_train returned None, expected a model")
    return model


def export(study: Study, model: Any, cfg: dict, ctx: RunContext) -> ModelState:
    """A fitted model as the plugin's cardio_export_model gives it (for the bundle), checked."""
    return expect(study.hooks.cardio_export_model(model=model, config=cfg, settings=study.settings(cfg), ctx=ctx),
                  ModelState, "cardio_export_model", study.plugin)


def final_model(study: Study, stages: tasks.Study, cfg: dict, ctx: RunContext) -> dict | None:
    """Fit once on every row and export the model bundle (<run>/model/); what was fitted, or None when skipped."""
    features, cohort = stages.features, stages.cohort
    if not cfg["final_model"]:
        return None
    why = bundle.support(study.pm, study.plugin) or \
        ("the null control's labels are permuted" if stages.null_control else None)
    if why:
        ctx.log.info("final model not fitted: %s", why)
        return None
    every = features.trainable(np.arange(len(features)))  # rows with a target: the folds' rule
    ctx.log.info("final model: fitting on all %d rows (%d patients)", len(every),
                 features.table["patient_id"].nunique())
    fit_ctx = ctx.for_fit("final")  # its checkpoints and history are tagged final-<name>
    with threads(cfg, ctx):
        model = train(study, features, every, every[:0], stages.prepared, cfg, fit_ctx)
        state = export(study, model, cfg, fit_ctx)
    fitted: dict[str, Any] = {"n_rows": int(len(every)),
                              "n_patients": int(features.table["patient_id"].iloc[every].nunique()),
                              "n_records": int(len(cohort)), "label": cohort.label, "bundle": "model"}
    if ctx.is_main:
        prints = services.installed().pm.hook.cardio_training_fingerprints(features=features, cohort=cohort)
        if prints is None:
            ctx.log.info("the bundle carries no fingerprints of its training records: they are kept by the deploy "
                         "service (cardio-crt-deploy), not installed; cardio predict will call a cohort's overlap with "
                         "the training one unknown")
        meta = provenance(study, seed=ctx.seed, run=ctx.out_dir.name, **fitted, training_fingerprints=prints)
        path = bundle.write(ctx.out_dir, state, cfg, meta)
        ctx.log.info("final model exported: %s (cardio predict --model %s --cohort PATH)", path, ctx.out_dir)
    return fitted
