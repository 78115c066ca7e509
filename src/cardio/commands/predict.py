"""`cardio predict`: a run's model bundle applied to another cohort."""
from __future__ import annotations

import click

from cardio.study import signing
from cardio.study.predict import predict_cohort


def predict(model_dir: str, cohort: str, out: str | None, device: str | None, sets: tuple[str, ...],
            keep_key: bool, trusted: tuple[str, ...], ensemble: str) -> None:
    keys = signing.trusted_keys(tuple(trusted))
    click.echo(str(predict_cohort(model_dir, cohort, out, device, sets=tuple(sets), keep_key=keep_key,
                                  trusted_keys=keys, ensemble=ensemble)))
