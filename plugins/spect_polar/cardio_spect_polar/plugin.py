"""Hook implementations of the spect_polar plugin; each delegates to the module that does the work.

cohort.py (gated DICOM cohort, synthetic one in the cache; a multimodal cohort's SPECT) -> features.py
(phase analysis of phase.py) -> pipeline.py (autoencoder.py + analysis.py's logistic models, per training fold) ->
report.py (the held-out incremental value, each fold's variables; phase_figures.py). The paper's in-sample
replication is the add-on spect_polar_in_sample (in_sample.py, its own entry point).
Modules are imported inside the hooks: listing plugins never loads torch or the models.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cardio import PluginInfo, hookimpl, package_defaults
from cardio_spect_polar.settings import SpectSettings

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np
    import pandas as pd

    from cardio import Cohort, Features, ModelState, Predictions, RunContext, Section
    from cardio.data.cohort import Schema
    from cardio_spect_polar.cohort import Exclusions
    from cardio_spect_polar.features import PhaseStage


def moved_keys() -> dict[str, str]:
    """The keys of the sections `data`, `phase`, `autoencoder` and `analysis` before every key moved under
    `spect_polar` (issue 22), and the cohort folder and its outside-paths switch, now the core's cohort keys;
    analysis.in_sample became the opt-in spect_polar.in_sample_analysis (off by default), and the AE's cpu_threads
    the core's train.cpu_threads."""
    sp = SpectSettings.defaults()
    moved = {"data.dir": "cohort.dir", "data.allow_outside_paths": "cohort.allow_outside_paths",
             **{f"data.{k}": f"spect_polar.{k}" for k in ("clinical_csv", "outcomes", "min_esv_ml")},
             **{f"data.{k}": f"spect_polar.synthetic.{k}" for k in sp["synthetic"]},
             **{f"{s}.{k}": f"spect_polar.{s}.{k}" for s in ("phase", "autoencoder", "analysis") for k in sp[s]}}
    # a section named whole, or with a key it never had: the section's new place
    moved.update({"analysis.in_sample": "spect_polar.in_sample_analysis",
                  "spect_polar.analysis.in_sample": "spect_polar.in_sample_analysis",
                  # torch's CPU threads are the core's (the executor's share of the CPUs, or train.cpu_threads)
                  "autoencoder.cpu_threads": "train.cpu_threads",
                  "spect_polar.autoencoder.cpu_threads": "train.cpu_threads"})
    return {**moved, "data": "cohort.dir, cohort.allow_outside_paths or spect_polar.synthetic",
            **{s: f"spect_polar.{s}" for s in ("phase", "autoencoder", "analysis")}}


@hookimpl
def cardio_plugin_info() -> PluginInfo:
    return PluginInfo(name="spect_polar", modality="spect",
                      description="Gated SPECT MPI phase polar maps: autoencoder dyssynchrony features and "
                                  "PSD/PBW in logistic models of CRT response (He et al.)",
                      settings=SpectSettings, default_config=package_defaults("cardio_spect_polar"),
                      moved_keys=moved_keys())


@hookimpl
def cardio_cohort_schema(config: dict) -> Schema:
    from cardio_spect_polar import cohort

    return cohort.config_schema(config)


@hookimpl
def cardio_write_synthetic(patients: pd.DataFrame, dest: Path, seed: int, settings: SpectSettings) -> Path:
    from cardio_spect_polar import cohort

    return cohort.write_multimodal_cohort(patients, dest, seed, settings)


@hookimpl
def cardio_load(config: dict, ctx: RunContext) -> Cohort[Exclusions]:
    from cardio_spect_polar import cohort as spect_cohort

    return spect_cohort.load(config, ctx)


@hookimpl
def cardio_featurize(cohort: Cohort[Exclusions], settings: SpectSettings, ctx: RunContext) -> Features[PhaseStage]:
    from cardio_spect_polar import features as spect_features

    return spect_features.phase_features(cohort, settings, ctx)


@hookimpl
def cardio_train(features: Features, train_index: np.ndarray, config: dict, ctx: RunContext) -> Any:
    from cardio_spect_polar import pipeline

    return pipeline.fit_phase_pipeline(features, train_index, config, ctx)


@hookimpl
def cardio_predict(model: Any, features: Features, test_index: np.ndarray, config: dict,
                   ctx: RunContext) -> Predictions:
    from cardio_spect_polar import pipeline

    return pipeline.predict_phase_pipeline(model, features, test_index, ctx)


@hookimpl
def cardio_refit(features: Features, train_index: np.ndarray, test_index: np.ndarray, config: dict,
                 ctx: RunContext) -> Predictions | None:
    """The conventional models (clinical + PSD, clinical + PBW) refitted on the core's nested-CV splits."""
    from cardio_spect_polar import pipeline

    return pipeline.refit_conventional(features, train_index, test_index, config, ctx)


@hookimpl
def cardio_describe_model(model: Any, config: dict) -> dict:
    from cardio_spect_polar import pipeline

    return pipeline.describe(model)


@hookimpl
def cardio_explain(model: Any, features: Features, index: np.ndarray, config: dict, ctx: RunContext) -> Section | None:
    from cardio_spect_polar import report

    return report.explain_section(model, features, index, ctx)


@hookimpl
def cardio_evaluate(predictions: Predictions, cohort: Cohort, features: Features, config: dict,
                    model_facts: dict[str, dict], ctx: RunContext) -> Section | list[Section] | None:
    from cardio_spect_polar import report

    return report.evaluate_sections(predictions, cohort, features, config, model_facts, ctx.save_figure)


@hookimpl
def cardio_export_model(model: Any, config: dict, ctx: RunContext) -> ModelState:
    from cardio_spect_polar import bundle

    return bundle.export(model)


@hookimpl
def cardio_import_model(state: ModelState, config: dict, ctx: RunContext) -> Any:
    from cardio_spect_polar import bundle

    return bundle.load(state)
