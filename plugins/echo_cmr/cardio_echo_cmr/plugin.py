"""Hook implementations of the echo_cmr plugin; each delegates to the module that does the work.

cohort.py (labels.csv, one row per clip, or EchoNet-Dynamic's FileList.csv, through cardio.data.cohort.read_table with
the schema of the configured views and targets (targets.py) to one record per study; the synthetic cohort of
synthetic.py in the cache) -> video.py (sector mask, crop, 112x112 cubic, uint8 clip cache, parallel) -> training.py
(r2plus1d_18 per view through cardio.engine, an output per target selected on its own validation metric, view
fusion) -> report.py (Table 2 layout from the core's estimates, Grad-CAM, masking figure) -> bundle.py
(the final model, cardio predict).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cardio import PluginInfo, hookimpl, package_defaults
from cardio_echo_cmr.settings import EchoSettings

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np
    import pandas as pd

    from cardio import Cohort, Features, ModelState, Predictions, RunContext, Section
    from cardio.data.cohort import Schema


@hookimpl
def cardio_plugin_info() -> PluginInfo:
    return PluginInfo(name="echo_cmr", modality="echo",
                      description="Echo videos (A4C, A2C, PLAX) -> r2plus1d_18 video CNN per view predicting CMR "
                                  "wall-motion abnormality, LGE and T1/T2/ECV, fused by logistic regression "
                                  "(Sahashi et al.)",
                      settings=EchoSettings, default_config=package_defaults("cardio_echo_cmr"),
                      moved_keys={"echo_cmr.dir": "cohort.dir", "echo_cmr.val_fraction": "train.val_fraction",
                                  # torch's CPU threads are the core's (the executor's share, or train.cpu_threads)
                                  "echo_cmr.train.cpu_threads": "train.cpu_threads"})


@hookimpl
def cardio_cohort_schema(settings: EchoSettings) -> Schema:
    from cardio_echo_cmr import cohort

    return cohort.schema(settings)


@hookimpl
def cardio_write_synthetic(patients: pd.DataFrame, dest: Path, seed: int, settings: EchoSettings) -> Path:
    from cardio_echo_cmr import synthetic

    # the multimodal cohort's echo: the patients' drive sets who has WMA (an akinetic territory), nothing else does
    return synthetic.write_for_patients(patients, dest, seed, settings)


@hookimpl
def cardio_load(config: dict, ctx: RunContext) -> Cohort:
    from cardio_echo_cmr import cohort

    return cohort.load(config, ctx)


@hookimpl
def cardio_featurize(cohort: Cohort, settings: EchoSettings, ctx: RunContext) -> Features:
    from cardio_echo_cmr import cohort as echo_cohort

    return echo_cohort.featurize(cohort, settings, ctx)


@hookimpl
def cardio_train(features: Features, train_index: np.ndarray, val_index: np.ndarray, config: dict,
                 ctx: RunContext) -> Any:
    from cardio_echo_cmr import training

    return training.train(features, train_index, val_index, config, ctx)


@hookimpl
def cardio_predict(model: Any, features: Features, test_index: np.ndarray, settings: EchoSettings,
                   ctx: RunContext) -> Predictions:
    from cardio_echo_cmr import training

    return training.predict(model, features, test_index, settings, ctx)


@hookimpl
def cardio_explain(model: Any, features: Features, index: np.ndarray, settings: EchoSettings,
                   ctx: RunContext) -> Section | None:
    from cardio_echo_cmr import report

    return report.explain_section(model, features, index, settings, ctx)


@hookimpl
def cardio_evaluate(predictions: Predictions, cohort: Cohort, config: dict, ctx: RunContext,
                    estimates: list[dict]) -> Section | list[Section] | None:
    from cardio_echo_cmr import report

    return report.evaluate_sections(predictions, config, estimates, cohort, ctx.save_figure)


@hookimpl
def cardio_export_model(model: Any, settings: EchoSettings, ctx: RunContext) -> ModelState:
    from cardio_echo_cmr import bundle

    return bundle.export(model, settings)


@hookimpl
def cardio_import_model(state: ModelState, config: dict, ctx: RunContext) -> Any:
    from cardio_echo_cmr import bundle

    return bundle.load(state)
