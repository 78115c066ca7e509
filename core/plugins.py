"""The plugin manager: entry-point group `cardio`, listing, and the selection a run uses."""
from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.metadata import entry_points

import pluggy

from cardio import hookspecs
from cardio.data import CardioError, PluginInfo

REQUIRED_HOOKS = ("cardio_plugin_info", "cardio_load", "cardio_featurize", "cardio_train", "cardio_predict")


@dataclass
class Loaded:
    pm: pluggy.PluginManager
    failed: dict[str, str]  # entry-point name -> the import error, shown by `cardio plugins`
    versions: dict[str, str]


def get_plugin_manager() -> Loaded:
    """Register every plugin of the entry-point group; CARDIO_PLUGINS=a,b restricts which."""
    pm = pluggy.PluginManager("cardio")
    pm.add_hookspecs(hookspecs)
    allowed = {n.strip() for n in os.environ.get("CARDIO_PLUGINS", "").split(",") if n.strip()}
    failed, versions = {}, {}
    for ep in entry_points(group="cardio"):
        if allowed and ep.name not in allowed or pm.has_plugin(ep.name):
            continue
        # pluggy's load_setuptools_entrypoints stops at the first broken plugin; one bad
        # plugin must not break the others, so each is loaded on its own.
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as e:
            failed[ep.name] = f"{type(e).__name__}: {e}"
            continue
        versions[ep.name] = ep.dist.version if ep.dist else "?"
    return Loaded(pm, failed, versions)


def info(pm: pluggy.PluginManager, name: str) -> PluginInfo:
    plugin = pm.get_plugin(name)
    fn = getattr(plugin, "cardio_plugin_info", None)
    if fn is None:
        return PluginInfo(name=name, description="(no cardio_plugin_info hook)")
    return fn()


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


def select(loaded: Loaded, name: str) -> pluggy.PluginManager:
    """A manager holding the chosen modality plugin and every add-on, not the other modalities."""
    pm = loaded.pm
    if name in loaded.failed:
        raise CardioError(f"plugin {name!r} failed to import: {loaded.failed[name]}")
    if not pm.has_plugin(name):
        installed = sorted(n for n, _ in pm.list_name_plugin() if info(pm, n).modality) or ["none"]
        raise CardioError(f"unknown plugin {name!r}; installed: {', '.join(installed)}")
    chosen = info(pm, name)
    if chosen.modality is None:
        raise CardioError(f"plugin {name!r} is an add-on, not a modality; it runs alongside one")
    missing = [h for h in REQUIRED_HOOKS if h not in hooks_of(pm, name)]
    if missing:
        raise CardioError(f"plugin {name!r} does not implement the required hook(s) {', '.join(missing)}")
    run_pm = pluggy.PluginManager("cardio")
    run_pm.add_hookspecs(hookspecs)
    for other, plugin in pm.list_name_plugin():
        if other == name or info(pm, other).modality is None:
            run_pm.register(plugin, name=other)
    return run_pm
