"""`cardio data list|fetch|build|place`, the commands the public-data service adds to the `cardio` CLI (entry point
`cardio.services: public`, the hook cardio_commands), and the plugin hooks it adds (cardio_hookspecs). Light on
purpose: `cardio --help` loads it; a release's build (torch, the plugin's run) loads when the command runs."""
from __future__ import annotations

from pathlib import Path
from types import ModuleType

import click

from cardio import plugins
from cardio.data import CardioError
from cardio.services import Device, hookimpl
from cardio_public import fetch, hookspecs


@click.group("data")
def data_cmd() -> None:
    """Public data sets that plugins know how to download."""


@data_cmd.command("list")
def data_list() -> None:
    """Data sets offered by the installed plugins: what each is, its size and its licence."""
    sets = _datasets()
    for name in sorted(sets):
        d = sets[name]
        click.echo(f"{name}  {d.description}\n    {d.size}; licence {d.licence}; {d.url}")
        if d.archive:
            click.echo(f"    offline: carry {d.archive} here, then cardio data fetch {name} --dir DIR --from ZIP")


@data_cmd.command("fetch")
@click.argument("name")
@click.option("--dir", "dest", type=click.Path(file_okay=False), required=True, help="Destination folder.")
@click.option("--from", "source", metavar="SOURCE", help="Take the files from a copy instead of downloading them: a "
              "folder, a .zip or .tar(.gz) archive (e.g. PhysioNet's zip), or an http(s):// or file:// URL of one.")
def data_fetch(name: str, dest: str, source: str | None) -> None:
    """Download a data set (needs internet), or take it from a copy you have (--from), into --dir; either way every
    file the data set lists is checked (present, and its SHA-256 where it is published).
    e.g. `cardio data fetch mitdb --dir data/mitdb --from mit-bih-arrhythmia-database-1.0.0.zip`."""
    sets = _datasets()
    if name not in sets:
        raise CardioError(f"unknown data set {name!r}; installed plugins offer: {', '.join(sorted(sets)) or 'none'}")
    dataset, folder = sets[name], Path(dest)
    folder.mkdir(parents=True, exist_ok=True)
    if source:
        placed = fetch.place(name, dataset, source, folder)
        how = f"{len(placed)} file(s) copied from {source}" if placed else "every file already there"
    else:
        dataset.fetch(folder)
        how = "downloaded"
    problems = fetch.problems(name, dataset, folder)
    if problems:
        raise CardioError("; ".join(problems))
    checked = f"{len(dataset.files)} files checked" + (f", {len(dataset.sha256)} by SHA-256" if dataset.sha256 else "")
    click.echo(f"{name} -> {dest} ({how}; {checked})" if dataset.files else f"{name} -> {dest}")


@data_cmd.command("build")
@click.argument("name")
@click.option("--out", "dest", type=click.Path(file_okay=False), required=True, help="Folder for the release files.")
@click.option("--seed", type=int, default=0, show_default=True, help="The build's seed (the same seed on CPU gives "
              "the same sha256).")
@click.option("--set", "sets", multiple=True, help="Override a key of the plugin's config, e.g. "
              "ecg_transfer.pretrain.epochs=2.")
@click.option("--device", type=Device(), default="cpu", show_default=True)
def data_build(name: str, dest: str, seed: int, sets: tuple[str, ...], device: str) -> None:
    """Build a backbone from public data as a release: weights (safetensors), model card and sha256, e.g.
    `cardio data build mitdb-resnet18 --out releases/`."""
    from cardio_public.releases import build  # the run's context and the plugin's build: only when the command runs

    build(name, dest, seed, sets, device)


@data_cmd.command("place")
@click.argument("file", type=click.Path(dir_okay=False))
def data_place(file: str) -> None:
    """Place a downloaded release file in the cache after checking its sha256 against the one its plugin records."""
    from cardio_public.releases import place

    place(file)


def _datasets() -> dict:
    return plugins.offered(plugins.get_plugin_manager(), "cardio_datasets")


@hookimpl
def cardio_commands() -> list[click.Command]:
    return [data_cmd]


@hookimpl
def cardio_hookspecs() -> list[ModuleType]:
    return [hookspecs]
