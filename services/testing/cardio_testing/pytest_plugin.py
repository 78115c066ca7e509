"""The pytest plugin (entry point `pytest11`): `pytest --cardio-contract` collects cardio's plugin contract suite over
every installed modality plugin (cardio_testing.every_plugin), as torchvision's test suite runs over every registered
model. Without the option it does nothing and imports nothing of cardio: pytest loads it in every session."""
from __future__ import annotations

from pathlib import Path

import pytest

SUITE = Path(__file__).with_name("every_plugin.py")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("cardio").addoption(
        "--cardio-contract", action="store_true", default=False,
        help="run cardio's plugin contract suite over every installed modality plugin (one class each, "
             "Contract_<plugin>: -k <plugin> picks one)")


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("cardio_contract"):
        return
    # no paths given (pytest's testpaths or the folder it runs in): the suite alone; paths given: the suite joins them
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        config.args.append(str(SUITE))
    else:
        config.args[:] = [str(SUITE)]
