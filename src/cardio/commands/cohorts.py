"""`cardio validate` and `cardio new-cohort`: cohorts checked and laid out."""
from __future__ import annotations

from pathlib import Path

import click

from cardio import config as config_mod
from cardio import plugins
from cardio.data import CardioError
from cardio.data.cohort import capped, write_template
from cardio.study.validate import CONFIG_ONLY, validate_cohort


def validate(plugin: str, config_file: str | None, sets: tuple[str, ...], write_synthetic: bool) -> None:
    summary, problems = validate_cohort(plugin, config_file, tuple(sets), write_synthetic=write_synthetic)
    if problems:
        for p in capped(problems):  # of one kind, the first 20 and a count of the rest
            click.echo(f"problem: {p}", err=True)
        raise CardioError(f"{len(problems)} problem(s) in the cohort ({summary})")
    click.echo(summary if summary.startswith(CONFIG_ONLY) else f"cohort OK: {summary}")


def new_cohort(plugin: str, dest: str, config_file: str | None, sets: tuple[str, ...]) -> None:
    loaded = plugins.get_plugin_manager()
    pm = plugins.select(loaded, plugin)
    info = plugins.info(pm, plugin)
    cfg = config_mod.resolve(info.default_config, config_file, tuple(sets), info.moved_keys)
    above = next((p for p in (Path(dest), *Path(dest).parents) if p.exists()), None)
    if above is not None and not above.is_dir():
        raise CardioError(f"{dest}: {above} is a file, not a folder; choose another destination")
    schema = pm.hook.cardio_cohort_schema(config=cfg, settings=config_mod.plugin_settings(info, cfg))
    if schema is None:
        raise CardioError(f"plugin {plugin!r} does not describe its cohort table (no cardio_cohort_schema hook)")
    for path in write_template(dest, schema, plugin):
        click.echo(str(path))
