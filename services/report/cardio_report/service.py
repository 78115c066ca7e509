"""The report service's hooks (entry point `cardio.services: report`): `cardio report`, the performance and subgroup
sections every study registers, report.md and report.html rendered from the report.json a run writes, and the
figures saved into a run. Light on purpose: `cardio --help` loads it; matplotlib, markdown, Pillow and the
statistics load when a hook is called."""
from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cardio.data import Predictions, Section
from cardio.services import hookimpl

if TYPE_CHECKING:
    from cardio.context import RunContext


@hookimpl
def cardio_commands() -> list[click.Command]:
    from cardio_report.command import report_cmd

    return [report_cmd]


@hookimpl
def cardio_study_plugins() -> list[object]:
    from cardio_report import performance, subgroups

    return [performance, subgroups]


@hookimpl
def cardio_render_report(run_dir: Path, checklist: bool) -> str:
    from cardio_report.outputs import render

    return render(run_dir, checklist=checklist)


@hookimpl
def cardio_performance_sections(predictions: Predictions, config: dict, ctx: RunContext,
                                truth: str | None) -> list[Section]:
    from cardio_report.performance import evaluate_sections

    return evaluate_sections(predictions, config, ctx, truth)


@hookimpl
def cardio_save_figure(figure: Any, path: Path, dpi: int | None, caption: str | None) -> Path:
    from cardio_report.figures import DPI, save_figure

    return save_figure(figure, path, dpi or DPI, caption=caption)


@hookimpl
def cardio_figure_saves() -> AbstractContextManager[None]:
    from cardio_report.figures import parallel_saves

    return parallel_saves()
