"""Every stage hook that takes `config` takes the selected plugin's typed `settings` beside it; each plugin's hooks
name it as their own Settings class; a core call that leaves it out fails the suite (pyproject's filterwarnings)."""
from __future__ import annotations

import inspect

import pytest

from cardio import hookspecs, plugins, services
from cardio.config import plugin_settings, resolve

PLUGINS = ("spect_polar", "perfusion_polar", "ecg_transfer", "echo_cmr", "mmode_septal_flash")


def test_every_hookspec_that_takes_config_takes_settings_beside_it():
    # the kernel's hooks and those the services add (the fusion service's cardio_write_synthetic)
    specs = {n: list(inspect.signature(f).parameters) for module in (hookspecs, *services.hookspecs())
             for n, f in inspect.getmembers(module, inspect.isfunction) if n.startswith("cardio_")}
    with_config = {n: p for n, p in specs.items() if "config" in p}
    assert len(with_config) == 15  # with cardio_check_inputs and cardio_refit (issues 55, 53)
    assert {n: p[p.index("config") + 1] for n, p in with_config.items()} == {n: "settings" for n in with_config}


@pytest.mark.parametrize("name", PLUGINS)
def test_a_plugins_hooks_name_settings_as_its_own_class_and_the_core_builds_it(name):
    pm = plugins.select(plugins.get_plugin_manager(), name)
    info = plugins.info(pm, name)
    assert info.settings is not None
    callers = pm.get_hookcallers(pm.get_plugin(name))
    assert callers is not None  # the plugin is registered
    impls = [i for c in callers for i in c.get_hookimpls() if i.plugin_name == name]
    named = {i.function.__name__: p.annotation for i in impls
             if (p := inspect.signature(i.function).parameters.get("settings")) is not None}
    assert named and set(named.values()) == {info.settings.__name__}, named  # annotations are strings here
    built = plugin_settings(info, resolve(info.default_config))
    assert type(built) is info.settings and built == info.settings()


def test_a_hook_call_without_settings_fails_the_suite():
    pm = plugins.select(plugins.get_plugin_manager(), "spect_polar")
    with pytest.raises(UserWarning, match="'settings' which are declared in the hookspec"):
        pm.hook.cardio_describe_model(model=None, config={})
