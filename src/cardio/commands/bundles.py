"""`cardio sign`: a run's model bundle checked against its manifest, then signed."""
from __future__ import annotations

from pathlib import Path

import click

from cardio.data import CardioError, folders
from cardio.study import bundle, signing


def sign(run_dir: str) -> None:
    key = signing.signing_key()
    if key is None:
        raise CardioError(f"no signing key: set CARDIO_SIGNING_KEY to a private key file, or make "
                          f"{signing.config_dir() / 'signing_key'} with cardio keygen")
    with folders.holding(run_dir, "run directory"):  # not while a run (its evaluate task) rewrites its bundle
        bundle.check(Path(run_dir))
        folder = Path(run_dir) / "model"
        signing.sign(folder, key)
    click.echo(f"{folder} ({signing.bundle_fingerprint(folder)}) signed by key "
               f"{signing.key_fingerprint(key.public_key())}")
