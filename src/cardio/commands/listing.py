"""`cardio plugins`: the installed plugins and services, and whether each plugin's runs can be applied elsewhere."""
from __future__ import annotations

import json

import click

import cardio
from cardio import plugins, services
from cardio.study import bundle


def list_plugins(as_json: bool) -> None:
    loaded = plugins.get_plugin_manager()
    rows = plugins.listing(loaded)
    for r in rows:  # whether a run's final model can be applied to a new cohort (None: yes; else why not)
        r["bundle"] = bundle.support(loaded.pm, r["name"]) if r["modality"] and not r["error"] else None
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"no cardio plugins installed ({cardio.pip_install('-e plugins/<name>')})")
    for r in rows:
        if r["error"]:
            click.echo(f"{r['name']:<20} BROKEN  {r['error']}")
            continue
        kind = r["modality"] or "add-on"
        click.echo(f"{r['name']:<20} {r['version']:<8} {kind:<8} {r['description']}")
        click.echo(f"{'':<20} hooks: {', '.join(h.removeprefix('cardio_') for h in r['hooks'])}")
        if r["modality"]:
            click.echo(f"{'':<20} cardio predict: {'yes' if r['bundle'] is None else 'no, ' + r['bundle']}")
    for r in services.listing():
        if r["error"]:
            click.echo(f"{r['name']:<20} BROKEN  service: {r['error']}")
        else:
            click.echo(f"{r['name']:<20} {r['version']:<8} service  adds: {', '.join(r['adds']) or 'nothing'}")
