"""Hook implementations of the ecg_transfer plugin; each delegates to the module that does the work.

The modules are imported inside the hooks: listing plugins (`cardio plugins`, `cardio config`)
then never loads torch, wfdb or the models.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cardio import CoreSettings, PluginInfo, hookimpl, package_defaults
from cardio_ecg_transfer import mitdb_files
from cardio_ecg_transfer.settings import EcgSettings, moved_keys
from cardio_public.fetch import Dataset

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np
    import pandas as pd

    from cardio import Cohort, Features, ModelState, Predictions, RunContext, Section
    from cardio.data.cohort import Schema
    from cardio_public.weights import Release


@hookimpl
def cardio_plugin_info() -> PluginInfo:
    return PluginInfo(name="ecg_transfer", modality="ecg",
                      description="ECG beat spectrograms; ResNet pretrained on MIT-BIH (AAMI), "
                                  "fine-tuned for CRT response",
                      settings=EcgSettings, default_config=package_defaults("cardio_ecg_transfer"),
                      moved_keys=moved_keys())


@hookimpl
def cardio_datasets() -> dict[str, Dataset]:
    return {"mitdb": Dataset(description="MIT-BIH Arrhythmia Database: 48 two-lead Holter excerpts of 30 min, "
                                         "360 Hz, every beat annotated (pretraining and the AAMI benchmark)",
                             size="about 100 MB (48 records)", licence="ODC-By 1.0",
                             url="https://physionet.org/content/mitdb/1.0.0/", fetch=_fetch_mitdb,
                             files=mitdb_files.FILES, sha256=mitdb_files.sha256(), archive=mitdb_files.ARCHIVE),
            # external beat databases for benchmarks/aami_interpatient.py --mode external (never used in development)
            "svdb": Dataset(description="MIT-BIH Supraventricular Arrhythmia Database: 78 two-lead Holter excerpts "
                                        "of 30 min, 128 Hz, every beat annotated (external AAMI look)",
                            size="about 55 MB (78 records)", licence="ODC-By 1.0",
                            url="https://physionet.org/content/svdb/1.0.0/", fetch=_fetcher("svdb")),
            "incartdb": Dataset(description="St Petersburg INCART 12-lead Arrhythmia Database: 75 recordings of "
                                            "30 min, 257 Hz, every beat annotated (external AAMI look)",
                                size="about 800 MB (75 records)", licence="ODC-By 1.0",
                                url="https://physionet.org/content/incartdb/1.0.0/", fetch=_fetcher("incartdb"))}


@hookimpl
def cardio_releases() -> dict[str, Release]:
    from cardio_ecg_transfer import backbone_release

    return backbone_release.releases()


def _fetch_mitdb(dest):
    # mitdb imports wfdb and SciPy's signal module (1.5 s): only a fetch needs them, not `cardio data list`
    from cardio_ecg_transfer import mitdb

    return mitdb.fetch_mitdb(dest)


def _fetcher(name):
    def fetch(dest):
        from cardio_ecg_transfer import databases

        return databases.fetch(name, dest)
    return fetch


@hookimpl
def cardio_cohort_schema(config: dict, settings: EcgSettings) -> Schema:
    from cardio_ecg_transfer import cohort_table

    return cohort_table.schema(CoreSettings.of(config).label, settings)


@hookimpl
def cardio_write_synthetic(patients: pd.DataFrame, dest: Path, seed: int, config: dict) -> Path:
    from cardio_ecg_transfer import cohort_ecg

    # the multimodal cohort's ECGs: the patients' drive sets the mid-QRS notch depth, nothing else carries response
    return cohort_ecg.write_multimodal(patients, dest, seed, config)


@hookimpl
def cardio_load(config: dict, ctx: RunContext) -> Cohort:
    from cardio_ecg_transfer import cohort_ecg

    return cohort_ecg.load(config, ctx)


@hookimpl
def cardio_check_inputs(config: dict, settings: EcgSettings, ctx: RunContext) -> list[str]:
    from cardio_ecg_transfer import mitdb

    return mitdb.pretraining_input_problems(config, ctx.cache_dir)


@hookimpl
def cardio_preprocess(cohort: Cohort, config: dict, ctx: RunContext) -> Cohort | None:
    from cardio_ecg_transfer import cohort_ecg

    return cohort_ecg.preprocess(cohort, config, ctx)


@hookimpl
def cardio_featurize(cohort: Cohort, config: dict, ctx: RunContext) -> Features:
    from cardio_ecg_transfer import cohort_ecg

    return cohort_ecg.featurize(cohort, config, ctx)


@hookimpl
def cardio_prepare(config: dict, ctx: RunContext) -> Any:
    from cardio_ecg_transfer import fold_models

    # MIT-BIH pretraining, once per run before the folds (it never sees the CRT cohort's labels): a
    # fold_models.Prepared, each architecture's pretrain.Pretrained (None when no transfer model is asked for).
    return fold_models.prepare(config, ctx)


@hookimpl
def cardio_train(features: Features, train_index: np.ndarray, val_index: np.ndarray, prepared: Any, config: dict,
                 ctx: RunContext) -> Any:
    from cardio_ecg_transfer import fold_models

    return fold_models.train_fold(features, train_index, val_index, config, ctx, prepared)


@hookimpl
def cardio_predict(model: Any, features: Features, test_index: np.ndarray, config: dict,
                   ctx: RunContext) -> Predictions:
    from cardio_ecg_transfer import fold_models

    return fold_models.predict_fold(model, features, test_index, ctx)


@hookimpl
def cardio_refit(features: Features, train_index: np.ndarray, test_index: np.ndarray, config: dict,
                 ctx: RunContext) -> Predictions | None:
    """The clinical comparators refitted on the core's nested-CV splits, for their nested-CV intervals."""
    from cardio_ecg_transfer import fold_models

    return fold_models.refit(features, train_index, test_index, config, ctx)


@hookimpl
def cardio_export_model(model: Any, config: dict, ctx: RunContext) -> ModelState:
    from cardio_ecg_transfer import bundle

    return bundle.export(model)


@hookimpl
def cardio_import_model(state: ModelState, config: dict, ctx: RunContext) -> Any:
    from cardio_ecg_transfer import bundle

    return bundle.load(state)


@hookimpl
def cardio_explain(model: Any, features: Features, index: np.ndarray, config: dict, ctx: RunContext) -> Section | None:
    from cardio_ecg_transfer import report

    return report.explain_section(model, features, index, config, ctx)


@hookimpl
def cardio_evaluate(predictions: Predictions, cohort: Cohort, prepared: Any, config: dict, ctx: RunContext,
                    estimates: list[dict], tests: list[dict]) -> Section | list[Section] | None:
    from cardio_ecg_transfer import report

    return report.evaluate_sections(predictions, cohort, prepared, config, ctx, estimates, tests)
