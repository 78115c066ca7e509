"""`cardio fuse` and `cardio synthetic-crt` (its test bed: a multimodal cohort with a stated truth), the commands the
fusion service adds to the `cardio` CLI (entry point `cardio.services: fusion`, the hook cardio_commands), and the
plugin hook it adds (cardio_hookspecs: cardio_write_synthetic). Light on purpose: `cardio --help` loads it; the
fusion and the cohort's writer load when the command runs."""
from __future__ import annotations

from pathlib import Path
from types import ModuleType

import click

from cardio.data import CardioError
from cardio.services import hookimpl
from cardio_fusion import hookspecs


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
              help="A CSV with patient_id and clinical columns (e.g. the ECG cohort's table), a row for every "
                   "patient of the runs.")
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


@click.command("synthetic-crt")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="The cohort's folder.")
@click.option("--plugins", "names", required=True, help="Comma-separated modality plugins, e.g. "
              "ecg_transfer,spect_polar,mmode_septal_flash (the first is never missing).")
@click.option("--patients", "n", type=click.IntRange(20), default=300, show_default=True)
@click.option("--setting", type=click.Choice(["planted", "neutral"]), default="planted", show_default=True,
              help="planted: every modality carries its own part of response; neutral: only the first does.")
@click.option("--overlap", type=float, default=0.0, show_default=True,
              help="Correlation of the modalities' latent components.")
@click.option("--weight", type=float, default=1.2, show_default=True,
              help="Log-odds of response per SD of a carrying modality's component.")
@click.option("--missing", type=float, default=0.0, show_default=True,
              help="Share of patients missing each modality but the first.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--set", "sets", multiple=True, metavar="PLUGIN:KEY=VALUE",
              help="A plugin's config key for its generator, e.g. spect_polar:spect_polar.synthetic.size=40.")
def synthetic_crt_cmd(out, names, n, setting, overlap, weight, missing, seed, sets) -> None:
    """Write one set of CRT patients in several modalities from one latent response model (truth.json says it)."""
    from cardio_fusion.synthetic import synthetic_crt  # pandas, the plugins' generators: only when the command runs

    click.echo(synthetic_crt(out, names, n, setting, overlap, weight, missing, seed, sets))


@hookimpl
def cardio_commands() -> list[click.Command]:
    return [fuse_cmd, synthetic_crt_cmd]


@hookimpl
def cardio_hookspecs() -> list[ModuleType]:
    return [hookspecs]


@hookimpl
def cardio_cohort_truth(cohort_dir: Path) -> str | None:
    from cardio_fusion.truth import stated_truth

    return stated_truth(cohort_dir)
