"""perfusion_polar's tests: each module skips (pytest.importorskip) when the plugin is not installed."""
import pytest

from cardio import hookimpl

# The tiny study every end-to-end test of the plugin shares (one run, see `site_a`): 48 synthetic patients, one
# epoch a step, 2 folds, explain on (its figures are checked), the final model exported; the performance
# section's figures are left out (its estimates are what the tests read; most of the run's time went to them).
TINY = ["perfusion_polar.n_patients=48", "perfusion_polar.size=32", "perfusion_polar.step1.epochs=1",
        "perfusion_polar.step2.epochs=1", "train.cpu_threads=1", "cv.folds=2", "stats.n_resamples=100",
        "report.figures=false"]


class KeepFinalModel:
    """An add-on that keeps the model the core exports: the final model's own scores to compare with."""

    __name__ = "keep_final_model"

    def __init__(self) -> None:
        self.models: list = []

    @hookimpl(wrapper=True)
    def cardio_export_model(self, model, ctx):
        if ctx.fold == "final":  # not the outer folds' models the bundle also carries (fold_models)
            self.models.append(model)
        return (yield)


@pytest.fixture()
def ctx(cpu_context):
    """A CPU run context writing to the test's tmp_path."""
    return cpu_context()


@pytest.fixture()
def one_thread():
    """Tiny CPU models: threads only add synchronisation on a busy runner."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def site_a(tmp_path_factory):
    """{"run": the run directory of the TINY study, "final": [its final model object], "tmp": a scratch folder}:
    one run shared by test_plugin's end-to-end checks and test_bundle's round trip."""
    pytest.importorskip("cardio_perfusion_polar")
    import torch

    from cardio_testing.harness import run_plugin

    tmp = tmp_path_factory.mktemp("perfusion_site_a")
    keep = KeepFinalModel()
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = run_plugin("perfusion_polar", tmp / "a", sets=TINY, cache_dir=tmp / "cache", register=[keep])
    finally:
        torch.set_num_threads(before)
    return {"run": run, "final": keep.models, "tmp": tmp}
