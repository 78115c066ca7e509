"""`cardio report`: a run's report rewritten, its summary and headline performance printed."""
from __future__ import annotations

from pathlib import Path

import click

from cardio.data import folders


def report(run_dir: str, checklist: bool) -> None:
    from cardio_report import outputs  # markdown, pandas and Pillow: only when the command runs

    with folders.holding(run_dir, "run directory"):  # one writer: not beside a run that writes its report
        md = outputs.render(Path(run_dir), checklist=checklist)
    parts = md.split("\n## ")[1:]
    shown = [p for p in parts if p.startswith(("Summary", "Performance"))]
    click.echo("\n".join("## " + p for p in shown) if shown else md)
    if checklist:
        click.echo(f"TRIPOD+AI checklist: {Path(run_dir) / 'tripod_ai.md'}")


@click.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--checklist", is_flag=True, help="Also write the TRIPOD+AI checklist on its own (tripod_ai.md beside "
                                                 "the report): each item, where the report answers it, and what is "
                                                 "left for the authors to write.")
def report_cmd(run_dir: str, checklist: bool) -> None:
    """Rewrite report.md/report.html of a run and print its summary and headline performance.

    The report reads like a paper: summary, cohort, performance, comparisons, calibration and decision curves,
    explanations, then the appendices (methods, full tables, the TRIPOD+AI checklist)."""
    report(run_dir, checklist)
