"""`cardio predict --ensemble folds`: the mean of the fold models a run kept in its bundle, compared with the final
model.

nnU-Net predicts a new case with the five models of its cross-validation and averages their softmax outputs;
cardio predicted with the one final model (fitted on every patient after the folds). A run made with
`fold_models: true` keeps each outer fold's model in its bundle (folds.py).

What is averaged, and why no recalibration. A fold model's binary scores are probabilities from a model fitted
with a proper scoring rule (BCE for the networks, logistic regression for the fused and linear models), so the
ensemble's score of a record is the plain mean of the fold models' probabilities, as nnU-Net averages its
softmax outputs; a regression target's is the mean of their predicted values. No calibration map is fitted on
top: none of the fold models' own validation rows are kept in the bundle, and a map fitted on each fold's
test rows would reuse the labels the cross-validated estimates were read from. The ensemble's calibration on
the new cohort is measured in the report (slope, intercept, Brier), not assumed. Its threshold is the mean of
the fold models' thresholds, each chosen on its own training fold (0.5 where a plugin gives none). A model and
task that some fold models do not predict (no label in their training fold) is the mean of those that do; the
count is in predictions.csv (`n_fold_models`) and in the comparison table.

The comparison. With `--ensemble folds` the final model predicts the same cohort too, and the report compares
the two on every binary task: both AUCs with their DeLong score intervals and the paired DeLong
difference, Holm-adjusted over the tasks and models compared. The final model is the reference, fixed before
any result: it is what `cardio predict` used before the ensemble existed. What the difference estimates is this
run's two models' AUC difference in the population the cohort comes from (both are fixed models here); its
clustered paired DeLong interval is the score interval over the two AUCs (`delong_test(..., interval="score")`),
which holds that near separation too, where pROC's normal interval missed up to 10.8% (benchmarks/coverage.py's
"ΔAUC, two fixed models (holdout, external)", docs/statistics.md).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cardio.context import RunContext
from cardio.data import CardioError, ModelState, Predictions, Section

if TYPE_CHECKING:
    from cardio.study.stages import Study

ENSEMBLES = ("final", "folds")
TITLE = "Fold ensemble against the final model"


def fold_predictions(study: Study, states: dict[str, ModelState], features, cfg: dict,
                     ctx: RunContext) -> Predictions:
    """Every fold model of the bundle applied to every row, averaged (see the module's docstring)."""
    hooks, plugin, settings = study.hooks, study.plugin, study.settings(cfg)
    parts = []
    for name, state in states.items():
        model = hooks.cardio_import_model(state=state, config=cfg, settings=settings, ctx=ctx)
        if model is None:
            raise CardioError(f"plugin {plugin!r}: cardio_import_model returned None for fold model {name}")
        pred = hooks.cardio_predict(model=model, features=features, test_index=np.arange(len(features)),
                                    config=cfg, settings=settings, ctx=ctx)
        if not isinstance(pred, Predictions):
            raise CardioError(f"plugin {plugin!r}: cardio_predict returned {type(pred).__name__}, expected "
                              "Predictions")
        ctx.log.info("fold model %s of %d predicted", name, len(states))
        parts.append(pred.table)
    return average(parts)


def average(parts: list[pd.DataFrame]) -> Predictions:
    """The fold models' predictions as one: per record, model and task, the mean score (and threshold) of the fold
    models that predicted it, their count in `n_fold_models`; rows in the order the first fold model gave."""
    keys = ["record_id", "patient_id", "model", "task", "kind"]
    table = pd.concat([p.assign(n_fold_models=1) for p in parts], ignore_index=True)
    how: dict[str, Any] = {c: "first" for c in table.columns if c not in keys}
    how.update({"y_score": "mean", "n_fold_models": "sum", **({"threshold": "mean"} if "threshold" in table else {})})
    return Predictions(table.groupby(keys, sort=False, dropna=False).agg(how).reset_index())


def comparison_section(final: Predictions, folds: Predictions, n_models: int, level: float, ctx) -> Section:
    """Each binary task's AUC of the fold ensemble and of the final model on this cohort, with the paired DeLong
    difference (final model the reference; Holm over the pairs compared)."""
    stats = ctx.stats
    keys = ["record_id", "model", "task"]
    both = final.table.merge(folds.table, on=keys, suffixes=("_final", "_folds"))
    both = both[(both["kind_final"] == "binary") & np.isfinite(both["y_true_final"].to_numpy(dtype=float))]
    rows, estimates, tests = [], [], []
    for (model, task), g in both.groupby(["model", "task"], sort=False):
        y, groups = g["y_true_final"].to_numpy(dtype=float), g["patient_id_final"].to_numpy()
        groups = groups if len(set(groups)) < len(groups) else None
        try:
            ens = stats.delong_ci(y, g["y_score_folds"], level=level, groups=groups, interval="score")
            one = stats.delong_ci(y, g["y_score_final"], level=level, groups=groups, interval="score")
            test = stats.delong_test(y, g["y_score_folds"], g["y_score_final"], level=level, groups=groups,
                                     interval="score")
        except stats.StatsError as e:
            rows.append({"model": model, "task": task, "n": len(g), "AUC, fold ensemble": "–",
                         "AUC, final model": "–", "ΔAUC (ensemble − final)": f"not compared: {e}"})
            continue
        for est, which in ((ens, "fold ensemble"), (one, "final model")):
            estimates.append({**est.to_dict(), "model": f"{model} ({which})", "task": task, "fold": "external",
                              "subgroup": None})
        tests.append({**test.to_dict(), "model_a": f"{model} (fold ensemble)", "model_b": f"{model} (final model)",
                      "extra": {**test.extra, "task": task, "family": "fold ensemble"}})
        rows.append({"model": model, "task": task, "n": len(g), "fold models": int(g["n_fold_models"].min()),
                     "AUC, fold ensemble": stats.format_ci(ens), "AUC, final model": stats.format_ci(one),
                     "ΔAUC (ensemble − final)": f"{test.extra['diff']:+.3f} [{test.extra['diff_ci_low']:+.3f}, "
                                               f"{test.extra['diff_ci_high']:+.3f}]", "p": test.p_value})
    if tests:
        adjusted = stats.adjust_pvalues([t["p_value"] for t in tests], "holm")
        for t, p in zip(tests, adjusted):
            t["p_adjusted"] = float(p)
        compared = [r for r in rows if "p" in r]
        for r, p in zip(compared, adjusted):
            r["p (Holm)"] = float(p)
    level_pct = int(round(level * 100))
    text = (f"The scores above are the mean of the bundle's {n_models} fold models (`cardio predict --ensemble "
            "folds`): each outer fold's model of the cross-validation, applied unchanged, their probabilities "
            "averaged with no recalibration (as nnU-Net averages its fold models), and each record's threshold the "
            "mean of theirs. The final model (fitted on every patient after the folds, the reference fixed before "
            f"any result) predicted the same records. Each binary task: both AUCs with their {level_pct}% "
            "DeLong score intervals, and the paired DeLong difference (ensemble − final) with its "
            "score interval and p-value, Holm-adjusted over the pairs compared: the difference of these two fitted "
            "models' AUCs in the population this cohort comes from. Nothing here was fitted on this cohort.")
    if not rows:
        text += " No binary task with a label was predicted by both, so nothing is compared."
    return Section(TITLE, text, tables={"fold ensemble against the final model": pd.DataFrame(rows)} if rows else {},
                   estimates=estimates, tests=tests, part="comparison")
