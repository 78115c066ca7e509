"""The run's product, as files: predictions.csv, metrics.json and report.json (the structured report: every section's
text, tables and figures); the report service (cardio-crt-report) renders report.md and report.html from report.json.

These stay in the kernel because they are the run's results, not their rendering: `cardio predict`, `cardio fuse`, a
sweep's summary and the tests read metrics.json and predictions.csv, and a run must leave them whether or not the
report service is installed. Without it, one log line says what is missing and how to install it."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import cardio
from cardio import services
from cardio.data import Predictions, Section
from cardio.data.cache import write_text_atomic
from cardio.data.pseudonyms import pseudonymize
from cardio.data.spreadsheet import write_csv
from cardio_stats.result import json_safe

SCHEMA = "cardio-metrics/1"


def without_report() -> str:
    """The line a run without the report service logs: what is missing, and the install line."""
    return ("report.md and report.html are not written, nor the performance and subgroup sections: they come with "
            f"the report service, cardio-crt-report ({cardio.pip_install('-e services/report')}); predictions.csv, "
            "metrics.json and report.json are written")


def _relative(path, run_dir: Path) -> str:
    """Figures are linked relative to the run directory; one elsewhere keeps its absolute path."""
    path = Path(path).resolve()
    return str(path.relative_to(run_dir.resolve())) if path.is_relative_to(run_dir.resolve()) else str(path)


def _section_dict(sec: Section, run_dir: Path) -> dict:
    """A section as report.json keeps it; one that named no part goes with the comparisons (cardio_explain's
    sections arrive with theirs, cardio.study.tasks.read_sections)."""
    figs = [_relative(f, run_dir) for f in sec.figures]
    return {"title": sec.title, "text": sec.text, "figures": figs, "part": sec.part or "comparison",
            "tables": {k: json.loads(v.to_json(orient="split", index=False)) for k, v in sec.tables.items()}}


def write_predictions(run_dir: Path, predictions: Predictions, key: bytes | None = None,
                      pseudonymous: bool = False) -> None:
    """predictions.csv, pseudonymized (unless its ids already are pseudonyms: cardio fuse's); rows in the order
    the plugin gave them (the cohort's, per model and task)."""
    write_csv(run_dir / "predictions.csv", predictions.table if pseudonymous else pseudonymize(predictions.table, key))


def write_run(run_dir: Path, meta: dict, predictions: Predictions, sections: list[Section], log: logging.Logger,
              key: bytes | None = None, pseudonymous: bool = False) -> bool:
    """Write every output file of a finished run; True when the report service rendered report.md/report.html."""

    estimates, tests = [], []
    for sec in sections:
        estimates += [{**e, "section": e.get("section", sec.title)} for e in sec.estimates]
        tests += [{**t, "section": t.get("section", sec.title)} for t in sec.tests]
    metrics = {"schema": SCHEMA, **meta, "estimates": estimates, "tests": tests}
    write_text_atomic(run_dir / "metrics.json", json.dumps(json_safe(metrics), indent=1))
    write_predictions(run_dir, predictions, key, pseudonymous)
    doc = {"meta": meta, "sections": [_section_dict(s, run_dir) for s in sections]}
    write_text_atomic(run_dir / "report.json", json.dumps(json_safe(doc), indent=1))
    if services.installed().pm.hook.cardio_render_report(run_dir=run_dir, checklist=False) is None:
        log.warning("%s", without_report())
        return False
    return True
