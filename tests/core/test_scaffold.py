"""`cardio new-plugin` writes a package that installs and passes its own tests: cardio's contract suite."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _pip(*args):
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)


def test_new_plugin_round_trip(tmp_path, cardio_cli, cardio_subprocess):
    proc = cardio_cli("new-plugin", "my_modality", "--dir", str(tmp_path), plugins_path=False, check=True)
    pkg = tmp_path / "cardio-my-modality"
    assert pkg.is_dir() and "pip install -e" in proc.stdout
    # issue 54: the minimal plugin is six files, its hooks doing the work (no delegators to copy)
    written = sorted(str(p.relative_to(pkg)) for p in pkg.rglob("*") if p.is_file())
    assert written == ["README.md", "cardio_my_modality/__init__.py", "cardio_my_modality/cohort.py",
                       "cardio_my_modality/plugin.py", "pyproject.toml", "tests/test_contract.py"], written
    # installed into a folder of its own, not the venv: other tests (and xdist workers) list the installed plugins
    site = tmp_path / "site"
    installed = _pip("install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site), str(pkg))
    assert installed.returncode == 0, installed.stderr
    path = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    rows = json.loads(cardio_subprocess("plugins", "--json", plugins_path=False, check=True, env=path).stdout)
    mine = next(r for r in rows if r["name"] == "my_modality")
    assert mine["error"] is None and "cardio_explain" in mine["hooks"]
    # its own tests: cardio's contract suite (a run, its bundle and `cardio predict`, PHI) and its controls
    own = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(pkg / "tests")],
                         capture_output=True, text=True, cwd=tmp_path, env={**os.environ, **path})
    assert own.returncode == 0, own.stdout[-3000:]
    # the suite's eleven tests, the controls' two and the template's own; moved keys skip: the plugin has none yet
    assert own.stdout.strip().splitlines()[-1].startswith("13 passed, 1 skipped"), own.stdout[-3000:]
    assert "declares no moved config keys" in own.stdout


def test_new_plugin_type_checks(tmp_path, cardio_cli):
    # the package as `cardio new-plugin` writes it passes mypy at the repository's settings (pyproject.toml), as the
    # plugins under plugins/ do in CI
    cardio_cli("new-plugin", "typed_one", "--dir", str(tmp_path), plugins_path=False, check=True)
    proc = subprocess.run([sys.executable, "-m", "mypy", str(tmp_path / "cardio-typed-one" / "cardio_typed_one")],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and "no issues found in 3 source files" in proc.stdout, proc.stdout[-3000:]


@pytest.mark.parametrize("name,why", [("My-Plugin", "must be lower-case"), ("1abc", "must be lower-case"),
                                      ("class", "is a Python keyword"), ("json", "standard-library module"),
                                      ("toy", "already used by an installed plugin")])
def test_new_plugin_rejects_bad_names(cardio_cli, tmp_path, name, why):
    proc = cardio_cli("new-plugin", name, "--dir", str(tmp_path))
    assert proc.returncode == 2 and why in proc.stderr and "\n" not in proc.stderr.strip()
    assert not list(tmp_path.glob("cardio-*"))


def test_new_plugin_into_an_unwritable_folder_is_one_line(cardio_cli, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("a file, not a folder")
    proc = cardio_cli("new-plugin", "fresh_one", "--dir", str(blocked / "sub"))
    assert proc.returncode == 2 and "cannot write the plugin" in proc.stderr and "Traceback" not in proc.stderr


def test_new_plugin_never_overwrites(cardio_cli, tmp_path):
    cardio_cli("new-plugin", "again", "--dir", str(tmp_path), plugins_path=False, check=True)
    proc = cardio_cli("new-plugin", "again", "--dir", str(tmp_path), plugins_path=False)
    assert proc.returncode == 2 and "already exists" in proc.stderr


def test_sex_has_one_coding_in_the_scaffold_the_plugins_and_their_synthetic_cohorts(tmp_path, cardio_cli):
    """`sex` is binary, 1 = male and 0 = female, in the package `cardio new-plugin` writes (its schema and the
    synthetic cohort it writes) as in every installed plugin's schema that has the column (issue 55: F/M there)."""
    import importlib.util

    import pandas as pd

    from cardio import config as config_mod
    from cardio import plugins

    cardio_cli("new-plugin", "sexed", "--dir", str(tmp_path), plugins_path=False, check=True)
    pkg = tmp_path / "cardio-sexed" / "cardio_sexed"
    spec = importlib.util.spec_from_file_location("cardio_sexed", pkg / "__init__.py",
                                                  submodule_search_locations=[str(pkg)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["cardio_sexed"] = module
    try:
        spec.loader.exec_module(module)
        from cardio_sexed import cohort

        scaffold = cohort.SCHEMA.column("sex")
        table = pd.read_csv(cohort.write_cohort(tmp_path / "syn", n_patients=20, n_features=8, signal=1.0,
                                                   missing_label=0.0, seed=0))
    finally:
        for name in [n for n in sys.modules if n.startswith("cardio_sexed")]:
            del sys.modules[name]
    assert scaffold.kind == "binary" and "1 = male, 0 = female" in scaffold.description
    assert set(table["sex"]) == {0, 1}
    loaded = plugins.get_plugin_manager()
    coded = {}
    for row in plugins.listing(loaded):
        if not row["modality"] or row["error"]:
            continue
        pm = plugins.select(loaded, row["name"])
        info = plugins.info(pm, row["name"])
        cfg = config_mod.resolve(info.default_config)
        schema = pm.hook.cardio_cohort_schema(config=cfg, settings=config_mod.plugin_settings(info, cfg))
        names = {c.name for c in schema.columns} if schema is not None else set()
        if "sex" in names:
            coded[row["name"]] = schema.column("sex").kind
    assert coded and set(coded.values()) == {"binary"}, coded


def test_new_plugin_is_the_testing_services_command():
    """`cardio new-plugin` comes with the plugin author's kit (cardio-crt-testing, entry point cardio.services:
    testing), whose contract suite the package it writes runs; the kernel alone has no such command."""
    from cardio_testing.harness import invoke_with_services

    installed = invoke_with_services("--help")
    bare = invoke_with_services("--help", services={})
    assert installed.returncode == bare.returncode == 0, installed.stderr + bare.stderr
    assert "  new-plugin " in installed.stdout and "  new-plugin " not in bare.stdout
