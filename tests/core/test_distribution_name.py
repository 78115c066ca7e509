"""Issue 54: the core's distribution is cardio-crt. `cardio` on the package index is an unrelated image viewer, so a
plugin that required `cardio` made pip, outside the project's venv, install that package and its web stack and CUDA
torch. The import name and the command stay `cardio`."""
from __future__ import annotations

import re
from importlib.metadata import distribution
from pathlib import Path

import cardio

REPO = Path(__file__).resolve().parents[2]


def _names(requires: list[str] | None) -> set[str]:
    return {re.split(r"[ <>=!~;\[]", r, maxsplit=1)[0] for r in requires or []}


def test_the_core_is_installed_as_cardio_crt_and_gives_cardio_its_version():
    assert cardio.DISTRIBUTION == "cardio-crt" and 'name = "cardio-crt"' in (REPO / "pyproject.toml").read_text()
    dist = distribution("cardio-crt")
    assert cardio.__version__ == dist.version != "0.0.0"
    assert any(ep.name == "cardio" and ep.value == "cardio.cli:main" for ep in dist.entry_points)


def test_no_plugin_the_template_or_the_toy_plugins_require_the_index_s_cardio():
    plugins = [f"cardio-{p.parent.name.replace('_', '-')}" for p in REPO.glob("plugins/*/pyproject.toml")]
    assert len(plugins) == 5
    for name in plugins:  # what pip reads: the installed metadata
        names = _names(distribution(name).requires)
        assert "cardio-crt" in names and "cardio" not in names, name
    toy = (REPO / "tests/fixtures/toy_plugins/pyproject.toml").read_text()
    assert 'dependencies = ["cardio-crt"]' in toy
    template = (REPO / "services/testing/cardio_testing/templates/plugin/pyproject.toml.tmpl").read_text()
    assert '"cardio-crt"' in template and '"cardio"' not in template
