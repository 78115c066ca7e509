"""Configuration: core defaults, then the plugin's, a profile, the user's YAML and --set, validated."""
from __future__ import annotations

import copy
import difflib
import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from cardio.data import CardioError


class _Loader(yaml.SafeLoader):
    """safe_load, reading 1e-3 and 3E+4 as numbers (YAML 1.1, PyYAML's, reads them as text; YAML 1.2 does not)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"), list("-+0123456789."))


def _safe_load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # a SafeLoader: no tags beyond plain data


MAX_CONFIG_BYTES = 1 << 20  # a config is a page of keys; a larger file is not one (and is never read whole)


def load_yaml(path: str | Path) -> dict:
    """Read a YAML mapping with safe_load; every failure is one line naming the file."""
    path = Path(path)
    try:
        if path.exists() and not path.is_file():  # /dev/zero, a FIFO, a folder: nothing a config is read from
            raise CardioError(f"config file {path} is not a regular file")
        with open(path, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise CardioError(f"config file {path} is over {MAX_CONFIG_BYTES >> 20} MiB: not a cardio config")
        text = data.decode()
    except UnicodeDecodeError:
        raise CardioError(f"config file {path} is not a text (UTF-8) file") from None
    except FileNotFoundError:
        raise CardioError(f"config file {path} does not exist") from None
    except OSError as e:
        raise CardioError(f"cannot read config file {path}: {e.strerror}") from None
    try:
        data = _safe_load(text)
    except yaml.constructor.ConstructorError as e:  # safe_load refuses !!python/... and other tags
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise CardioError(f"config file {path} uses a YAML tag{where}; tags are not allowed in cardio configs") \
            from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise CardioError(f"config file {path} is not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CardioError(f"config file {path} must hold a mapping of keys, not a {type(data).__name__}")
    return data


class Defaults(dict):
    """A default config, with the YAML text it was read from (comments included) for `cardio config`."""

    text: str = ""


def package_defaults(package: str, name: str = "config.yaml") -> Defaults:
    """The default config a plugin ships inside its package."""
    text = resources.files(package).joinpath(name).read_text()
    out = Defaults(_safe_load(text) or {})
    out.text = text
    return out


def commented_defaults(plugin: str, plugin_defaults: dict) -> str:
    """The core's defaults.yaml and the plugin's config.yaml verbatim, comments included.

    The plugin's keys are merged over the core's (a key it repeats replaces the core's value);
    a plugin that built its defaults in code gets them dumped without comments.
    """
    own = getattr(plugin_defaults, "text", "") or dump(dict(plugin_defaults))
    return ("# cardio core defaults (cardio/defaults.yaml); every run starts from these.\n"
            f"{core_defaults().text.rstrip()}\n\n"
            f"# plugin {plugin}: its defaults, merged over the core's.\n{own.rstrip()}\n")


def core_defaults() -> Defaults:
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
    out = {k: copy.deepcopy(v) for k, v in base.items()}  # a plain dict, whatever mapping base is
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
        value = _safe_load(raw) if raw.strip() else ""
    except yaml.constructor.ConstructorError:
        raise CardioError(f"--set {key.strip()}: YAML tags are not allowed in values") from None
    except yaml.YAMLError:
        value = raw
    out: dict = {}
    node = out
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def _in(lo: float | None, hi: float | None, lo_open: bool = False, hi_open: bool = False):
    def ok(v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return False
        return ((lo is None or (v > lo if lo_open else v >= lo)) and (hi is None or (v < hi if hi_open else v <= hi)))
    left = "" if lo is None else ("> " if lo_open else ">= ") + f"{lo:g}"
    right = "" if hi is None else ("< " if hi_open else "<= ") + f"{hi:g}"
    ok.allowed = " and ".join(p for p in (left, right) if p)  # type: ignore[attr-defined]
    return ok


def _one_of(*values: str):
    def ok(v: Any) -> bool:
        return v in values
    ok.allowed = "one of " + ", ".join(values)  # type: ignore[attr-defined]
    return ok


def _device(v: Any) -> bool:
    return isinstance(v, str) and (v in ("auto", "cpu", "cuda") or bool(re.fullmatch(r"cuda:\d+", v)))


_device.allowed = "auto, cpu, cuda or cuda:N"  # type: ignore[attr-defined]

def _inner_folds(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and (v == 0 or v >= 2)


_inner_folds.allowed = "0 (none) or an integer >= 2"  # type: ignore[attr-defined]

# Allowed values of core keys, checked before any stage runs (types are checked by merge).
RULES = {
    "seed": _in(0, 2**32 - 1), "device": _device,
    "cv.method": _one_of("kfold", "holdout", "external", "predefined"), "cv.folds": _in(2, None),
    "cohort.records": _one_of("headers", "read"),
    "cv.repeats": _in(1, None), "cv.inner_folds": _inner_folds,
    "train.epochs": _in(0, None), "train.batch_size": _in(1, None),
    "train.lr": _in(0, None, lo_open=True), "train.weight_decay": _in(0, None), "train.grad_clip": _in(0, None),
    "train.patience": _in(0, None), "train.num_workers": _in(0, None), "train.checkpoint_every": _in(1, None),
    "stats.level": _in(0, 1, lo_open=True, hi_open=True), "stats.n_resamples": _in(100, None),
}
# The same rules for a plugin's own keys with these names, in any section (e.g. finetune.batch_size).
NAMED_RULES = {"batch_size": _in(1, None), "epochs": _in(0, None), "lr": _in(0, None, lo_open=True),
               "folds": _in(2, None), "n_resamples": _in(100, None)}


def _walk(node: Any, where: str = ""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, f"{where}{k}.")
    else:
        yield where[:-1], node


def validate(config: dict) -> dict:
    """Check every value against the allowed ranges; one line naming key, value and range."""
    for key, value in _walk({k: v for k, v in config.items() if k != "profiles"}):
        rule = RULES.get(key) or NAMED_RULES.get(key.rsplit(".", 1)[-1])
        if rule is not None and value is not None and not rule(value):
            raise CardioError(f"config key {key} = {value!r} is out of range; allowed: {rule.allowed}")
    names = config["report"]["display_names"]
    bad = [k for k, v in names.items() if not isinstance(v, str) or not v.strip()]
    if bad:
        raise CardioError(f"config key report.display_names: {bad[0]!r} must map to a non-empty text, "
                          f"got {names[bad[0]]!r}")
    ref = config["stats"].get("reference")
    if not (ref is None or (isinstance(ref, str) and ref) or (isinstance(ref, dict) and all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in ref.items()))):
        raise CardioError(f"config key stats.reference = {ref!r} must be a model name or a mapping task -> model")
    if config["cv"]["method"] == "holdout":
        ratios = config["cv"]["ratios"]
        if not (isinstance(ratios, list) and len(ratios) == 3
                and all(isinstance(r, (int, float)) and not isinstance(r, bool) and r >= 0 for r in ratios)
                and ratios[0] > 0 and ratios[2] > 0):
            raise CardioError(f"config key cv.ratios = {ratios!r} must be three numbers train:val:test, "
                              "train and test > 0")
    return config


def check_moved(config: dict, moved: dict[str, str], where: str) -> None:
    """A key that moved (old dotted name -> new) is one line naming the new key, not an unknown-key hint."""
    present = {key for key, _ in _sections(config)}
    for old, new in moved.items():
        if old in present:
            raise CardioError(f"config key {old} ({where}) has moved: use {new}")


def _sections(node: Any, where: str = ""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield f"{where}{k}", v
            yield from _sections(v, f"{where}{k}.")


def resolve(plugin_defaults: dict, user_file: str | Path | None = None, sets: tuple[str, ...] = (),
            moved: dict[str, str] | None = None) -> dict:
    """The config of a run: core defaults < plugin defaults < profile < user file < --set.

    `moved` maps a plugin's old keys to their new names (PluginInfo.moved_keys): either is one line.
    """
    defaults = merge(core_defaults(), plugin_defaults, strict=False)
    user = load_yaml(user_file) if user_file else {}
    cli: dict = {}
    for item in sets:
        cli = merge(cli, parse_set(item), strict=False)
    check_moved(user, moved or {}, str(user_file))
    check_moved(cli, moved or {}, "--set")
    # Validate what the user wrote before applying the profile it may name.
    given = merge(merge(defaults, user), cli)
    profile = cli.get("profile", user.get("profile", defaults.get("profile")))
    config = defaults
    if profile is not None:
        if not isinstance(profile, str):
            raise CardioError(f"config key profile must name a profile, got {profile!r}")
        # the profiles as the user's file and --set left them: profiles.fast.cv.folds=4 changes what profile=fast sets
        profiles = given.get("profiles") or {}
        if profile not in profiles:
            raise CardioError(f"unknown profile {profile!r}; this plugin has {sorted(profiles) or 'none'}")
        if not isinstance(profiles[profile], dict):
            raise CardioError(f"config key profiles.{profile} must be a mapping of keys, got {profiles[profile]!r}")
        config = merge(config, profiles[profile], f"profiles.{profile}.")
    return validate(merge(merge(config, user), cli))


def dump(config: dict) -> str:
    return yaml.safe_dump(dict(config), sort_keys=False)
