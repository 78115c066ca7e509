"""The plugin hooks the public-data service adds to the kernel's (services.cardio_hookspecs): a plugin that offers
public data sets or releases implements them and declares cardio-crt-public."""
from __future__ import annotations

from typing import TYPE_CHECKING

from cardio.hookspecs import hookspec

if TYPE_CHECKING:
    from cardio_public.fetch import Dataset
    from cardio_public.weights import Release


@hookspec
def cardio_datasets() -> dict[str, Dataset]:
    """Return {name: Dataset} (description, size, licence, source, fetch) for `cardio data list` / `fetch`."""


@hookspec
def cardio_releases() -> dict[str, Release]:
    """Return {name: Release}: backbones built from public data (`cardio data build NAME`), placed by hash
    (`cardio data place FILE`)."""
