"""Hook implementations of the mmode_septal_flash plugin; each delegates to the module that does the work.

cohort.py (labels.csv read by cardio.data.cohort.read_table against the plugin's SCHEMA, sequences through
cardio_imaging.cine, septum points; the synthetic cohort of synthetic.py in the cache) -> preprocess.py
(geometry.py's line, mmode.py's VTK or torch reslice, full and cropped variants) -> training.py
(DenseNet-121 of model.py per variant, per fold; bundle.py exports the final one for `cardio predict`) ->
report.py (attention.py's Grad-CAM++ overlays and score; Table 1). The outcome is the config's `label`
(septal_flash; responder in a multimodal CRT cohort, whose echo cardio_write_synthetic writes). Every key of
the plugin is under `mmode_septal_flash:`; the cohort folder is the core's `cohort.dir`. Modules are imported
inside the hooks: listing plugins never loads torch, VTK or the models.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cardio import PluginInfo, hookimpl, package_defaults
from cardio_mmode_septal_flash.settings import SeptalFlashSettings

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np
    import pandas as pd

    from cardio import Cohort, Features, ModelState, Predictions, RunContext, Section
    from cardio.data.cohort import Schema


# Keys of earlier versions: a config naming one is refused in one line naming its new key.
MOVED_KEYS = {"septal_flash.dir": "cohort.dir", "mmode_septal_flash.model.val_fraction": "train.val_fraction",
              "septal_flash": "mmode_septal_flash", "mmode_septal_flash.model.cpu_threads": "train.cpu_threads"}


@hookimpl
def cardio_plugin_info() -> PluginInfo:
    return PluginInfo(name="mmode_septal_flash", modality="echo",
                      description="Virtual anatomical M-mode from A4C sequences -> DenseNet-121 septal-flash "
                                  "classifier (full vs cropped) -> Grad-CAM++ localization (Saiz-Vivo et al.)",
                      settings=SeptalFlashSettings, default_config=package_defaults("cardio_mmode_septal_flash"),
                      moved_keys=MOVED_KEYS)


@hookimpl
def cardio_cohort_schema(config: dict) -> Schema:
    from cardio_mmode_septal_flash import cohort

    return cohort.run_schema(cohort.label_of(config))


@hookimpl
def cardio_load(config: dict, ctx: RunContext) -> Cohort:
    from cardio_mmode_septal_flash import cohort

    return cohort.load(config, ctx)


@hookimpl
def cardio_write_synthetic(patients: pd.DataFrame, dest: Path, seed: int, settings: SeptalFlashSettings) -> Path:
    from cardio_mmode_septal_flash import synthetic

    return synthetic.write_for_patients(patients, dest, seed, settings)


@hookimpl
def cardio_featurize(cohort: Cohort, settings: SeptalFlashSettings, ctx: RunContext) -> Features:
    from cardio_mmode_septal_flash import preprocess

    return preprocess.featurize(cohort, settings, ctx)


@hookimpl
def cardio_train(features: Features, train_index: np.ndarray, val_index: np.ndarray, config: dict,
                 ctx: RunContext) -> Any:
    from cardio_mmode_septal_flash import training

    return training.train(features, train_index, val_index, config, ctx)


@hookimpl
def cardio_predict(model: Any, features: Features, test_index: np.ndarray, config: dict,
                   ctx: RunContext) -> Predictions:
    from cardio_mmode_septal_flash import training

    return training.predict(model, features, test_index, ctx)


@hookimpl
def cardio_export_model(model: Any, config: dict, ctx: RunContext) -> ModelState:
    from cardio_mmode_septal_flash import bundle

    return bundle.export(model)


@hookimpl
def cardio_import_model(state: ModelState, settings: SeptalFlashSettings, ctx: RunContext) -> Any:
    from cardio_mmode_septal_flash import bundle

    return bundle.load(state, settings.model.input_size)


@hookimpl
def cardio_explain(model: Any, features: Features, index: np.ndarray, config: dict, ctx: RunContext) -> Section | None:
    from cardio_mmode_septal_flash import report

    return report.explain_section(model, features, index, config, ctx)


@hookimpl
def cardio_evaluate(predictions: Predictions, cohort: Cohort, features: Features, config: dict,
                    estimates: list[dict], tests: list[dict]) -> Section | list[Section] | None:
    from cardio_mmode_septal_flash import report

    return report.evaluate_sections(predictions, cohort, features, config, estimates, tests)
