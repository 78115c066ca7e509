"""Helpers for testing cardio and its plugins in process: a CPU run context, a study run, the CLI.

    from cardio.testing import cpu_context, run_plugin, invoke, pooled

The core's tests, the plugins' tests, the template's generated test and the benchmarks use these.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cardio import config as config_mod
from cardio.context import RunContext


def cpu_context(out_dir: str | Path, config: dict | None = None, *, seed: int = 0, **train: Any) -> RunContext:
    """A CPU RunContext writing to `out_dir` (cache in out_dir/cache); `train` overrides engine defaults."""
    import torch

    out_dir = Path(out_dir)
    cfg = config or config_mod.core_defaults()
    (out_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    return RunContext(device=torch.device("cpu"), seed=seed, out_dir=out_dir, cache_dir=out_dir / "cache",
                      log=logging.getLogger("cardio.test"), train={**cfg["train"], **train})


def run_plugin(plugin: str, out_dir: str | Path, sets: Sequence[str] = (), *, cache_dir: str | Path | None = None,
               register: Iterable[object] = (), config_file: str | Path | None = None, seed: int | None = None,
               device: str = "cpu") -> Path:
    """Run a study in process (cardio.run.run_study) and return its run directory.

    `register` adds plugin objects that are not installed; `cache_dir` defaults to out_dir's sibling `cache`.
    """
    from cardio.run import run_study

    out_dir = Path(out_dir)
    cache = Path(cache_dir) if cache_dir else out_dir.parent / "cache"
    sets = (*sets, f"cache_dir={cache}")
    return run_study(plugin, str(config_file) if config_file else None, tuple(sets), device, str(out_dir),
                     seed=seed, register=register)


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


def invoke(*args: str) -> CliResult:
    """Run `cardio ARGS...` in process through click's test runner; exit code, stdout and stderr apart."""
    from click.testing import CliRunner

    from cardio.cli import main

    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return CliResult(result.exit_code, result.stdout, result.stderr)


def read_metrics(run_dir: str | Path) -> dict:
    return json.loads((Path(run_dir) / "metrics.json").read_text())


def pooled(metrics: dict, metric: str = "auc", *, model: str | None = None, task: str | None = None,
           method: str | None = "delong") -> list[dict]:
    """The pooled out-of-fold estimates of a run (first repeat, no subgroup), optionally of one model/task."""
    return [e for e in metrics["estimates"]
            if e.get("metric") == metric and e.get("fold") == "pooled" and e.get("subgroup") is None
            and e.get("repeat", 0) == 0 and (method is None or e.get("method") == method)
            and (model is None or e.get("model") == model) and (task is None or e.get("task") == task)]
