"""Hook implementations of the perfusion_polar plugin; each delegates to the module that does the work.

cohort.py (labels.csv + maps, the synthetic cohort of synthetic.py in the cache) -> training.py
(two-step ResNet of model.py and the 17-segment baselines, per fold) -> report.py (figures, tables).
Modules are imported inside the hooks: listing plugins never loads torch or the models.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cardio import PluginInfo, hookimpl, package_defaults
from cardio_perfusion_polar.settings import PerfusionSettings

if TYPE_CHECKING:
    import numpy as np

    from cardio import Cohort, Features, ModelState, Predictions, RunContext, Section
    from cardio.data.cohort import Schema


NAMESPACE = PerfusionSettings.section


def _dotted(node: dict, prefix: str = "") -> list[str]:
    """Every key of a config section as a dotted name, its sub-sections included."""
    out = []
    for key, value in node.items():
        out.append(f"{prefix}{key}")
        if isinstance(value, dict):
            out += _dotted(value, f"{prefix}{key}.")
    return out


def moved_keys() -> dict[str, str]:
    """The old `perfusion:` section's keys -> their names now: perfusion.dir is the core's cohort.dir, val_fraction
    and cpu_threads the core's train keys, every other key moved under perfusion_polar. Deepest first, so that the
    error names the very key; the section itself last."""
    keys = sorted(_dotted(PerfusionSettings.defaults()), key=lambda k: -k.count("."))
    return {"perfusion.dir": "cohort.dir", "perfusion.val_fraction": "train.val_fraction",
            f"{NAMESPACE}.val_fraction": "train.val_fraction",
            # torch's CPU threads are the core's (the executor's share of the CPUs, or train.cpu_threads)
            "perfusion.cpu_threads": "train.cpu_threads", f"{NAMESPACE}.cpu_threads": "train.cpu_threads",
            **{f"perfusion.{k}": f"{NAMESPACE}.{k}" for k in keys}, "perfusion": NAMESPACE}


@hookimpl
def cardio_plugin_info() -> PluginInfo:
    return PluginInfo(name="perfusion_polar", modality="mpi",
                      description="Rest/stress/flow-reserve polar maps: two-step multitask ResNet for segmental "
                                  "MFR and cardiovascular risk factors (Yeung et al.) vs 17-segment logistic "
                                  "regression",
                      settings=PerfusionSettings, default_config=package_defaults("cardio_perfusion_polar"),
                      moved_keys=moved_keys())


@hookimpl
def cardio_cohort_schema(config: dict) -> Schema:
    from cardio_perfusion_polar import cohort

    return cohort.SCHEMA

@hookimpl
def cardio_load(config: dict, ctx: RunContext) -> Cohort:
    from cardio_perfusion_polar import cohort as polar_cohort

    return polar_cohort.load(config, ctx)


@hookimpl
def cardio_featurize(cohort: Cohort, config: dict, ctx: RunContext) -> Features:
    from cardio_perfusion_polar import cohort as polar_cohort

    return polar_cohort.featurize(cohort, ctx)


@hookimpl
def cardio_train(features: Features, train_index: np.ndarray, val_index: np.ndarray, config: dict,
                 ctx: RunContext) -> Any:
    from cardio_perfusion_polar import training

    return training.train(features, train_index, val_index, config, ctx)


@hookimpl
def cardio_predict(model: Any, features: Features, test_index: np.ndarray, config: dict,
                   ctx: RunContext) -> Predictions:
    from cardio_perfusion_polar import training

    return training.predict(model, features, test_index, ctx)


@hookimpl
def cardio_refit(features: Features, train_index: np.ndarray, test_index: np.ndarray, config: dict,
                 ctx: RunContext) -> Predictions | None:
    """The 17-segment logistic regressions refitted on the core's nested-CV splits, for their nested-CV intervals."""
    from cardio_perfusion_polar import training

    return training.refit(features, train_index, test_index, config)


@hookimpl
def cardio_export_model(model: Any, settings: PerfusionSettings, ctx: RunContext) -> ModelState:
    from cardio_perfusion_polar import bundle

    return bundle.export(model, settings)


@hookimpl
def cardio_import_model(state: ModelState, config: dict, ctx: RunContext) -> Any:
    from cardio_perfusion_polar import bundle

    return bundle.load(state)


@hookimpl
def cardio_explain(model: Any, features: Features, index: np.ndarray, config: dict, ctx: RunContext) -> Section | None:
    from cardio_perfusion_polar import report

    return report.explain_section(model, features, index, ctx)


@hookimpl
def cardio_evaluate(predictions: Predictions, cohort: Cohort, config: dict, estimates: list[dict],
                    tests: list[dict]) -> Section | list[Section] | None:
    from cardio_perfusion_polar import report

    return report.evaluate_sections(predictions, estimates, tests, config, cohort)
