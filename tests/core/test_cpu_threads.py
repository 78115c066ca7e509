"""torch's CPU threads are the core's: train.cpu_threads (else the executor's share of the CPUs) for every step that
runs a fit's model, and the plugins' old thread keys are refused in one line naming it."""
import json

import pytest

from cardio import CardioError
from cardio_testing.harness import plugin_config

FITS = ("cardio_train", "cardio_predict", "cardio_explain", "cardio_export_model", "cardio_evaluate")


def _threads(cardio_cli, tmp_path, out: str, *sets: str) -> dict[str, set[int]]:
    """{hook: the torch threads its calls ran on} of a toy run (two folds, one epoch)."""
    log = tmp_path / f"{out}.jsonl"
    args = ["run", "--plugin", "toy", "--out", out, "--set", "train.epochs=1", "--set", "cv.folds=2", "--set",
            "report.figures=false", "--set", "stats.n_resamples=100"]
    for s in sets:
        args += ["--set", s]
    # the run's own count is 2 however many CPUs this (xdist) worker has: cardio keeps OMP_NUM_THREADS where set
    cardio_cli(*args, env={"CARDIO_SPY_LOG": str(log), "OMP_NUM_THREADS": "2"}, check=True)
    seen: dict[str, set[int]] = {}
    for call in map(json.loads, log.read_text().splitlines()):
        seen.setdefault(call["hook"], set()).add(call["threads"])
    return seen


def test_every_step_of_a_fit_runs_on_train_cpu_threads(cardio_cli, tmp_path):
    import torch

    before = torch.get_num_threads()  # the run is in this process: its count is given back to the worker after
    try:
        threads = _threads(cardio_cli, tmp_path, "one", "train.cpu_threads=1")
        unset = _threads(cardio_cli, tmp_path, "unset")
    finally:
        torch.set_num_threads(before)
    assert {h: threads[h] for h in FITS} == {h: {1} for h in FITS}
    assert threads["cardio_featurize"] == {2}  # the stages before the folds keep the run's
    assert {h: unset[h] for h in FITS} == {h: {2} for h in FITS}  # null: inline's share, the run's 2


@pytest.mark.parametrize("plugin,old", [("spect_polar", "spect_polar.autoencoder.cpu_threads"),
                                        ("spect_polar", "autoencoder.cpu_threads"),
                                        ("perfusion_polar", "perfusion_polar.cpu_threads"),
                                        ("perfusion_polar", "perfusion.cpu_threads"),
                                        ("echo_cmr", "echo_cmr.train.cpu_threads"),
                                        ("mmode_septal_flash", "mmode_septal_flash.model.cpu_threads")])
def test_a_plugins_old_thread_key_names_the_cores(plugin, old):
    pytest.importorskip(f"cardio_{plugin}")
    with pytest.raises(CardioError, match=rf"^config key {old} \(--set\) has moved: use train.cpu_threads$"):
        plugin_config(plugin, [f"{old}=1"])


@pytest.mark.parametrize("plugin", ["spect_polar", "perfusion_polar", "echo_cmr", "mmode_septal_flash",
                                    "ecg_transfer"])
def test_no_plugin_section_keeps_a_thread_key(plugin):
    """A plugin's own section (its profiles' too) has no cpu_threads: the count is the core's train.cpu_threads."""
    pytest.importorskip(f"cardio_{plugin}")
    config = plugin_config(plugin)
    sections = [config[plugin], *(p.get(plugin, {}) for p in config["profiles"].values())]
    assert "cpu_threads" not in json.dumps(sections)
