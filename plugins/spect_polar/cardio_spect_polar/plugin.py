"""Hook implementations of the spect_polar plugin; each delegates to the module that does the work.

cohort.py (gated DICOM cohort, synthetic one in the cache) -> features.py (phase analysis of
phase.py) -> pipeline.py (autoencoder.py + analysis.py's logistic models, per training fold) ->
report.py (the paper's in-sample analysis beside the cross-validated AUCs; phase_figures.py).
Modules are imported inside the hooks: listing plugins never loads torch or the models.
"""
from __future__ import annotations

from cardio import PluginInfo, hookimpl, package_defaults


@hookimpl
def cardio_plugin_info():
    return PluginInfo(name="spect_polar", modality="spect",
                      description="Gated SPECT MPI phase polar maps: autoencoder dyssynchrony features and "
                                  "PSD/PBW in logistic models of CRT response (He et al.)",
                      default_config=package_defaults("cardio_spect_polar"))


@hookimpl
def cardio_load(config, ctx):
    from cardio_spect_polar import cohort as spect_cohort

    return spect_cohort.load(config, ctx)


@hookimpl
def cardio_featurize(cohort, config, ctx):
    from cardio_spect_polar import features as spect_features

    return spect_features.phase_features(cohort, config, ctx)


@hookimpl
def cardio_train(features, train_index, config, ctx):
    from cardio_spect_polar import pipeline

    return pipeline.fit_phase_pipeline(features, train_index, config, ctx)


@hookimpl
def cardio_predict(model, features, test_index, config, ctx):
    from cardio_spect_polar import pipeline

    return pipeline.predict_phase_pipeline(model, features, test_index, ctx)


@hookimpl
def cardio_explain(model, features, index, config, ctx):
    from cardio_spect_polar import report

    return report.explain_section(model, features, index, ctx)


@hookimpl
def cardio_evaluate(predictions, features, config, ctx):
    from cardio_spect_polar import report

    return report.evaluate_sections(predictions, features, config, ctx)
