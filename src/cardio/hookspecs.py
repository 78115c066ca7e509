"""The stages of a cardio study, as pluggy hook specifications (the core calls them in this order).

Every hook that takes `config` (the resolved config: the core's keys, train, cv, stats...) takes `settings` beside
it: the selected modality plugin's settings object (its PluginInfo.settings built from the resolved config), None
when it declares none. pluggy hands each implementation only the arguments it names, so a plugin names `settings`
typed as its own Settings class; an add-on that has a section of its own reads it with its class's `.of(config)`."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import numpy as np

    from cardio.config import PluginInfo, Settings
    from cardio.context import RunContext
    from cardio.data import Cohort, Features, ModelState, Predictions, Section
    from cardio.data.cohort import Schema
    from cardio_stats.nested_cv import Refitted

hookspec = pluggy.HookspecMarker("cardio")
hookimpl = pluggy.HookimplMarker("cardio")

# A modality plugin must implement these; the others are optional.
REQUIRED_HOOKS = ("cardio_plugin_info", "cardio_load", "cardio_featurize", "cardio_train", "cardio_predict")


@hookspec
def cardio_plugin_info() -> PluginInfo:
    """Return a PluginInfo: name, modality (None for an add-on), description, default config."""


@hookspec(firstresult=True)
def cardio_cohort_schema(config: dict, settings: Settings | None) -> Schema:
    """Return the Schema of the cohort table a run with this config reads (`cardio new-cohort`, the data guide)."""


@hookspec(firstresult=True)
def cardio_load(config: dict, settings: Settings | None, ctx: RunContext) -> Cohort:
    """Read the cohort from real files, or write the synthetic cohort and read it back; return a Cohort."""


@hookspec
def cardio_check_inputs(config: dict, settings: Settings | None, ctx: RunContext) -> list[str]:
    """Every problem with what a run reads besides its cohort (a public data set its prepare stage trains on), one
    line each naming the place and what to do. `cardio validate` lists them; `cardio run` stops on them before
    featurize; `cardio predict`, which trains nothing, does not ask."""


@hookspec(firstresult=True)
def cardio_preprocess(cohort: Cohort, config: dict, settings: Settings | None, ctx: RunContext) -> Cohort | None:
    """Filter, resample, crop or resize the cohort; return a Cohort (None keeps it as it is)."""


@hookspec(firstresult=True)
def cardio_featurize(cohort: Cohort, config: dict, settings: Settings | None, ctx: RunContext) -> Features:
    """Turn the cohort into the Features a model consumes."""


@hookspec(firstresult=True)
def cardio_prepare(features: Features, config: dict, settings: Settings | None, ctx: RunContext) -> Any:
    """Do a label-free step once per run, before the folds (e.g. pretraining); the result reaches train and evaluate."""


@hookspec(firstresult=True)
def cardio_train(features: Features, train_index: np.ndarray, val_index: np.ndarray, prepared: Any, config: dict,
                 settings: Settings | None, ctx: RunContext) -> Any:
    """Fit a model on the training rows of one fold; return the model.

    `train_index` are the rows to fit on and `val_index` the validation rows the core chose (for early stopping
    and thresholds): the protocol's own (holdout, predefined), else `train.val_fraction` of the fold's training
    patients, else none. Both hold only rows with a target, and no patient is in both."""


@hookspec(firstresult=True)
def cardio_predict(model: Any, features: Features, test_index: np.ndarray, config: dict, settings: Settings | None,
                   ctx: RunContext) -> Predictions:
    """Score the test rows of one fold; return Predictions."""


@hookspec(firstresult=True)
def cardio_refit(features: Features, train_index: np.ndarray, test_index: np.ndarray, prepared: Any, config: dict,
                 settings: Settings | None, ctx: RunContext) -> Predictions | None:
    """Refit the run's models that are cheap to refit on the training rows and score the test rows; optional.

    For their nested-CV intervals the core calls it R x 15 times on its own splits (docs/statistics.md), in forked
    workers over the run's CPUs (ctx.map): no torch here, and nothing a call keeps in memory reaches the next. Only
    models whose whole pipeline is fitted here from the features and labels of `train_index` (classical models, a
    fixed rule): each must score as cardio_train + cardio_predict would on those rows, under the same name and task.
    None: no model of this run is cheap to refit."""


@hookspec(firstresult=True)
def cardio_explain(model: Any, features: Features, index: np.ndarray, config: dict, settings: Settings | None,
                   ctx: RunContext) -> Section | None:
    """Explain the last fold's model on its test rows; return a Section (figures, text) or None."""


@hookspec
def cardio_evaluate(predictions: Predictions, cohort: Cohort, features: Features, prepared: Any, config: dict,
                    settings: Settings | None, ctx: RunContext, estimates: list[dict], tests: list[dict],
                    model_facts: dict[str, dict], refits: Refitted | None) -> Section | list[Section] | None:
    """Add results to the report: return a Section, a list of Sections, or None (every plugin may add).

    `estimates` and `tests` are what the sections before this one computed, the core's performance section
    first: every model and task's pooled and per-fold AUC (DeLong, patient-clustered where a patient has
    several records), thresholded metrics, calibration, regression agreement, and the paired DeLong tests
    against the reference (Holm). A plugin's tables pivot them (`cardio_stats.estimate_table`, `pick`) and
    never compute a second interval for the same number. `model_facts` maps each fold to what
    `cardio_describe_model` said of its model; `refits` holds the scores of the models cardio_refit refitted on
    nested CV's splits (None: none), which the performance section's intervals use."""


@hookspec(firstresult=True)
def cardio_describe_model(model: Any, config: dict, settings: Settings | None) -> dict:
    """JSON-able facts about one fold's fitted model (the variables a selection chose, a threshold): the core keeps
    them in the fold's task folder (model.json) and hands every fold's to cardio_evaluate as `model_facts`."""


@hookspec(firstresult=True)
def cardio_export_model(model: Any, config: dict, settings: Settings | None, ctx: RunContext) -> ModelState:
    """Describe the final model (fitted on every row) as tensors and JSON params for its bundle."""


@hookspec(firstresult=True)
def cardio_import_model(state: ModelState, config: dict, settings: Settings | None, ctx: RunContext) -> Any:
    """Rebuild the model cardio_export_model described; `cardio predict` passes it to cardio_predict."""
