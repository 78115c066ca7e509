"""cardio's plugin contract suite over every installed modality plugin: what `pytest --cardio-contract` collects
(cardio_testing.pytest_plugin). One test class per plugin of the entry-point group `cardio` that has a modality,
`TestContract_<plugin>`, run at the plugin's `fast` profile where it has one (its defaults otherwise); a plugin
that fails to load fails here. A plugin's own test module runs the same suite at its smallest run, with its controls
(cardio_testing.contract.contract_suite)."""
from __future__ import annotations

from cardio import plugins
from cardio_testing.contract import Contract, contract_suite

_LOADED = plugins.get_plugin_manager()


def installed_modalities(loaded: plugins.Loaded) -> list[str]:
    """The installed plugins that are modalities (add-ons have none), by name."""
    return sorted(name for name, _ in loaded.pm.list_name_plugin() if plugins.info(loaded.pm, name).modality)


def contract_of(loaded: plugins.Loaded, plugin: str) -> Contract:
    """The contract a plugin is checked on here: its `fast` profile (the smoke size plugins declare) if it has one."""
    profiles = plugins.info(loaded.pm, plugin).default_config.get("profiles") or {}
    return Contract(plugin, run=("profile=fast",) if "fast" in profiles else ())


def test_every_installed_plugin_loads() -> None:
    assert not _LOADED.failed, _LOADED.failed


for _plugin in installed_modalities(_LOADED):
    globals()[f"TestContract_{_plugin}"] = contract_suite(contract_of(_LOADED, _plugin))
