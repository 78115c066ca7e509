"""cardio: plugin-based deep learning on cardiac data.

Everything a plugin uses is importable from here, or from the documented submodules `cardio.cohort`,
`cardio.stats`, `cardio.engine`, `cardio.aha17`, `cardio.figures`, `cardio.explain`, `cardio.cine` and `cardio.testing`.
"""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from cardio.bundle import sklearn_from_array, sklearn_to_array
from cardio.cache import Cache, atomic_path, write_text_atomic
from cardio.config import package_defaults
from cardio.context import RunContext
from cardio.data import (
    CardioError,
    Cohort,
    Dataset,
    Features,
    Fold,
    ModelState,
    PluginInfo,
    Predictions,
    Section,
    confined_path,
    inner_split,
)
from cardio.hookspecs import REQUIRED_HOOKS, hookimpl, hookspec

try:
    __version__ = version("cardio")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "Cache", "CardioError", "Cohort", "Dataset", "Features", "Fold", "ModelState", "PluginInfo", "Predictions",
    "REQUIRED_HOOKS", "RunContext", "Section", "atomic_path", "confined_path", "hookimpl", "hookspec", "inner_split",
    "package_defaults",
    "sklearn_from_array", "sklearn_to_array", "write_text_atomic", "__version__",
]
