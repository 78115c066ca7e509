"""cardio: plugin-based deep learning on cardiac data.

Everything a plugin uses is importable from here, or from the documented submodules `cardio.cohort`,
`cardio.stats`, `cardio.engine`, `cardio.aha17`, `cardio.figures`, `cardio.explain`, `cardio.cine` and `cardio.testing`.
"""
from __future__ import annotations

import os
from importlib import import_module
from typing import TYPE_CHECKING, Any


def allotted_cpus() -> int:
    """The CPUs this process may use: SLURM's allocation, else the affinity mask, not the machine's count."""
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        return int(slurm)
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _openmp_defaults() -> None:
    """Before torch, VTK or NumPy's BLAS load (their OpenMP runtimes read these once): threads that wait sleep
    instead of spinning, and as many threads as this process has CPUs. Spinning threads make every multi-threaded
    op up to ten times slower on a shared node, a loaded CI machine or a SLURM allocation
    (benchmarks/threads_shared.py, benchmarks/mmode_reslice.py). What the user set stays."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("OMP_NUM_THREADS", str(allotted_cpus()))


_openmp_defaults()

if TYPE_CHECKING:  # what type checkers and readers see; at run time each name loads on first use (PEP 562)
    from cardio.bundle import sklearn_from_array, sklearn_to_array
    from cardio.cache import Cache, atomic_path, write_text_atomic
    from cardio.config import Settings, package_defaults, setting
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

    __version__: str

# Public name -> the submodule that defines it: `import cardio` loads no pandas, NumPy or pluggy until a name is
# used, so `cardio --help` and `import cardio.stats` stay fast (tests/core/test_import_set.py pins the set).
_SUBMODULE = {name: module for module, names in {
    "bundle": ("sklearn_from_array", "sklearn_to_array"),
    "cache": ("Cache", "atomic_path", "write_text_atomic"),
    "config": ("Settings", "package_defaults", "setting"),
    "context": ("RunContext",),
    "data": ("CardioError", "Cohort", "Dataset", "Features", "Fold", "ModelState", "PluginInfo", "Predictions",
             "Section", "confined_path", "inner_split"),
    "hookspecs": ("REQUIRED_HOOKS", "hookimpl", "hookspec"),
}.items() for name in names}

__all__ = [
    "Cache", "CardioError", "Cohort", "Dataset", "Features", "Fold", "ModelState", "PluginInfo", "Predictions",
    "REQUIRED_HOOKS", "RunContext", "Section", "Settings", "atomic_path", "confined_path", "hookimpl", "hookspec",
    "inner_split", "package_defaults", "setting",
    "sklearn_from_array", "sklearn_to_array", "write_text_atomic", "__version__",
]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cardio")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0.0.0"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value: Any = _version()
    elif name in _SUBMODULE:
        value = getattr(import_module(f"{__name__}.{_SUBMODULE[name]}"), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
