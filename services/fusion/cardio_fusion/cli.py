"""`cardio fuse`, the command the fusion service adds to the `cardio` CLI (entry point `cardio.services: fusion`,
the hook cardio_commands). Light on purpose: `cardio --help` loads it; the fusion itself loads when the command runs."""
from __future__ import annotations

from pathlib import Path

import click

from cardio.data import CardioError
from cardio.services import hookimpl


def _run_pairs(pairs: tuple[str, ...], option: str) -> dict[str, str]:
    """RUN=VALUE options keyed by the run's path as given."""
    out = {}
    for item in pairs:
        run, sep, value = item.rpartition("=")
        if not sep or not run or not value:
            raise CardioError(f"{option} expects RUN=VALUE, got {item!r}")
        out[run] = value
    return out


@click.command("fuse")
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="The fusion's folder (new).")
@click.option("--model", "models", multiple=True, metavar="RUN=MODEL",
              help="The model of a run to fuse (default: the run's stats.reference, or its only model).")
@click.option("--name", "names", multiple=True, metavar="RUN=NAME", help="What the report calls a run "
              "(default: its plugin).")
@click.option("--clinical", type=click.Path(dir_okay=False),
              help="A CSV with patient_id and clinical columns (e.g. the ECG cohort's table).")
@click.option("--covariates", default="", help="Comma-separated columns of --clinical the fusion model also uses.")
@click.option("--guideline", help="A rule on --clinical columns drawn in the decision curve and tested, e.g. "
              "'lbbb == 1 and qrs_ms >= 150'.")
@click.option("--n-resamples", type=click.IntRange(100), help="Bootstrap resamples (default: the runs' stats).")
def fuse_cmd(runs, out, models, names, clinical, covariates, guideline, n_resamples) -> None:
    """Fuse the runs of several modalities on the same patients into one CRT prediction, without leaks.

    Each run must be finished and made with cv.inner_folds (and cv.patients where a modality misses some
    patients), the same seed, label and split, and the same cache (its pseudonym key joins the patients).
    """
    from cardio_fusion.fuse import fuse  # pandas, the kernel's report and study: only when the command runs

    click.echo(str(fuse([Path(r) for r in runs], Path(out), models=_run_pairs(models, "--model"),
                        names=_run_pairs(names, "--name"), clinical=Path(clinical) if clinical else None,
                        covariates=tuple(c.strip() for c in covariates.split(",") if c.strip()),
                        guideline=guideline, n_resamples=n_resamples)))


@hookimpl
def cardio_commands() -> list[click.Command]:
    return [fuse_cmd]
