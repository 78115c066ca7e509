"""`cardio validate`: the cohort loaded as a run loads it, with every record read whole, and every problem listed.

The plugin's own load is called (the same readers `cardio run` uses) with `cohort.records: read`, so each plugin's
record checks open every file whole; the core's cohort reader collects the table's problems and the records' in one
list (CohortProblems), and the study's checks (the outcome, the configured split) follow on a cohort that loads.

A plugin's synthetic cohort (cohort.dir null) is never written here: the checks of a cohort are for files a user
brings, and the synthetic cohort of a large profile is gigabytes (echo_cmr's paper profile: 1.8 GB, 8 minutes). One
already in the cache (a run wrote it) is checked; otherwise the config alone is, and the summary says so.
`--write-synthetic` writes it first, as `cardio run` would.
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cardio.context import RunContext, default_cache_dir, new_context
from cardio.data import CardioError, checks
from cardio.data.cache import Cache
from cardio.data.cohort import CohortProblems
from cardio.study.record import run_logger
from cardio.study.stages import open_study

#: How the summary of a validate that checked the config alone begins (no cohort was there to check).
CONFIG_ONLY = "config OK; no cohort checked"


class NotWritten(CardioError):
    """A cache entry validate would have to build: the plugin's synthetic cohort, not written yet."""


class KeptOnly(Cache):
    """The cache as validate reads it: an entry already written is used; none is built."""

    def get(self, namespace: str, key: Any, build: Callable[[Path], Any], suffix: str = "", *, version: int = 1,
            check: Callable[[Path], bool] | None = None) -> Path:
        path = self.path(namespace, key, suffix, version=version)
        if self._intact(path, check):
            return path
        raise NotWritten(f"{namespace} is not in the cache at {self.root}")


@dataclass(frozen=True)
class CheckingContext(RunContext):
    """validate's RunContext: its cache builds nothing unless `write` (a synthetic cohort is the run's to write)."""

    write: bool = False

    @property
    def cache(self) -> Cache:
        return Cache(self.cache_dir) if self.write else KeptOnly(self.cache_dir)


def validate_cohort(plugin: str, config_file: str | None = None, sets: Iterable[str] = (),
                    register: Iterable[object] = (), write_synthetic: bool = False) -> tuple[str, list[str]]:
    """(summary, every problem found): the cohort loaded as the run loads it, records read whole, then checked
    against the study. A synthetic cohort not in the cache is not written unless `write_synthetic`: the config
    alone is checked, and the summary says what was not."""
    study = open_study(plugin, register)
    cfg = study.config(config_file, tuple(sets))
    user = bool(cfg["cohort"]["dir"])
    if user:  # a synthetic cohort's files are the plugin's own writer's: headers suffice
        cfg["cohort"]["records"] = "read"
    cache_dir = default_cache_dir(cfg)
    with tempfile.TemporaryDirectory(prefix="cardio-validate-") as scratch:
        ctx = new_context(cfg, Path(scratch), run_logger(None, True), device="cpu", kind=CheckingContext,
                          write=user or write_synthetic)
        inputs = study.input_problems(cfg, ctx)  # what the run reads besides the cohort: said whatever the cohort
        try:
            cohort = study.load(cfg, ctx)
        except CohortProblems as e:  # the table's problems and its records', every one of them
            return "the cohort table did not load", [str(p) for p in e.problems] + inputs
        except NotWritten:
            return _config_only(plugin, cfg, cache_dir), inputs
    estimate = checks.time_estimate(cache_dir, plugin, len(cohort), checks.fits_of(cfg), cfg)
    return f"{checks.summary(cohort, cfg)}; {estimate}", study.problems(cohort, cfg) + inputs


def _config_only(plugin: str, cfg: dict, cache_dir: Path) -> str:
    folds = checks.fits_of(cfg) - (1 if cfg.get("final_model") else 0)
    return (f"{CONFIG_ONLY}: cohort.dir is null, so a run reads {plugin}'s synthetic cohort, and none "
            f"for these settings is in the cache ({cache_dir}) yet. cardio run writes it and checks it before "
            f"featurizing (cardio validate --write-synthetic writes it now); fits per model: {folds} fold(s)"
            + (" + the final model" if cfg.get("final_model") else ""))
