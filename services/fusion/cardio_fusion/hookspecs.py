"""The plugin hook the fusion service adds to the kernel's (services.cardio_hookspecs): a plugin whose modality joins
a multimodal synthetic cohort (`cardio synthetic-crt`) implements it and declares cardio-crt-fusion."""
from __future__ import annotations

from typing import TYPE_CHECKING

from cardio.hookspecs import hookspec

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from cardio.config import Settings


@hookspec(firstresult=True)
def cardio_write_synthetic(patients: pd.DataFrame, dest: Path, seed: int, config: dict,
                           settings: Settings | None) -> Path:
    """Write this plugin's modality for the given patients into `dest`, a cohort folder that
    `cardio run --plugin <this> --set cohort.dir=<dest>` reads, and return its table's path.

    `patients` holds `patient_id`, `responder` (0/1) and `drive`, a standard-normal number per patient
    from the multimodal cohort's shared latent model (`cardio synthetic-crt`). The plugin plants its
    modality's response signal from `drive`, monotonically (a higher drive looks more like a responder),
    and draws everything else as its own synthetic cohort does; `responder` is written as the table's
    `responder` column unchanged. The same arguments write the same files."""
