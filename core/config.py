"""Configuration: core defaults, then the plugin's, a profile, the user's YAML and --set, validated."""
from __future__ import annotations

import copy
import difflib
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from cardio.data import CardioError


def load_yaml(path: str | Path) -> dict:
    """Read a YAML mapping with safe_load; every failure is one line naming the file."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise CardioError(f"config file {path} does not exist") from None
    except OSError as e:
        raise CardioError(f"cannot read config file {path}: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise CardioError(f"config file {path} is not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CardioError(f"config file {path} must hold a mapping of keys, not a {type(data).__name__}")
    return data


def package_defaults(package: str, name: str = "config.yaml") -> dict:
    """The default config a plugin ships inside its package."""
    return yaml.safe_load(resources.files(package).joinpath(name).read_text()) or {}


def core_defaults() -> dict:
    return package_defaults("cardio", "defaults.yaml")


def _type_ok(default: Any, value: Any) -> bool:
    if default is None or value is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, type(default))


def merge(base: dict, over: dict, where: str = "", strict: bool = True) -> dict:
    """Merge `over` into a copy of `base`; with strict, unknown keys and wrong types are errors."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        path = f"{where}{key}"
        if key not in base:
            if strict:
                near = difflib.get_close_matches(str(key), [str(k) for k in base], n=1)
                hint = f"; did you mean {where}{near[0]}?" if near else f"; valid keys: {sorted(map(str, base))}"
                raise CardioError(f"unknown config key {path}{hint}")
            out[key] = copy.deepcopy(value)
            continue
        default = base[key]
        # An empty mapping in the defaults is open: plugins and profiles fill it freely.
        if isinstance(default, dict) and default and isinstance(value, dict):
            out[key] = merge(default, value, f"{path}.", strict)
        elif strict and not _type_ok(default, value):
            raise CardioError(f"config key {path} must be {type(default).__name__}, got {value!r}")
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_set(item: str) -> dict:
    """`a.b=3` -> {"a": {"b": 3}}, the value typed by YAML (3, 0.1, true, [1, 2], null)."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise CardioError(f"--set expects key=value, got {item!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    out: dict = {}
    node = out
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def resolve(plugin_defaults: dict, user_file: str | Path | None = None, sets: tuple[str, ...] = ()) -> dict:
    """The config of a run: core defaults < plugin defaults < profile < user file < --set."""
    defaults = merge(core_defaults(), plugin_defaults, strict=False)
    user = load_yaml(user_file) if user_file else {}
    cli: dict = {}
    for item in sets:
        cli = merge(cli, parse_set(item), strict=False)
    # Validate what the user wrote before applying the profile it may name.
    merge(merge(defaults, user), cli)
    profile = cli.get("profile", user.get("profile", defaults.get("profile")))
    config = defaults
    if profile is not None:
        profiles = defaults.get("profiles") or {}
        if profile not in profiles:
            raise CardioError(f"unknown profile {profile!r}; this plugin has {sorted(profiles) or 'none'}")
        config = merge(config, profiles[profile])
    return merge(merge(config, user), cli)


def dump(config: dict) -> str:
    return yaml.safe_dump(config, sort_keys=False)
