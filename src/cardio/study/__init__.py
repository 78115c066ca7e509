"""The study: one plugin's stages and fits, used alike by `cardio run` (each task of a run), `cardio validate` and
the deploy service's `cardio predict`. `open_study(plugin)` selects the plugin; its `Study` runs the stages, each
hook's result checked.

    stages.py    load -> preprocess -> checks -> featurize -> prepare -> folds (the Study), built once per run
    fits.py      each outer fold and its inner folds, the final model
    evaluate.py  predictions at the plugin's level, every plugin's sections, the run's files
    record.py    the run's folder: run.json (provenance, status) as one RunRecord, config.yaml, run.log
    validate.py  cardio validate: the load and the checks, every problem listed
    tasks.py     a run as tasks (prepare, fit-<fold>, final, evaluate): their folders, markers and results on disk
    bundle.py    the run's model bundle (<run>/model/): the final model as safetensors + JSON; signing.py signs it
"""
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cardio.study.stages import Study, open_study

__all__ = ["Study", "open_study"]


def __getattr__(name: str) -> Any:  # `cardio.study.bundle` alone (cardio predict, cardio sign) loads no stages
    if name in __all__:
        return getattr(import_module("cardio.study.stages"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
