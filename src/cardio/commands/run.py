"""`cardio run` and `cardio status`: a study as tasks, and where its tasks stand."""
from __future__ import annotations

from pathlib import Path

import click

from cardio.data import CardioError
from cardio.execution.run import run_status, run_study
from cardio.study import signing
from cardio.study.record import read_run_json


def run(plugin: str | None, config_file: str | None, sets: tuple[str, ...], device: str | None, out: str | None,
        resume: str | None, seed: int | None, executor: str | None, workers: int | None) -> None:
    signing.signing_key()  # a configured signing key that cannot be used is said now, not after the training
    if plugin is None:
        if not resume:
            raise CardioError("name the plugin to run (--plugin NAME), or a run to continue (--resume RUN_DIR)")
        plugin = read_run_json(Path(resume))["plugin"]
    run_dir = run_study(plugin, config_file, tuple(sets), device, out, resume, seed, executor=executor,
                        workers=workers)
    click.echo(str(run_dir))


def status(run_dir: str) -> None:
    state, rows = run_status(Path(run_dir))
    click.echo(f"{run_dir}: {state}")
    for name, task_state, detail in rows:
        click.echo(f"{name:<16} {task_state:<9} {detail}".rstrip())
