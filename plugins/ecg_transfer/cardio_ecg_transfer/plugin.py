"""Hook implementations of the ecg_transfer plugin; each delegates to the module that does the work.

The modules are imported inside the hooks: listing plugins (`cardio plugins`, `cardio config`)
then never loads torch, wfdb or the models.
"""
from __future__ import annotations

from cardio import Dataset, PluginInfo, hookimpl, package_defaults
from cardio_ecg_transfer.settings import moved_keys


@hookimpl
def cardio_plugin_info():
    defaults = package_defaults("cardio_ecg_transfer")
    return PluginInfo(name="ecg_transfer", modality="ecg",
                      description="ECG beat spectrograms; ResNet pretrained on MIT-BIH (AAMI), "
                                  "fine-tuned for CRT response",
                      default_config=defaults, moved_keys=moved_keys(defaults))


@hookimpl
def cardio_datasets():
    return {"mitdb": Dataset(description="MIT-BIH Arrhythmia Database: 48 two-lead Holter excerpts of 30 min, "
                                         "360 Hz, every beat annotated (pretraining and the AAMI benchmark)",
                             size="about 100 MB (48 records)", licence="ODC-By 1.0",
                             url="https://physionet.org/content/mitdb/1.0.0/", fetch=_fetch_mitdb),
            # external beat databases for benchmarks/aami_interpatient.py --mode external (never used in development)
            "svdb": Dataset(description="MIT-BIH Supraventricular Arrhythmia Database: 78 two-lead Holter excerpts "
                                        "of 30 min, 128 Hz, every beat annotated (external AAMI look)",
                            size="about 55 MB (78 records)", licence="ODC-By 1.0",
                            url="https://physionet.org/content/svdb/1.0.0/", fetch=_fetcher("svdb")),
            "incartdb": Dataset(description="St Petersburg INCART 12-lead Arrhythmia Database: 75 recordings of "
                                            "30 min, 257 Hz, every beat annotated (external AAMI look)",
                                size="about 800 MB (75 records)", licence="ODC-By 1.0",
                                url="https://physionet.org/content/incartdb/1.0.0/", fetch=_fetcher("incartdb"))}


def _fetch_mitdb(dest):
    # records imports SciPy's signal module (1.5 s): only a fetch needs it, not `cardio data list`
    from cardio_ecg_transfer import records

    return records.fetch_mitdb(dest)


def _fetcher(name):
    def fetch(dest):
        from cardio_ecg_transfer import databases

        return databases.fetch(name, dest)
    return fetch


@hookimpl
def cardio_cohort_schema(config):
    from cardio_ecg_transfer import cohort_table

    return cohort_table.schema(config)


@hookimpl
def cardio_load(config, ctx):
    from cardio_ecg_transfer import cohort_ecg

    return cohort_ecg.load(config, ctx)


@hookimpl
def cardio_preprocess(cohort, config, ctx):
    from cardio_ecg_transfer import cohort_ecg

    return cohort_ecg.preprocess(cohort, config, ctx)


@hookimpl
def cardio_featurize(cohort, config, ctx):
    from cardio_ecg_transfer import cohort_ecg

    return cohort_ecg.featurize(cohort, config, ctx)


@hookimpl
def cardio_prepare(config, ctx):
    from cardio_ecg_transfer import fold_models

    # MIT-BIH pretraining, once per run before the folds (it never sees the CRT cohort's labels):
    # a pretrain.Pretrained, or None when no transfer model is asked for; with finetune.archs, one per architecture.
    return fold_models.prepare(config, ctx)


@hookimpl
def cardio_train(features, train_index, prepared, config, ctx):
    from cardio_ecg_transfer import fold_models

    return fold_models.train_fold(features, train_index, config, ctx, prepared)


@hookimpl
def cardio_predict(model, features, test_index, config, ctx):
    from cardio_ecg_transfer import fold_models

    return fold_models.predict_fold(model, features, test_index, ctx)


@hookimpl
def cardio_export_model(model, config, ctx):
    from cardio_ecg_transfer import bundle

    return bundle.export(model)


@hookimpl
def cardio_import_model(state, config, ctx):
    from cardio_ecg_transfer import bundle

    return bundle.load(state)


@hookimpl
def cardio_explain(model, features, index, config, ctx):
    from cardio_ecg_transfer import attribution

    return attribution.explain_section(model, features, index, config, ctx)


@hookimpl
def cardio_evaluate(predictions, cohort, prepared, config, ctx):
    from cardio_ecg_transfer import report

    return report.sections(predictions, cohort, prepared, config, ctx)
