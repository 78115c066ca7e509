"""`cardio report`: a run's report rewritten, its summary and headline performance printed."""
from __future__ import annotations

from pathlib import Path

import click

from cardio.data import folders
from cardio.report import outputs


def report(run_dir: str, checklist: bool) -> None:
    with folders.holding(run_dir, "run directory"):  # one writer: not beside a run that writes its report
        md = outputs.render(Path(run_dir), checklist=checklist)
    parts = md.split("\n## ")[1:]
    shown = [p for p in parts if p.startswith(("Summary", "Performance"))]
    click.echo("\n".join("## " + p for p in shown) if shown else md)
    if checklist:
        click.echo(f"TRIPOD+AI checklist: {Path(run_dir) / 'tripod_ai.md'}")
