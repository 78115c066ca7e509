"""Hook implementations of plugin `spect_polar`; the work is done in the method modules.

task phase_ae (default): cohort.py (DICOM cohort) -> phase.py (phase analysis) -> autoencoder.py +
analysis.py (AE features, univariate screen, logistic models per fold; the paper's in-sample
analysis) -> bullseye.py (figures). task perfusion_risk: perfusion.py.
"""
from __future__ import annotations

from pathlib import Path

from cardio import Cohort, PluginInfo, hookimpl
from cardio.config import package_defaults
from cardio.data import CardioError

from cardio_spect_polar import analysis, cohort, perfusion

TASKS = ("phase_ae", "perfusion_risk")
OUTCOME = "responder"


def _task(config: dict) -> str:
    task = config.get("task", "phase_ae")
    if task not in TASKS:
        raise CardioError(f"unknown task {task!r} for plugin spect_polar; use one of {list(TASKS)}")
    return task


@hookimpl
def cardio_plugin_info():
    return PluginInfo(name="spect_polar", modality="spect",
                      description="Gated SPECT MPI polar maps: autoencoder dyssynchrony features for CRT "
                                  "response (phase_ae) and ResNet flow-reserve/risk-factor models (perfusion_risk)",
                      default_config=package_defaults("cardio_spect_polar"))


@hookimpl
def cardio_load(config, ctx):
    if _task(config) == "perfusion_risk":
        return perfusion.load_cohort(config["perfusion"], ctx)
    data = config["data"]
    clinical = list(config["analysis"]["clinical"])
    if data["dir"]:
        table = cohort.load_cohort(Path(data["dir"]).expanduser(), data["clinical_csv"], columns=clinical,
                                   label=OUTCOME)
        root = Path(data["dir"])
    else:
        table = cohort.default_cohort(Path(ctx.cache_dir) / "spect_polar", int(data["n_patients"]),
                                      int(data["seed"]), int(data["gates"]), progress=ctx.progress,
                                      slices=int(data["slices"]), size=int(data["size"]))
        root = Path(table["path"].iloc[0]).parent.parent
    paths = dict(zip(table["record_id"], zip(table["path"], table["kind"])))
    return Cohort(table, loader=lambda rid: cohort.load_record(*paths[rid]), label=OUTCOME, root=root)


@hookimpl
def cardio_preprocess(cohort, config, ctx):
    if _task(config) == "perfusion_risk":
        return perfusion.preprocess(cohort, ctx)
    return analysis.add_phase_analysis(cohort, config["phase"], ctx)


@hookimpl
def cardio_featurize(cohort, config, ctx):
    if _task(config) == "perfusion_risk":
        return perfusion.featurize(cohort)
    return analysis.phase_features(cohort, list(config["analysis"]["clinical"]))


@hookimpl
def cardio_train(features, train_index, config, ctx):
    if _task(config) == "perfusion_risk":
        return perfusion.train_perfusion(features, train_index, config["perfusion"], ctx)
    return analysis.fit_phase_pipeline(features, train_index, config, ctx)


@hookimpl
def cardio_predict(model, features, test_index, config, ctx):
    if _task(config) == "perfusion_risk":
        return perfusion.predict_perfusion(model, features, test_index, ctx)
    return analysis.predict_phase_pipeline(model, features, test_index, ctx)


@hookimpl
def cardio_explain(model, features, index, config, ctx):
    if _task(config) == "perfusion_risk":
        return perfusion.explain_section(model, features, index, ctx)
    return analysis.phase_explain_section(model, features, index, ctx)


@hookimpl
def cardio_evaluate(predictions, cohort, config, ctx):
    if _task(config) == "perfusion_risk":
        return perfusion.evaluate_section(predictions, ctx)
    return analysis.evaluate_sections(predictions, config, ctx)
