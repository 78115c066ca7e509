"""cardio: plugin-based deep learning on cardiac data."""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from cardio.data import Cohort, Features, Fold, PluginInfo, Predictions, Section, inner_split
from cardio.hookspecs import hookimpl, hookspec

try:
    __version__ = version("cardio")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "Cohort", "Features", "Fold", "PluginInfo", "Predictions", "Section",
    "hookimpl", "hookspec", "inner_split", "__version__",
]
