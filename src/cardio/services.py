"""The services that stand on the kernel (services/<name>: fusion, cluster ...), found through the entry-point group
`cardio.services` as modality plugins are found through `cardio`: the kernel never imports a service by name
(pyproject's import contracts), and `cardio` stays one command whatever is installed. A service's entry point names a
module of hook implementations (`@cardio.services.hookimpl`) of the specifications below: the commands it adds to
`cardio`, the executors it adds to `cardio run --executor`, the hooks it adds to the plugins' (as pytest's
pytest_addhooks), the report (the sections every study gets, report.md and report.html rendered from report.json,
the figures saved into a run), the fold ensemble's models and the training records' fingerprints (kept for the
bundle)."""
from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, cast

import click
import pluggy

from cardio import config as config_mod
from cardio.data import CardioError, Cohort, Features, ModelState, Predictions, Section

GROUP = "cardio.services"
hookspec = pluggy.HookspecMarker(GROUP)
hookimpl = pluggy.HookimplMarker(GROUP)


@hookspec
def cardio_commands() -> list[click.Command]:
    """Commands the service adds to the `cardio` CLI (its module stays light: `cardio --help` loads every service)."""


@hookspec
def cardio_executors() -> dict[str, Callable[..., bool]]:
    """Executors by name (`executor.name`): each `submit(spec, config, run_dir, todo, log, here) -> bool` runs or
    submits a run's pending tasks (TaskSpec, the run's config, its folder, the task names, run.log's logger, a
    function running one task in this process) and is True when the run finished here."""


# The report (services/report, cardio-crt-report): the kernel writes the run's product (predictions.csv, metrics.json,
# report.json: cardio.study.outputs) and asks the report service for the rest.
@hookspec
def cardio_study_plugins() -> list[object]:
    """Modules of cardio.hookspecs implementations every study registers beside its plugins, under the module's
    last name (the report service's performance and subgroup sections, through cardio_evaluate)."""


@hookspec(firstresult=True)
def cardio_render_report(run_dir: Path, checklist: bool) -> str | None:
    """(Re)write report.md and report.html from the run's report.json (with `checklist`, tripod_ai.md beside them)
    and return the markdown; where no service implements it, the run keeps report.json alone."""


class SectionContext(Protocol):
    """What a service's sections use of the run's context: its seed, the statistics service and the figure helper.
    cardio.context.RunContext is one (the deploy service's cardio_deploy.predict hands it over as one); a Protocol
    here, because the context saves its figures through this module and so stands above it."""

    @property
    def seed(self) -> int: ...

    @property
    def stats(self) -> Any: ...

    def save_figure(self, fig: Any, name: str, dpi: int | None = None, caption: str | None = None) -> Path: ...


@hookspec(firstresult=True)
def cardio_performance_sections(predictions: Predictions, config: dict, ctx: SectionContext,
                                truth: str | None) -> list[Section]:
    """The performance sections of predictions made outside a run's cross-validation (`cardio predict`'s external
    validation: every model and task with its CIs); `truth` is a synthetic cohort's stated truth."""


@hookspec(firstresult=True)
def cardio_cohort_truth(cohort_dir: Path) -> str | None:
    """What a cohort folder that a service wrote states of itself, one paragraph that every report on it repeats (the
    fusion service's `cardio synthetic-crt` cohorts: their truth.json); None for any other folder."""


# The fold ensemble (`fold_models: true`, for `cardio predict --ensemble folds`): the kernel exports each outer fold's
# model, and the deploy service keeps them and adds them to the run's bundle; without it the bundle holds the final one.
@hookspec(firstresult=True)
def cardio_keep_fold_model(state: ModelState, plugin: str, fold: str, config: dict, run_dir: Path) -> bool:
    """Keep an outer fold's exported model for the bundle (its fit task, on the main rank); True when kept."""


@hookspec(firstresult=True)
def cardio_add_fold_models(run_dir: Path, folds: list[str], log: logging.Logger) -> bool:
    """Add every outer fold's kept model to the run's bundle (the evaluate task, once every fit and the final model
    are done), or log why not; True when it did either."""


