"""cardio: plugin-based deep learning on cardiac data.

Everything a plugin uses is importable from here, or from the documented submodules `cardio.data.cohort`,
`cardio.data.files`, `cardio.data.file_kind`, `cardio.data.same_recording`, `cardio.engine`, and from the services
`cardio_stats`, `cardio_report` (the figure helper `cardio_report.figures`, Grad-CAM in `cardio_report.explain`),
`cardio_imaging`, `cardio_signal`, `cardio_sklearn` (scikit-learn objects in a model bundle), `cardio_public` (public
data sets, releases, starting weights), `cardio_response` (the CRT outcome rule) and, in tests, `cardio_testing`
(docs/plugin-api.md). The packages are the architecture: data, study, execution (docs/architecture.md); the
statistics, the report, imaging, signals, scikit-learn objects, the outcome rule, public data, fusion, the cluster's
executors and sweeps and the test suite are services (services/, some found through `cardio.services`).
"""
from __future__ import annotations

import os
import sys
from importlib import import_module
from importlib.machinery import ModuleSpec
from typing import TYPE_CHECKING, Any, cast


def allotted_cpus() -> int:
    """The CPUs this process may use: SLURM's allocation, else the affinity mask, not the machine's count."""
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        return int(slurm)
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def pip_install(what: str) -> str:
    """The command that installs `what` into the environment cardio runs in: this interpreter's pip, never a bare
    `pip`, which may be another environment's (and resolve `cardio` to the index's unrelated package of that name)."""
    python = sys.executable or "python"
    try:
        relative = os.path.relpath(python)
    except ValueError:  # another drive (Windows)
        relative = python
    shown = relative if not relative.startswith("..") else python
    return f"{shown} -m pip install {what}"


_frozen_at_exit = False


def freeze_at_exit() -> None:
    """At this process's exit, collect its garbage once and freeze what lives (gc.freeze), before the interpreter
    tears its modules down: the collections of that teardown then skip every live object, where torch's and
    torchvision's half a million took them 1-2.5 s after the work was done (a run's process, each local worker and
    SLURM job; benchmarks/process_exit.py). What the teardown frees by reference counting is freed as before, and the
    garbage that exists at exit is collected, its finalizers run. Idempotent; for processes cardio owns (the command
    line, a task's worker), not for a library caller's."""
    global _frozen_at_exit
    if not _frozen_at_exit:
        import atexit
        import gc

        def collect_and_freeze() -> None:
            gc.collect()
            gc.freeze()

        atexit.register(collect_and_freeze)
        _frozen_at_exit = True


def _openmp_defaults() -> None:
    """Before torch, VTK or NumPy's BLAS load (their OpenMP runtimes read these once): threads that wait sleep
    instead of spinning, and as many threads as this process has CPUs. Spinning threads make every multi-threaded
    op up to ten times slower on a shared node, a loaded CI machine or a SLURM allocation
    (benchmarks/threads_shared.py, benchmarks/mmode_reslice.py). What the user set stays."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("OMP_NUM_THREADS", str(allotted_cpus()))


_openmp_defaults()

if TYPE_CHECKING:  # what type checkers and readers see; at run time each name loads on first use (PEP 562)
    from importlib.abc import Loader

    from cardio.config import CoreSettings, PluginInfo, Settings, package_defaults, setting
    from cardio.context import RunContext
    from cardio.data import (
        CardioError,
        Cohort,
        Features,
        Fold,
        ModelState,
        Predictions,
        Section,
        confined_path,
        inner_split,
    )
    from cardio.data.cache import Cache, atomic_path, write_text_atomic
    from cardio.data.spreadsheet import write_csv
    from cardio.hookspecs import REQUIRED_HOOKS, hookimpl, hookspec

    __version__: str

# Public name -> the submodule that defines it: `import cardio` loads no pandas, NumPy or pluggy until a name is
# used, so `cardio --help` and `import cardio_stats` stay fast (tests/core/test_import_set.py pins the set).
_SUBMODULE = {name: module for module, names in {
    "data.cache": ("Cache", "atomic_path", "write_text_atomic"),
    "data.spreadsheet": ("write_csv",),
    "config": ("CoreSettings", "PluginInfo", "Settings", "package_defaults", "setting"),
    "context": ("RunContext",),
    "data": ("CardioError", "Cohort", "Features", "Fold", "ModelState", "Predictions",
             "Section", "confined_path", "inner_split"),
    "hookspecs": ("REQUIRED_HOOKS", "hookimpl", "hookspec"),
}.items() for name in names}

__all__ = [
    "Cache", "CardioError", "Cohort", "CoreSettings", "Features", "Fold", "ModelState", "PluginInfo", "Predictions",
    "REQUIRED_HOOKS", "RunContext", "Section", "Settings", "atomic_path", "confined_path", "hookimpl", "hookspec",
    "inner_split", "package_defaults", "setting", "write_csv", "write_text_atomic", "__version__",
]


#: The distribution's name on the package index: `cardio` there is an unrelated image viewer, so cardio's own is
#: cardio-crt (its import name and command stay `cardio`).
DISTRIBUTION = "cardio-crt"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
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


# Modules that moved when core/ was laid out by role: a plugin written against the flat layout (`cardio.cohort`,
# `from cardio import cache`) and a run or bundle pickled before keep importing them, as the same module objects.
# (The report's modules, `cardio.figures` among them, left the kernel for the report service: cardio_report.)
MOVED_MODULES = {
    "cohort": "data.cohort", "checks": "data.checks", "leakage": "data.leakage", "cache": "data.cache",
    "run": "execution.run", "tasks": "study.tasks", "bundle": "study.bundle", "signing": "study.signing",
}


class _MovedModules:
    """A meta-path finder and loader: `cardio.<old>` resolves to the module at its new path (importlib's protocol;
    asked only after the normal finders found no file of that name). importlib stamps the alias's spec on the module
    it is handed; exec_module puts the module's own spec back, so the module stays what its new path made it."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        prefix, _, old = fullname.partition(".")
        return ModuleSpec(fullname, cast("Loader", self)) if prefix == __name__ and old in MOVED_MODULES else None

    def create_module(self, spec: ModuleSpec) -> Any:
        module = import_module(f"{__name__}.{MOVED_MODULES[spec.name.partition('.')[2]]}")
        spec.loader_state = module.__spec__
        return module

    def exec_module(self, module: Any) -> None:  # the module ran when it was imported at its new path
        module.__spec__ = module.__spec__.loader_state


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.append(_MovedModules())
