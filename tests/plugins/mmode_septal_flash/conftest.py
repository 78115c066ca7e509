"""mmode_septal_flash's tests: each module skips (pytest.importorskip) when the plugin is not installed."""
import pytest


@pytest.fixture()
def ctx(cpu_context):
    """A CPU run context writing to the test's tmp_path."""
    return cpu_context()


@pytest.fixture()
def one_thread():
    """Small models on a busy runner: threads only add synchronisation."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
