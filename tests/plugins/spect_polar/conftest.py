"""A run context on the CPU in a temporary run directory, for spect_polar's unit tests."""
import pytest


@pytest.fixture()
def ctx(cpu_context):
    return cpu_context()
