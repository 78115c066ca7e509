"""The plugin manager: the services' study plugins (the report's sections), the entry-point group `cardio`,
listing, selection."""
from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points

import pluggy

from cardio import hookspecs, services
from cardio.config import PluginInfo
from cardio.data import CardioError


@dataclass
class Loaded:
    pm: pluggy.PluginManager
    failed: dict[str, str] = field(default_factory=dict)  # name -> why it did not load, shown by `cardio plugins`
    versions: dict[str, str] = field(default_factory=dict)


def _name_of(plugin: object) -> str:
    info_fn = getattr(plugin, "cardio_plugin_info", None)
    if info_fn is not None:
        return info_fn().name
    return getattr(plugin, "__name__", type(plugin).__name__)


def _one_line(error: Exception) -> str:
    return "; ".join(line.strip() for line in str(error).splitlines() if line.strip()) or type(error).__name__


class HookError(CardioError):
    """A plugin's hook implementation that cardio's hook specifications do not allow."""


def _register(pm: pluggy.PluginManager, plugin: object, name: str) -> None:
    """Register `plugin`, then pluggy's check_pending: a hook implementation that no cardio hook specifies (a
    misspelled optional hook would otherwise never be called) unregisters the plugin and raises a HookError."""
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as e:  # a known hook with arguments its spec lacks
        raise HookError(_one_line(e)) from None
    try:
        pm.check_pending()
    except pluggy.PluginValidationError:
        unknown = sorted(h.name for h in pm.get_hookcallers(plugin) or [] if not h.has_spec())
        pm.unregister(name=name)
        hooks = [h for h in dir(pm.hook) if h.startswith("cardio_") and getattr(pm.hook, h).has_spec()]
        raise HookError("; ".join(
            f"{u} is not a cardio hook" + (f" (did you mean {m[0]}?)" if (m := difflib.get_close_matches(u, hooks, 1))
                                           else " (cardio.hookspecs and the services' list them)")
            for u in unknown)) from None


def _manager() -> pluggy.PluginManager:
    """A manager of the kernel's hook specifications and those the installed services add (cardio_datasets ...)."""
    pm = pluggy.PluginManager("cardio")
    for specs in (hookspecs, *services.hookspecs()):
        pm.add_hookspecs(specs)
    return pm


def get_plugin_manager(register: Iterable[object] = ()) -> Loaded:
    """The services' study plugins, then every plugin of the entry-point group, then `register` (plugin objects, in
    process). The services' come first, registered like any plugin (as datasette registers its defaults): the report
    service's performance and subgroup sections (cardio.services.cardio_study_plugins).

    CARDIO_PLUGINS=a,b restricts which installed plugins load; the services' always do. An installed plugin that
    fails to import, or implements a hook no spec names (pluggy's check_pending), is left out and listed in
    `failed`; a `register` object that does so is an error.
    """
    pm = _manager()
    loaded = Loaded(pm)
    for name, module, version in services.study_plugins():
        _register(pm, module, name)
        loaded.versions[name] = f"{version} (service)"
    allowed = {n.strip() for n in os.environ.get("CARDIO_PLUGINS", "").split(",") if n.strip()}
    for ep in entry_points(group="cardio"):
        if allowed and ep.name not in allowed or pm.has_plugin(ep.name):
            continue
        # pluggy's load_setuptools_entrypoints stops at the first broken plugin; one bad
        # plugin must not break the others, so each is loaded on its own.
        try:
            _register(pm, ep.load(), ep.name)
        except HookError as e:
            loaded.failed[ep.name] = str(e)
            continue
        except Exception as e:
            loaded.failed[ep.name] = f"{type(e).__name__}: {_one_line(e)}"
            continue
        loaded.versions[ep.name] = ep.dist.version if ep.dist else "?"
    for plugin in register:
        name = _name_of(plugin)
        if pm.has_plugin(name):
            pm.unregister(name=name)  # the object given in process replaces an installed namesake
        try:
            _register(pm, plugin, name)
        except HookError as e:
            raise CardioError(f"plugin {name!r}: {e}") from None
        loaded.versions[name] = "in-process"
    return loaded


def info(pm: pluggy.PluginManager, name: str) -> PluginInfo:
    plugin = pm.get_plugin(name)
    fn = getattr(plugin, "cardio_plugin_info", None)
    if fn is None:
        return PluginInfo(name=name, description="(no cardio_plugin_info hook)")
    result = fn()
    if not isinstance(result, PluginInfo):
        raise CardioError(f"plugin {name!r}: cardio_plugin_info must return PluginInfo, got {type(result).__name__}")
    return result


def hooks_of(pm: pluggy.PluginManager, name: str) -> list[str]:
    return sorted(h.name for h in pm.get_hookcallers(pm.get_plugin(name)) or [])


def listing(loaded: Loaded) -> list[dict]:
    """One row per plugin, from pluggy's own registry."""
    rows = []
    for name, _ in sorted(loaded.pm.list_name_plugin()):
        i = info(loaded.pm, name)
        rows.append({"name": name, "version": loaded.versions.get(name, "?"), "modality": i.modality,
                     "description": i.description, "hooks": hooks_of(loaded.pm, name), "error": None})
    for name, err in sorted(loaded.failed.items()):
        rows.append({"name": name, "version": "?", "modality": None, "description": "",
                     "hooks": [], "error": err})
    return rows


def offered(loaded: Loaded, hook: str) -> dict:
    """What the plugins offer by a hook that returns a mapping (cardio_datasets, cardio_releases), merged by name."""
    out: dict = {}
    for part in getattr(loaded.pm.hook, hook)():
        out.update(part or {})
    return out


def select(loaded: Loaded, name: str) -> pluggy.PluginManager:
    """A manager holding the chosen modality plugin and every add-on, not the other modalities."""
    pm = loaded.pm
    if name in loaded.failed:
        raise CardioError(f"plugin {name!r} failed to load: {loaded.failed[name]}")
    if not pm.has_plugin(name):
        installed = sorted(n for n, _ in pm.list_name_plugin() if info(pm, n).modality) or ["none"]
        raise CardioError(f"unknown plugin {name!r}; installed: {', '.join(installed)}")
    chosen = info(pm, name)
    if chosen.modality is None:
        raise CardioError(f"plugin {name!r} is an add-on, not a modality; it runs alongside one")
    missing = [h for h in hookspecs.REQUIRED_HOOKS if h not in hooks_of(pm, name)]
    if missing:
        raise CardioError(f"plugin {name!r} does not implement the required hook(s) {', '.join(missing)}")
    run_pm = _manager()
    for other, plugin in pm.list_name_plugin():
        if other == name or info(pm, other).modality is None:
            run_pm.register(plugin, name=other)
    return run_pm
