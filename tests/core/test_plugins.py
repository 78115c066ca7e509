"""Entry-point discovery, broken-plugin isolation, selection and the plugin-facing errors."""
import json

import pytest


def test_installed_plugins_are_discovered_with_version_and_hooks(cardio_cli):
    rows = {r["name"]: r for r in json.loads(cardio_cli("plugins", "--json", check=True).stdout)}
    toy = rows["toy"]
    assert toy["version"] == "0.0.1" and toy["modality"] == "toy" and toy["error"] is None
    assert {"cardio_load", "cardio_train", "cardio_predict", "cardio_evaluate"} <= set(toy["hooks"])
    assert rows["toy_addon"]["modality"] is None
    for builtin in ("performance", "subgroups"):  # the core's own sections, registered as plugins
        assert rows[builtin]["modality"] is None and "built-in" in rows[builtin]["version"]


def test_broken_plugin_is_listed_with_its_error_and_breaks_nothing(cardio_cli):
    proc = cardio_cli("plugins", check=True)
    assert "broken" in proc.stdout and "BROKEN" in proc.stdout and "on purpose" in proc.stdout
    shown = cardio_cli("config", "--plugin", "toy", check=True).stdout
    assert shown.startswith("# cardio core defaults") and "# seeds Python, NumPy and torch" in shown  # comments kept
    assert "# plugin toy" in shown
    assert cardio_cli("run", "--plugin", "broken").stderr.strip().startswith("cardio: error: plugin 'broken' failed")


def test_cardio_plugins_env_restricts_loading(cardio_cli):
    rows = json.loads(cardio_cli("plugins", "--json", env={"CARDIO_PLUGINS": "toy"}, check=True).stdout)
    assert [r["name"] for r in rows] == ["performance", "subgroups", "toy"]  # built-ins are never dropped


def test_unknown_plugin_lists_installed_ones(cardio_cli):
    proc = cardio_cli("run", "--plugin", "nope")
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert "\n" not in line and "unknown plugin 'nope'" in line and "toy" in line


def test_plugin_missing_required_hooks_is_refused(cardio_cli):
    proc = cardio_cli("run", "--plugin", "incomplete")
    assert proc.returncode == 2
    assert "cardio_featurize" in proc.stderr and "cardio_train" in proc.stderr and "Traceback" not in proc.stderr


def test_add_on_cannot_be_run_as_modality(cardio_cli):
    proc = cardio_cli("run", "--plugin", "toy_addon")
    assert proc.returncode == 2 and "add-on" in proc.stderr


def test_version(cardio_cli):
    import cardio

    assert cardio.__version__ in cardio_cli("--version", check=True).stdout


def test_listing_plugins_loads_neither_torch_nor_the_stats_service(toy_site):
    """`cardio plugins` stays under 2 s: the built-ins and installed plugins load no model or stats code."""
    import os
    import subprocess
    import sys

    code = ("import sys; from cardio import plugins; plugins.listing(plugins.get_plugin_manager()); "
            "print(sorted(m for m in ('torch', 'statsmodels', 'sklearn') if m in sys.modules))")
    env = {**os.environ, "CARDIO_PLUGINS": "ecg_transfer,spect_polar,perfusion_polar"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.strip() == "[]"


def test_data_list_says_what_each_set_is_its_size_and_licence():
    from click.testing import CliRunner

    from cardio import Dataset, cli

    sets = cli._datasets()
    if not sets:
        pytest.skip("no installed plugin offers a data set")
    out = CliRunner().invoke(cli.main, ["data", "list"]).output
    for name, d in sets.items():
        assert isinstance(d, Dataset) and all([d.description, d.size, d.licence, d.url]) and callable(d.fetch)
        assert f"{name}  {d.description}" in out and d.licence in out and d.size in out


def test_listing_data_sets_loads_no_signal_or_model_code():
    """`cardio data list` names the data sets without importing what a fetch needs (SciPy signal, wfdb, torch)."""
    import subprocess
    import sys

    code = ("import sys; from cardio import cli; cli._datasets(); "
            "print(sorted(m for m in ('torch', 'scipy.signal', 'wfdb', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
