"""`cardio predict`, the command the deploy service adds to the `cardio` CLI (entry point `cardio.services: deploy`,
the hook cardio_commands), the fold models it keeps for `--ensemble folds` (cardio_keep_fold_model,
cardio_add_fold_models: folds.py) and the training records' fingerprints it keeps in the bundle for predict's overlap
check (cardio_training_fingerprints: fingerprints.py). Light on purpose: `cardio --help` loads it; the study's stages
load when it runs."""
from __future__ import annotations

import logging
from pathlib import Path

import click

from cardio.data import Cohort, Features, ModelState
from cardio.services import Device, hookimpl


@click.command("predict")
@click.option("--model", "model_dir", required=True, type=click.Path(file_okay=False, exists=True),
              help="A finished run directory holding a model bundle (model/).")
@click.option("--cohort", "cohort", required=True, type=click.Path(),
              help="The new cohort's folder (its table and files, as the plugin's data guide describes).")
@click.option("--out", type=click.Path(file_okay=False), help="Output folder (default runs/<plugin>-predict-<time>).")
@click.option("--device", type=Device(), metavar="DEVICE",
              help="auto (CUDA when present), cpu, cuda or cuda:N.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override one key of the model's config for this cohort, e.g. ecg_transfer.lead=V1.")
@click.option("--keep-key", is_flag=True, help="Write <out>.key.csv (mode 0600) mapping the pseudonyms to the ids.")
@click.option("--trusted-key", "trusted", multiple=True, metavar="PUB",
              help="A public key file (ssh-ed25519) whose signature the bundle must carry; repeatable. Keys listed "
              "in ~/.config/cardio/trusted_keys are trusted too. Without any, the bundle is checked for integrity "
              "only.")
@click.option("--ensemble", type=click.Choice(["final", "folds"]), default="final", show_default=True,
              help="final: the model fitted on every patient after cross-validation; folds: the mean of the outer "
              "folds' models in the bundle (as nnU-Net averages its five), compared with the final model in the "
              "report.")
def predict_cmd(model_dir, cohort, out, device, sets, keep_key, trusted, ensemble) -> None:
    """Apply a run's final model, or the mean of its fold models (--ensemble folds), to a new cohort:
    predictions.csv, and an external-validation report when labelled (each target it cannot evaluate named).

    What the model's bundle may not decide is the user's alone: cohort.allow_outside_paths, cache_dir and
    report.keep_key come from this command (--set, --keep-key) and the environment, never from the bundle.
    With a trusted key, a bundle it did not sign is refused before any of its content is loaded.
    """
    from cardio_deploy.predict import predict_cohort  # here: it loads the stages, pandas and NumPy
    from cardio_deploy.trust import trusted_keys

    click.echo(str(predict_cohort(model_dir, cohort, out, device, sets=tuple(sets), keep_key=keep_key,
                                  trusted_keys=trusted_keys(tuple(trusted)), ensemble=ensemble)))


@hookimpl
def cardio_commands() -> list[click.Command]:
    return [predict_cmd]


@hookimpl
def cardio_keep_fold_model(state: ModelState, plugin: str, fold: str, config: dict, run_dir: Path) -> bool:
    from cardio_deploy.folds import keep_fold_model

    return keep_fold_model(state, plugin, fold, config, run_dir)


@hookimpl
def cardio_add_fold_models(run_dir: Path, folds: list[str], log: logging.Logger) -> bool:
    from cardio_deploy.folds import add_fold_models

    return add_fold_models(run_dir, folds, log)


@hookimpl
def cardio_training_fingerprints(features: Features, cohort: Cohort) -> dict:
    from cardio_deploy.fingerprints import training_fingerprints

    return training_fingerprints(features, cohort)
