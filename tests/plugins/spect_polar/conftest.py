"""A run context on the CPU in a temporary run directory, for spect_polar's unit tests."""
import logging

import pytest
import torch

from cardio import config as cardio_config
from cardio.run import RunContext


@pytest.fixture()
def ctx(tmp_path):
    cfg = cardio_config.merge(cardio_config.core_defaults(), {}, strict=False)
    (tmp_path / "checkpoints").mkdir()
    return RunContext(config=cfg, device=torch.device("cpu"), seed=0, out_dir=tmp_path, cache_dir=tmp_path / "cache",
                      log=logging.getLogger("test"))
