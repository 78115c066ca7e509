"""The stages of a cardio study, as pluggy hook specifications."""
from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("cardio")
hookimpl = pluggy.HookimplMarker("cardio")


@hookspec
def cardio_plugin_info():
    """Return a PluginInfo: name, modality (None for an add-on), description, default config."""


@hookspec(firstresult=True)
def cardio_load(config, ctx):
    """Read the cohort from real files, or write the synthetic cohort and read it back."""


@hookspec(firstresult=True)
def cardio_preprocess(cohort, config, ctx):
    """Filter, resample, crop or resize the cohort; return a Cohort."""


@hookspec(firstresult=True)
def cardio_featurize(cohort, config, ctx):
    """Turn the cohort into the Features a model consumes."""


@hookspec(firstresult=True)
def cardio_train(features, train_index, config, ctx):
    """Fit a model on the training rows of one fold; return the model."""


@hookspec(firstresult=True)
def cardio_predict(model, features, test_index, config, ctx):
    """Score the test rows of one fold; return Predictions."""


@hookspec(firstresult=True)
def cardio_explain(model, features, index, config, ctx):
    """Explain a fitted model on some rows; return a Section (figures, text) or None."""


@hookspec
def cardio_evaluate(predictions, cohort, config, ctx):
    """Add results to the report: return a Section, a list of Sections, or None."""


@hookspec
def cardio_datasets():
    """Return {name: fetch(dest)} for the public data sets `cardio data fetch` can download."""
