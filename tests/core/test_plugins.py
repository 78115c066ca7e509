"""Entry-point discovery, broken-plugin isolation, selection and the plugin-facing errors."""
import json

import pytest


def test_installed_plugins_are_discovered_with_version_and_hooks(cardio_cli):
    rows = {r["name"]: r for r in json.loads(cardio_cli("plugins", "--json", check=True).stdout)}
    toy = rows["toy"]
    assert toy["version"] == "0.0.1" and toy["modality"] == "toy" and toy["error"] is None
    assert {"cardio_load", "cardio_train", "cardio_predict", "cardio_evaluate"} <= set(toy["hooks"])
    assert rows["toy_addon"]["modality"] is None
    for builtin in ("performance", "subgroups"):  # the report service's sections, registered as plugins
        assert rows[builtin]["modality"] is None and "(service)" in rows[builtin]["version"]


def test_broken_plugin_is_listed_with_its_error_and_breaks_nothing(cardio_cli):
    proc = cardio_cli("plugins", check=True)
    assert "broken" in proc.stdout and "BROKEN" in proc.stdout and "on purpose" in proc.stdout
    shown = cardio_cli("config", "--plugin", "toy", check=True).stdout
    assert shown.startswith("# cardio core defaults") and "# seeds Python, NumPy and torch" in shown  # comments kept
    assert "# plugin toy" in shown
    assert cardio_cli("run", "--plugin", "broken").stderr.strip().startswith("cardio: error: plugin 'broken' failed")


def test_cardio_plugins_env_restricts_loading(cardio_cli):
    rows = json.loads(cardio_cli("plugins", "--json", env={"CARDIO_PLUGINS": "toy"}, check=True).stdout)
    assert [r["name"] for r in rows] == ["performance", "subgroups", "toy"]  # the services' sections are never dropped


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
    """`cardio plugins` stays under 2 s: the services' sections and installed plugins load no model or stats code."""
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

    from cardio import cli
    from cardio_public.cli import _datasets
    from cardio_public.fetch import Dataset

    sets = _datasets()
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

    code = ("import sys; from cardio import cli; from cardio_public.cli import _datasets; _datasets(); "
            "print(sorted(m for m in ('torch', 'scipy.signal', 'wfdb', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


SCRATCH = '''"""A scratch modality: the five required hooks, and an optional hook, {hook}."""
from cardio import PluginInfo, hookimpl


@hookimpl
def cardio_plugin_info():
    return PluginInfo(name="{name}", modality="{name}", description="a scratch plugin")


@hookimpl
def cardio_load(config, ctx):
    raise AssertionError("a plugin that failed to load is never called")


@hookimpl
def cardio_featurize(cohort):
    raise AssertionError("never called")


@hookimpl
def cardio_train(features):
    raise AssertionError("never called")


@hookimpl
def cardio_predict(model):
    raise AssertionError("never called")


@hookimpl
def {hook}(predictions):
    return None
'''


@pytest.fixture(scope="module")
def scratch_site(tmp_path_factory):
    """Two scratch plugins pip-installed into a folder of their own: `typo` implements cardio_evalute (misspelled),
    `spelled` is the same plugin with cardio_evaluate."""
    import subprocess
    import sys

    src = tmp_path_factory.mktemp("scratch_src")
    for name, hook in (("typo", "cardio_evalute"), ("spelled", "cardio_evaluate")):
        (src / f"cardio_{name}.py").write_text(SCRATCH.format(name=name, hook=hook))
    (src / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "cardio-scratch"\nversion = "0.0.1"\n'
        '[project.entry-points.cardio]\ntypo = "cardio_typo"\nspelled = "cardio_spelled"\n'
        '[tool.setuptools]\npy-modules = ["cardio_typo", "cardio_spelled"]\n')
    target = tmp_path_factory.mktemp("scratch_site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(src)], check=True, capture_output=True)
    return target


def test_a_misspelled_hook_is_one_line_naming_the_plugin(scratch_site, cardio_cli, monkeypatch, tmp_path):
    """pluggy's check_pending at load: `cardio plugins` lists the plugin with its error and the others as ever;
    run, validate and predict refuse it in one line (exit 2) naming the plugin and the hook."""
    from cardio_testing.harness import check_refused

    monkeypatch.syspath_prepend(str(scratch_site))
    rows = {r["name"]: r for r in json.loads(cardio_cli("plugins", "--json", check=True).stdout)}
    assert rows["typo"]["error"] == "cardio_evalute is not a cardio hook (did you mean cardio_evaluate?)"
    assert rows["spelled"]["error"] is None and "cardio_evaluate" in rows["spelled"]["hooks"]
    assert rows["toy"]["error"] is None and rows["broken"]["error"].startswith("ImportError")
    assert "typo" in cardio_cli("plugins", check=True).stdout
    made = tmp_path / "made-by-typo"  # a run of the plugin before the typo: predict reads its plugin from run.json
    made.mkdir()
    (made / "run.json").write_text(json.dumps({"plugin": "typo", "status": "finished"}))
    (tmp_path / "cohort").mkdir()
    line = "plugin 'typo' failed to load: cardio_evalute is not a cardio hook (did you mean cardio_evaluate?)"
    for args in (("run", "--plugin", "typo", "--out", "r"), ("validate", "--plugin", "typo"),
                 ("predict", "--model", str(made), "--cohort", str(tmp_path / "cohort"), "--out", "p")):
        result = cardio_cli(*args)
        check_refused(result, line)
        print(f"cardio {args[0]}: {result.stderr.strip()}")
    assert not (tmp_path / "r").exists() and not (tmp_path / "p").exists()


def test_a_misspelled_hook_of_an_object_registered_in_process_is_an_error():
    from cardio import hookimpl
    from cardio.data import CardioError
    from cardio.plugins import get_plugin_manager

    class Addon:
        __name__ = "my_addon"

        @hookimpl
        def cardio_evalute(self, predictions):
            return None

    with pytest.raises(CardioError, match="^plugin 'my_addon': cardio_evalute is not a cardio hook "
                                          r"\(did you mean cardio_evaluate\?\)$"):
        get_plugin_manager(register=[Addon()])
