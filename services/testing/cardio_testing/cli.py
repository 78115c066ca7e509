"""`cardio new-plugin`, the command the testing service (the plugin author's kit) adds to the `cardio` CLI (entry point
`cardio.services: testing`, the hook cardio_commands). Light on purpose: `cardio --help` loads it."""
from __future__ import annotations

from pathlib import Path

import click

import cardio
from cardio.services import hookimpl


@click.command("new-plugin")
@click.argument("name")
@click.option("--dir", "dest", type=click.Path(file_okay=False), default=".", help="Where to write the package.")
def new_plugin_cmd(name: str, dest: str) -> None:
    """Write an installable plugin package that runs end to end on synthetic data."""
    from cardio_testing.scaffold import write_plugin

    path = write_plugin(name, Path(dest))
    click.echo(f"wrote {path}\nnext: {cardio.pip_install(f'-e {path}')} && cardio run --plugin {name}")


@hookimpl
def cardio_commands() -> list[click.Command]:
    return [new_plugin_cmd]
