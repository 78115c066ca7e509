"""`cardio data build` and `cardio data place`: backbones built from public data as releases, and a downloaded
release checked into the cache."""
from __future__ import annotations

import logging
from pathlib import Path

import click

from cardio import config as config_mod
from cardio import plugins
from cardio.context import default_cache_dir, new_context
from cardio.data import CardioError
from cardio_public.weights import place_release, write_release


def build(name: str, dest: str, seed: int, sets: tuple[str, ...], device: str) -> None:
    loaded = plugins.get_plugin_manager()
    releases = plugins.offered(loaded, "cardio_releases")
    release = releases.get(name)
    if release is None:
        raise CardioError(f"unknown release {name!r}; installed plugins build: {', '.join(sorted(releases)) or 'none'}")
    info = plugins.info(plugins.select(loaded, release.plugin), release.plugin)
    config = config_mod.resolve(info.default_config, None, (*sets, f"seed={seed}", f"device={device}"),
                                info.moved_keys)
    out = Path(dest)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    ctx = new_context(config, out / f".build-{name}", logging.getLogger("cardio.run"), device=device)
    checked = write_release(name, release.build(config, ctx), out)
    click.echo(checked.path.with_suffix(".md").read_text())
    click.echo(f"{checked.sha256}  {checked.path}")


def place(file: str) -> None:
    releases = plugins.offered(plugins.get_plugin_manager(), "cardio_releases")
    checked, release = place_release(file, releases, default_cache_dir({}))
    click.echo(f"placed {checked.describe()} at {checked.path}")
    if release.use:
        click.echo("use it: --set " + release.use.format(path=checked.path))