# The final model's bundle: the deploy service keeps salted fingerprints of its training records in bundle.json, for
# `cardio predict` to tell a cohort that shares records with them; without it the bundle carries none.
@hookspec(firstresult=True)
def cardio_training_fingerprints(features: Features, cohort: Cohort) -> dict | None:
    """What the final model's bundle keeps of the records it was fitted on (the final task, on the main rank)."""


@hookspec(firstresult=True)
def cardio_save_figure(figure: Any, path: Path, dpi: int | None, caption: str | None) -> Path:
    """Save a matplotlib Figure at `path` (PNG, SVG beside it) with its caption, release it; the PNG's path."""


@hookspec(firstresult=True)
def cardio_figure_saves() -> AbstractContextManager[None]:
    """A block inside which saved figures render side by side in worker processes (the evaluate stage's and the
    explain stage's)."""


@hookspec
def cardio_hookspecs() -> list[ModuleType]:
    """Modules of plugin hook specifications (`@cardio.hookspec`) the service adds: hooks that only the plugins which
    declare the service implement (cardio_datasets of the public-data service, cardio_write_synthetic of fusion)."""


class Device(click.ParamType):
    """auto, cpu, cuda or cuda:N, checked when the command line is read: `--device` of the kernel's commands and of
    those a service adds."""

    name = "auto|cpu|cuda|cuda:N"

    def convert(self, value, param, ctx):
        if config_mod.RULES["device"](value):
            return value
        raise CardioError(f"--device {value!r} is not a device; use auto, cpu, cuda or cuda:N")  # one line, exit 2


@dataclass
class Services:
    pm: pluggy.PluginManager
    failed: dict[str, str] = field(default_factory=dict)  # name -> why it did not load
    versions: dict[str, str] = field(default_factory=dict)


@functools.cache
def installed() -> Services:
    """Every service of the entry-point group, each loaded on its own: one that fails to import is left out and
    named in `failed` (and by `cardio plugins`), not a broken `cardio` command."""
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(sys.modules[__name__])
    services = Services(pm)
    for ep in entry_points(group=GROUP):
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as e:
            services.failed[ep.name] = f"{type(e).__name__}: {' '.join(str(e).split())}"
            continue
        services.versions[ep.name] = ep.dist.version if ep.dist else "?"
    return services


def commands() -> list[click.Command]:
    """The commands every installed service adds to the CLI."""
    return [command for offered in installed().pm.hook.cardio_commands() for command in offered]


def executors() -> dict[str, Callable[..., bool]]:
    """The executors every installed service adds, by name."""
    return {name: submit for offered in installed().pm.hook.cardio_executors() for name, submit in offered.items()}


def figure_saves() -> AbstractContextManager[None]:
    """The report service's block in which figures render side by side (cardio_figure_saves); without the service,
    no block (no figure can be saved then)."""
    block = installed().pm.hook.cardio_figure_saves()
    return nullcontext() if block is None else block


def study_plugins() -> list[tuple[str, object, str]]:
    """(name, module, the service's version) of every module the installed services add to each study."""
    found = installed()
    return [(module.__name__.rsplit(".", 1)[-1], module, found.versions.get(impl.plugin_name, "?"))
            for impl in found.pm.hook.cardio_study_plugins.get_hookimpls()
            for module in cast("list[Any]", impl.function())]


def hookspecs() -> list[ModuleType]:
    """The plugin hook specifications every installed service adds."""
    return [module for offered in installed().pm.hook.cardio_hookspecs() for module in offered]


def listing() -> list[dict]:
    """One row per service for `cardio plugins`: its name, version and the commands it adds, or why it failed."""
    found = installed()
    rows = [{"name": name, "version": found.versions.get(name, "?"), "error": None,
             "adds": [f"cardio {c.name}" for c in (getattr(service, "cardio_commands", list)())]
             + [f"--executor {e}" for e in (getattr(service, "cardio_executors", dict)())]
             + (["report.md and report.html"] if hasattr(service, "cardio_render_report") else [])}
            for name, service in sorted(found.pm.list_name_plugin())]
    return rows + [{"name": name, "version": "?", "adds": [], "error": error}
                   for name, error in sorted(found.failed.items())]
