"""Configuration: core defaults, then the plugin's, a profile, the user's YAML and --set, validated."""
from __future__ import annotations

import copy
import difflib
import functools
import re
import textwrap
import types
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar, Union, cast, get_args, get_origin, get_type_hints

import yaml

from cardio.data import CardioError


class Refused(yaml.YAMLError):
    """What cardio's YAML loader refuses where safe_load would accept it: a tag (`!!binary`, `!foo`), and a key given
    twice in one mapping (safe_load keeps the last without a word)."""

    def __init__(self, problem: str, mark: yaml.Mark) -> None:
        super().__init__(problem)
        self.problem, self.problem_mark = problem, mark


class _Loader(yaml.SafeLoader):
    """safe_load, reading 1e-3 and 3E+4 as numbers (YAML 1.1, PyYAML's, reads them as text; YAML 1.2 does not), and
    refusing what a config has no use for and would read silently wrong (Refused): every tag, every key twice."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        tag = getattr(event, "tag", None)
        if tag is not None:  # written in the file: plain data never needs one
            shown = tag.replace("tag:yaml.org,2002:", "!!", 1)  # as written: !!binary
            raise Refused(f"uses the YAML tag {shown} (line {event.start_mark.line + 1}); tags are not allowed in "
                          "cardio configs", event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults`: YAML's own override, not a repeat
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, Hashable) and key in seen:
                raise Refused(f"gives the key {key!r} twice in one mapping (lines {seen[key]} and {line}); the second "
                              "would replace the first without a word: keep one", key_node.start_mark)
            if isinstance(key, Hashable):
                seen[key] = line
        return super().construct_mapping(node, deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"), list("-+0123456789."))


def _safe_load(text: str) -> Any:
    # a copy of the parse: a run reads every installed plugin's config.yaml (10-20 ms of parsing each) to list their
    # modalities and profiles, and the tests' processes run hundreds of runs; the caller may change what it gets
    return copy.deepcopy(_parsed(text))


@functools.lru_cache(maxsize=64)
def _parsed(text: str) -> Any:
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
    except Refused as e:  # a tag, a key twice
        raise CardioError(f"config file {path} {e.problem}") from None
    except yaml.constructor.ConstructorError as e:  # what the loader cannot build (an unhashable key)
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise CardioError(f"config file {path} holds what a config cannot{where} ({e.problem})") from None
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
    """A default config, with the YAML text it was read from (comments included) for `cardio config`, and the
    plugin's Settings class when it declares its section with one (PluginInfo.settings): `resolve` checks the
    section against it."""

    text: str = ""
    settings: type[Settings] | None = None


def package_defaults(package: str, name: str = "config.yaml") -> Defaults:
    """The default config a plugin ships inside its package, read as strictly as a user's (a key it gives twice is
    refused, naming the file)."""
    text = resources.files(package).joinpath(name).read_text()
    try:
        data = _safe_load(text)
    except Refused as e:
        raise CardioError(f"{package}'s {name} {e.problem}") from None
    out = Defaults(data or {})
    out.text = text
    return out


def commented_defaults(plugin: str, plugin_defaults: dict) -> str:
    """The core's defaults.yaml and the plugin's config.yaml verbatim, comments included.

    The plugin's keys are merged over the core's (a key it repeats replaces the core's value);
    a plugin that built its defaults in code gets them dumped without comments.
    """
    settings = getattr(plugin_defaults, "settings", None)
    rest = {k: v for k, v in plugin_defaults.items() if settings is None or k != settings.section}
    own = getattr(plugin_defaults, "text", "") or dump(rest)
    declared = "" if settings is None else (
        f"# plugin {plugin}: its settings ({settings.__module__}.{settings.__qualname__}): each key's default,\n"
        f"# what it means and the values it allows.\n{describe(settings).rstrip()}\n\n")
    return ("# cardio core defaults (cardio/defaults.yaml); every run starts from these.\n"
            f"{core_defaults().text.rstrip()}\n\n{declared}"
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
    except Refused as e:
        raise CardioError(f"--set {key.strip()}: the value {e.problem}") from None
    except yaml.constructor.ConstructorError:
        raise CardioError(f"--set {key.strip()}: the value is no plain YAML data") from None
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
    left = "" if lo is None else ("> " if lo_open else ">= ") + (str(lo) if isinstance(lo, int) else f"{lo:g}")
    right = "" if hi is None else ("< " if hi_open else "<= ") + (str(hi) if isinstance(hi, int) else f"{hi:g}")
    ok.allowed = " and ".join(p for p in (left, right) if p)  # type: ignore[attr-defined]
    return ok


def _one_of(*values: Any):
    def ok(v: Any) -> bool:
        return v in values and type(v) in {type(c) for c in values}  # 1 is not True, 8.0 not 8
    ok.allowed = "one of " + ", ".join(map(str, values))  # type: ignore[attr-defined]
    return ok


def _device(v: Any) -> bool:
    return isinstance(v, str) and (v in ("auto", "cpu", "cuda") or bool(re.fullmatch(r"cuda:\d+", v)))


_device.allowed = "auto, cpu, cuda or cuda:N"  # type: ignore[attr-defined]

def _inner_folds(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and (v == 0 or v >= 2)


_inner_folds.allowed = "0 (none) or an integer >= 2"  # type: ignore[attr-defined]

# Allowed values of core keys that a setting's ge/le/choices cannot say, checked before any stage runs (types are
# checked by merge, then by CoreSettings, which declares every other core key's range and checks it: validate).
RULES: dict[str, Any] = {"device": _device, "cv.inner_folds": _inner_folds}
# The same rules for a plugin's own keys with these names, in any section (e.g. finetune.batch_size).
NAMED_RULES = {"batch_size": _in(1, None), "epochs": _in(0, None), "lr": _in(0, None, lo_open=True),
               "folds": _in(2, None), "n_resamples": _in(100, None)}


def validate(config: dict) -> dict:
    """Check every value against the allowed ranges; one line naming key, value and range."""
    for key, value in _sections({k: v for k, v in config.items() if k != "profiles"}):
        rule = None if isinstance(value, dict) else RULES.get(key) or NAMED_RULES.get(key.rsplit(".", 1)[-1])
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
    CoreSettings.of(config)  # the core's keys against their declaration: types, ranges, choices
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


def resolve(plugin_defaults: dict, user_file: str | Path | None = None, sets: Iterable[str] = (),
            moved: dict[str, str] | None = None) -> dict:
    """The config of a run: core defaults < plugin defaults < profile < user file < --set.

    `moved` maps a plugin's old keys to their new names (PluginInfo.moved_keys): either is one line. Defaults that
    carry a Settings class (PluginInfo.settings) have the plugin's section checked against it.
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
    config = validate(merge(merge(config, user), cli))
    settings = getattr(plugin_defaults, "settings", None)
    if settings is not None:
        settings.of(config)  # the plugin's section against its declaration: types, ranges, choices
    return config


def dump(config: dict) -> str:
    return yaml.safe_dump(dict(config), sort_keys=False)


# Typed plugin settings: a plugin declares its section once, as a frozen dataclass; its defaults, docs and ranges
# come from there (PluginInfo.settings), and its code reads typed attributes instead of looking keys up by string.

T = TypeVar("T")


def setting(default: T, doc: str, *, ge: float | None = None, gt: float | None = None, le: float | None = None,
            lt: float | None = None, choices: tuple | None = None) -> T:
    """One key of a Settings class: its default, what it means (`cardio config` prints it) and its allowed values
    (numbers: ge/gt/le/lt; anything: choices; for a tuple or a mapping, each item). A nested section is a field
    whose type is another Settings class and whose default is an instance of it; a list is a tuple; an open
    mapping (any keys, e.g. coefficients over a generator's defaults) a Mapping[str, X], read-only."""
    meta = {"doc": doc, "ge": ge, "gt": gt, "le": le, "lt": lt, "choices": choices}
    if isinstance(default, (list, set)):
        raise TypeError(f"setting {doc!r}: a list default is a tuple")
    if isinstance(default, dict):
        frozen = _FrozenDict(default)
        return cast(T, field(default_factory=lambda: frozen, metadata=meta))
    if isinstance(default, tuple):
        default = cast(T, tuple(_FrozenDict(v) if isinstance(v, dict) else v for v in default))
    return field(default=default, metadata=meta)


class _FrozenDict(dict):
    """A Settings' mapping value: read-only, and a dict, so that it compares, dumps and pickles as one."""

    def _read_only(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("a settings mapping is read-only")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _read_only  # type: ignore

    def __reduce__(self) -> tuple:
        return type(self), (dict(self),)


@dataclass(frozen=True)
class Settings:
    """A plugin's config section, typed and frozen. Subclass it with @dataclass(frozen=True), one `setting(...)`
    per key, and name the subclass in PluginInfo(settings=...):

        @dataclass(frozen=True)
        class MySettings(Settings):
            section: ClassVar[str] = "my_plugin"
            hidden: int = setting(64, "MLP hidden units", ge=1)

    The core checks the section against it whenever it resolves a config (a wrong type, a value out of range, an
    unknown key: one line naming the key and what it allows); the hooks receive it built, as `settings`.
    The resolved config itself stays a plain dict (run.json, sweeps' --set, cache keys)."""

    section: ClassVar[str] = ""  # the config key of the section: the plugin's name

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> Self:
        """The section of a resolved config (checked when it was resolved), as this class."""
        if cls.section not in config:
            raise CardioError(f"the config has no section {cls.section!r} (the settings of {cls.__qualname__})")
        return cls.from_mapping(config[cls.section], cls.section)

    @classmethod
    def from_mapping(cls, values: Any, where: str) -> Self:
        """Check `values` (the mapping at config key `where`) and build the object; missing keys take defaults."""
        if not isinstance(values, Mapping):
            raise CardioError(f"config key {where} must be a mapping of keys, got {values!r}")
        names = [f.name for f in fields(cls)]
        for key in values:
            if key not in names:
                near = difflib.get_close_matches(str(key), names, n=1)
                hint = f"; did you mean {_at(where, near[0])}?" if near else f"; valid keys: {sorted(names)}"
                raise CardioError(f"unknown config key {_at(where, key)}{hint}")
        hints = _hints(cls)
        return cls(**{f.name: _checked(values[f.name], hints[f.name], f.metadata, _at(where, f.name))
                      for f in fields(cls) if f.name in values})

    @classmethod
    def defaults(cls) -> dict:
        """The section's defaults as the plain dict a config holds (lists, nested dicts)."""
        return _plain(cls())

    def as_dict(self) -> dict:
        """This object as the plain dict a config holds (for a cache key or a bundle's JSON)."""
        return _plain(self)


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type[Settings]) -> dict[str, Any]:
    """A Settings class's field types, evaluated once a class: get_type_hints evaluates every annotation's text
    again on each call (postponed annotations), which was most of what Settings.of cost, and a run calls it a
    thousand times (a nested CV's refits, a check a record)."""
    if cls not in _HINTS:
        _HINTS[cls] = get_type_hints(cls)
    return _HINTS[cls]


def _at(where: str, key: Any) -> str:
    """The dotted config key of `key` in the section at `where` ("" for the config's root)."""
    return f"{where}.{key}" if where else str(key)


def plugin_settings(info: PluginInfo, config: Mapping[str, Any]) -> Settings | None:
    """What every stage hook receives as `settings`: the selected plugin's PluginInfo.settings built from the
    resolved config, None when it declares none."""
    return None if info.settings is None else info.settings.of(config)


def _plain(value: Any) -> Any:
    if isinstance(value, Settings):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def _rule(meta: Mapping[str, Any]):
    """The allowed values a setting declares, as config's rules (a test with its `allowed` text), or None."""
    if meta.get("choices") is not None:
        return _one_of(*meta["choices"])
    lo, hi = (meta["gt"] if meta.get("gt") is not None else meta.get("ge"),
              meta["lt"] if meta.get("lt") is not None else meta.get("le"))
    if lo is None and hi is None:
        return None
    return _in(lo, hi, lo_open=meta.get("gt") is not None, hi_open=meta.get("lt") is not None)


def _type_name(tp: Any) -> str:
    """As merge names a type (int, float, str, list, dict), with "or null" where None is allowed."""
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _type_name(a) for a in args)
    if origin is tuple:
        return f"list of {_type_name(args[0])}"
    if (isinstance(tp, type) and issubclass(tp, Settings)) or origin is Mapping:
        return "dict"
    return getattr(tp, "__name__", str(tp))


class _OutOfRange(CardioError):
    """A value of the declared type outside the setting's allowed values."""


def _checked(value: Any, tp: Any, meta: Mapping[str, Any], key: str, item: bool = False) -> Any:
    """`value` as type `tp` (a list as a tuple, a mapping as a nested Settings or a read-only dict), within the
    setting's allowed values; else one CardioError line naming the key."""
    def wrong() -> CardioError:  # made only when raised: its text costs more than the check
        return CardioError(f"config key {key} must be {_type_name(tp)}, got {value!r}")

    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):  # the first alternative the value is (null, a name or an index, ...)
        if value is None and type(None) in args:
            return None
        for alternative in (a for a in args if a is not type(None)):
            try:
                return _checked(value, alternative, meta, key, item)
            except _OutOfRange:
                raise  # of this alternative's type, outside its range: that is the error
            except CardioError:
                continue
        raise wrong()
    if tp is Any:
        return value
    if isinstance(tp, type) and issubclass(tp, Settings):
        return tp.from_mapping(value, key)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise wrong()
        return tuple(_checked(v, args[0], meta, key, item=True) for v in value)
    if origin is Mapping:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise wrong()
        return _FrozenDict({k: _checked(v, args[1], meta, f"{key}.{k}") for k, v in value.items()})
    # an int where a float is declared stays the int the config holds (PEP 484's numeric tower), so that what a
    # run writes from it (report text, cache keys) is what it wrote before the section was typed
    ok = (int, float) if tp is float else tp
    if not isinstance(value, ok) or (tp in (int, float) and isinstance(value, bool)):
        raise wrong()
    rule = _rule(meta)
    if rule is not None and not rule(value):
        what = f"has the item {value!r}, which is" if item else f"= {value!r} is"
        raise _OutOfRange(f"config key {key} {what} out of range; allowed: {rule.allowed}")
    return value


def describe(settings: type[Settings], column: int = 28) -> str:
    """The section as commented YAML: each key with its default, what it means and what it allows."""
    head = _commented(f"{settings.section}:", (settings.__doc__ or "").strip().split("\n")[0], column)
    return "\n".join([*head, *_described(settings(), 1, column)])


def _described(values: Settings, indent: int, column: int) -> list[str]:
    lines = []
    for f in fields(values):
        value, rule = getattr(values, f.name), _rule(f.metadata)
        each = "each item " if isinstance(value, tuple) else ""
        note = f.metadata.get("doc", "") + (f"; allowed: {each}{rule.allowed}" if rule is not None else "")
        pad, nested = "  " * indent, isinstance(value, Settings)
        head = f"{pad}{f.name}:" + ("" if nested else f" {_flow(_plain(value))}")
        if len(head) > column + 30:  # a long list: the doc above it, the list in block style below
            wrapped = textwrap.wrap(note, 116 - len(pad))
            plain = _plain(value)  # a list of mappings: one flow line each; of scalars: one item a line
            flow = None if isinstance(plain, list) and any(isinstance(v, dict) for v in plain) else False
            block = yaml.safe_dump({f.name: plain}, default_flow_style=flow, sort_keys=False, width=116 - len(pad))
            lines += [f"{pad}# {w}" for w in wrapped] + [f"{pad}{line}" for line in block.splitlines()]
            continue
        lines += _commented(head, note, column)
        if nested:
            lines += _described(value, indent + 1, column)
    return lines


def _flow(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1 << 16).removesuffix(
        "\n...\n").strip()


def _commented(head: str, note: str, column: int, width: int = 120) -> list[str]:
    """`head` then `# note` from `column` on, wrapped within `width` under itself."""
    at = max(column, len(head) + 2)
    wrapped = textwrap.wrap(note, max(width - at - 4, 30)) or [""]
    first = f"{head.ljust(at)}# {wrapped[0]}".rstrip()
    return [first, *(f"{'':<{at}}#   {w}" for w in wrapped[1:])]


def with_settings(defaults: Mapping, settings: type[Settings]) -> Defaults:
    """A plugin's defaults (its config.yaml: the core keys it changes, its profiles) with its section filled from
    the Settings class that declares it, which `resolve` then checks the section against."""
    if getattr(defaults, "settings", None) is settings:
        return defaults  # type: ignore[return-value]
    if settings.section in defaults:
        raise CardioError(f"the default config repeats section {settings.section!r}: {settings.__qualname__} "
                          "declares its keys, defaults and docs, once")
    out = Defaults({**defaults, settings.section: settings.defaults()})
    out.text, out.settings = getattr(defaults, "text", ""), settings
    return out


# The core's own sections, typed: defaults.yaml stays the text `cardio config` prints, and these classes agree with it
# key for key, default for default, doc for comment (tests/core/test_core_settings.py). Plugins and the core read
# `CoreSettings.of(config).stats.level` instead of `config["stats"]["level"]`.

@dataclass(frozen=True)
class CohortSettings(Settings):
    """The cohort a run reads."""

    section: ClassVar[str] = "cohort"
    dir: str | None = setting(None, "the cohort folder: its table (the plugin's, e.g. labels.csv) and the files the "
                                    "table names; null: the plugin's synthetic cohort. `cardio predict --cohort DIR` "
                                    "sets it")
    allow_outside_paths: bool = setting(False, "true: let the table name files outside the folder, symlinks included "
                                               "(each is logged)")
    permute_labels: bool = setting(False, "null control: move the label (and declared outcome columns) to random "
                                          "other patients after loading; a correct pipeline then scores chance (AUC "
                                          "CI covers 0.5)")
    records: str = setting("headers", "how far load opens the record files: headers (each file's header and size; "
                                      "what a plugin reads whole at load anyway, ECGs and polar maps, whole) | read "
                                      "(every record read whole with the run's readers: flat, clipped, too short, "
                                      "gaps, a rate its header contradicts); cardio validate always reads a "
                                      "cohort.dir whole", choices=("headers", "read"))


@dataclass(frozen=True)
class CvSettings(Settings):
    """The outer split: how patients are divided into folds."""

    section: ClassVar[str] = "cv"
    method: str = setting("kfold", "kfold | holdout | external | predefined",
                          choices=("kfold", "holdout", "external", "predefined"))
    folds: int = setting(5, "kfold: the number of folds", ge=2)
    repeats: int = setting(1, "kfold: how many times the K-fold split is drawn anew", ge=1)
    stratify: bool = setting(True, "keep the label's classes in proportion in every fold")
    ratios: tuple[float, ...] = setting((8, 1, 1), "holdout train:val:test")
    test_sites: tuple[str | int, ...] = setting((), "external: sites held out for testing")
    column: str = setting("split", "predefined: column holding train/val/test")
    patients: str | None = setting(None, "kfold/holdout: a CSV of patient_id and the label to split instead of the "
                                         "cohort's own patients, so the runs of several modalities of one cohort give "
                                         "each patient the same fold even when a modality is missing for some (cardio "
                                         "synthetic-crt writes one: patients.csv)")
    inner_folds: int = setting(0, "k >= 2: each fit task also fits k inner folds over its fold's training patients "
                                  "and keeps their out-of-fold predictions (tasks/fit-<fold>/inner.npz) for nested "
                                  "schemes: cardio fuse, cardio sweep --nested. Costs k more fits per fold")


@dataclass(frozen=True)
class TrainSettings(Settings):
    """the shared training loop (cardio.engine)"""

    section: ClassVar[str] = "train"
    val_fraction: float = setting(0.0, "share of each fit's training patients the core holds out as its validation "
                                       "rows (by patient, stratified) when the split gives none; a plugin that stops "
                                       "early sets it. 0: none")
    epochs: int = setting(20, "passes over the training rows", ge=0)
    batch_size: int = setting(64, "rows per optimizer step", ge=1)
    lr: float = setting(0.001, "learning rate", gt=0)
    weight_decay: float = setting(0.0001, "weight decay", ge=0)
    optimizer: str = setting("adamw", "any torch.optim class by name, case-insensitive: adamw | adam | sgd | ...")
    optimizer_args: Mapping[str, Any] = setting({}, "extra arguments of that class (lr and weight_decay are above; "
                                                    "sgd defaults momentum 0.9; fused where the class has it, unless "
                                                    "fused, foreach or differentiable is set here)")
    scheduler: str = setting("cosine", "none | cosine | step | plateau | onecycle, or a torch.optim.lr_scheduler "
                                       "class name")
    scheduler_args: Mapping[str, Any] = setting({}, "extra arguments (defaults: cosine T_max=epochs, step "
                                                    "step_size=epochs/3, plateau on the validation score, onecycle "
                                                    "max_lr=lr over every batch of every epoch)")
    grad_clip: float = setting(1.0, "max gradient norm; 0 disables", ge=0)
    patience: int = setting(5, "epochs without improvement before stopping; 0 disables", ge=0)
    amp: bool = setting(True, "bf16 autocast on CUDA (ignored on CPU)")
    channels_last: bool = setting(False, "channels-last memory format on CUDA: 2-D for images, 3-D for video (N, C, "
                                         "T, H, W); off until measured faster on a GPU (none was at hand when it was "
                                         "added)")
    compile: bool = setting(False, "torch.compile the training step (off until measured faster on a GPU; slow to "
                                   "start on CPU)")
    deterministic: bool | None = setting(None, "true: deterministic kernels, bit-identical reruns and resumes; false: "
                                               "fastest kernels (cudnn.benchmark on CUDA); null: true on the CPU, "
                                               "false on CUDA (set true for bit-identical GPU runs)")
    num_workers: int = setting(0, "DataLoader workers, for datasets not served from the device", ge=0)
    cohort_on_device: bool = setting(True, "an ArrayDataset without a per-item transform that fits in half the "
                                           "device's free memory is moved there once and each batch index-selected "
                                           "there (no per-item Python)")
    checkpoint_every: int = setting(1, "at least this many epochs between checkpoints", ge=1)
    checkpoint_every_s: float = setting(60.0, "and at least this many seconds (0: every checkpoint_every epochs); "
                                              "always one at the end, and one after the epoch in which a SIGTERM or "
                                              "SIGUSR2 came (then that signal acts as it would have: the executor's "
                                              "cancel, submitit's requeue, or the default)")
    keep_checkpoints: bool = setting(False, "false: a task's checkpoints are deleted once it is done (a done task "
                                            "never runs again; prepare's once the run is finished); true keeps "
                                            "checkpoints/ whole")
    cpu_threads: int | None = setting(None, "torch CPU threads of every step of a fit (train, predict, explain, "
                                            "export, evaluate); null: the executor's share (inline: the allotted "
                                            "CPUs; local: those / the tasks at once; slurm: the job's). Sums split "
                                            "over threads round differently: executors agree to the last digit at "
                                            "the same count (null on 2 CPUs: 2 threads inline, 1 per task of 2 local "
                                            "workers)")
    tensorboard: bool = setting(False, "true: TensorBoard event files per fit under <run>/tensorboard/<fold>-<name>/ "
                                       "(torch's writer)")


@dataclass(frozen=True)
class StatsSettings(Settings):
    """The shared statistics service's intervals and tests."""

    section: ClassVar[str] = "stats"
    level: float = setting(0.95, "confidence level of every interval", gt=0, lt=1)
    n_resamples: int = setting(2000, "bootstrap resamples", ge=100)
    nested_repeats: int = setting(20, "K-fold splits nested CV refits the plugin's models cheap to refit on "
                                      "(cardio_refit), for their cross-validated intervals (docs/statistics.md); 0: "
                                      "the fold-DeLong interval for all", ge=0)
    reference: str | Mapping[str, str] | None = setting(
        None, "the model the paired tests compare every other model with, fixed before any result is seen (a plugin "
              "sets its paper's claim): a model name, or {task: model}; null tests every pair as one family. Tests "
              "between two other models are labelled exploratory.")
    reference_across_tasks: bool = setting(False, "true: the reference's tests on every task are one Holm family (a "
                                                  "claim that it wins on each of several tasks), instead of one "
                                                  "family per task")

    def reference_for(self, task: str) -> str | None:
        """The reference model of `task`: the one name, or the task's entry of a {task: model} mapping."""
        return self.reference.get(task) if isinstance(self.reference, Mapping) else self.reference


@dataclass(frozen=True)
class ReportSettings(Settings):
    """What the report shows."""

    section: ClassVar[str] = "report"
    display_names: Mapping[str, str] = setting({}, "name -> what tables and figures show: a column, model or task, or "
                                                   "task=0 / task=1 for the classes; a unit goes in a trailing "
                                                   "parenthesis and labels the axes, e.g. {lvef: LVEF (%), qrs_ms: "
                                                   "QRS duration (ms), responder=1: CRT responder}; metrics.json "
                                                   "keeps the names")
    figures: bool = setting(True, "false: the performance section draws no ROC, calibration, decision-curve, "
                                  "confusion or Bland-Altman figures (sweeps and tests that read metrics.json only); "
                                  "every estimate is kept")
    keep_key: bool = setting(False, "true: write <run>.key.csv beside the run (mode 0600) mapping the pseudonymous "
                                    "ids of predictions.csv to the input's ids; the report never names it")


@dataclass(frozen=True)
class SlurmSettings(Settings):
    """The SLURM executor's job resources."""

    section: ClassVar[str] = "slurm"
    partition: str | None = setting(None, "the partition the jobs go to; null: the cluster's default")
    gpus_per_task: int = setting(0, "GPUs of each job")
    cpus_per_task: int = setting(2, "CPUs of each job")
    mem_gb: int = setting(16, "memory of each job (GB)")
    extra: Mapping[str, Any] = setting({}, "more sbatch options, e.g. {account: lab, qos: high, constraint: a100}")


@dataclass(frozen=True)
class ExecutorSettings(Settings):
    """where a run's tasks run (cardio run --executor); none of it changes a result"""

    section: ClassVar[str] = "executor"
    name: str = setting("inline", "inline: every task in this process, in order | local: a process per task | slurm: "
                                  "jobs")
    workers: int = setting(2, "local: tasks at once (with GPUs, one task per GPU); slurm: the fit array's "
                              "concurrency cap")
    gpus: tuple[int, ...] | None = setting(None, "local: GPU ids to share out, e.g. [0, 1, 2, 3]; null: every GPU "
                                                 "torch sees (none on CPU)")
    folder: str | None = setting(None, "submitit's job files and logs; null: <run>/tasks/submitit (on the shared "
                                       "filesystem)")
    signal: str = setting("USR2", "sent before a job's time ends or it is preempted: the task checkpoints and is "
                                  "requeued")
    signal_delay_s: int = setting(120, "seconds between that signal and the kill")
    timeout_min: int = setting(240, "a task's time limit (slurm --time; local: killed after it)")
    wait: bool = setting(False, "slurm: false submits and returns (cardio status RUN follows it); true waits for "
                                "evaluate")
    slurm: SlurmSettings = setting(SlurmSettings(), "SLURM's job resources")


@dataclass(frozen=True)
class CoreSettings(Settings):
    """The core's keys of a resolved config (src/cardio/defaults.yaml), typed: `CoreSettings.of(config)`."""

    seed: int = setting(0, "seeds Python, NumPy and torch; folds and bootstrap draws derive from it", ge=0,
                        le=2**32 - 1)
    device: str = setting("auto", "auto (CUDA when present) | cpu | cuda | cuda:N")
    profile: str | None = setting(None, "name of an entry in the plugin's `profiles:` to apply")
    profiles: Mapping[str, Any] = setting({}, "name -> overrides, defined by plugins (e.g. `paper`)")
    cache_dir: str | None = setting(None, "shared cache (synthetic cohorts, spectrograms); null -> ~/.cache/cardio")
    label: str = setting("label", "name of the outcome column the splits stratify by")
    cohort: CohortSettings = setting(CohortSettings(), "the cohort a run reads")
    cv: CvSettings = setting(CvSettings(), "the outer split")
    train: TrainSettings = setting(TrainSettings(), "the shared training loop (cardio.engine)")
    stats: StatsSettings = setting(StatsSettings(), "the statistics service's intervals and tests")
    subgroups: tuple[str, ...] = setting((), "columns of the cohort table to report every metric by (e.g. [sex, "
                                             "site])")
    subgroups_if_present: tuple[str, ...] = setting((), "the same, for the columns the cohort table has (a plugin's "
                                                        "default: e.g. [site])")
    explain: bool = setting(True, "run cardio_explain on the last fold")
    final_model: bool = setting(True, "after cross-validation, fit once on every row and export it to <run>/model/ "
                                      "for `cardio predict` (skipped for a plugin that cannot export, and for the "
                                      "null control)")
    fold_models: bool = setting(False, "true (with final_model): the bundle also carries each outer fold's model, for "
                                       "`cardio predict --ensemble folds` (their mean; the bundle grows by half a "
                                       "model per fold in float16)")
    fold_models_precision: str = setting("float16", "float16: the fold models' network weights stored in half "
                                                    "precision (half the bytes; read back as float32, scores within "
                                                    "1e-3 of float32's: benchmarks/run_folder.py); float32: as "
                                                    "fitted", choices=("float16", "float32"))
    report: ReportSettings = setting(ReportSettings(), "what the report shows")
    executor: ExecutorSettings = setting(ExecutorSettings(), "where a run's tasks run (cardio run --executor); none "
                                                             "of it changes a result")

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> Self:
        """The core's keys of a resolved config (its plugin sections set aside), checked and typed."""
        names = {f.name for f in fields(cls)}
        return cls.from_mapping({k: v for k, v in config.items() if k in names}, "")


@dataclass
class PluginInfo:
    """What `cardio plugins` shows and what a run starts from."""

    name: str
    description: str
    modality: str | None = None  # None marks an add-on that wraps or adds to stages
    default_config: dict = field(default_factory=dict)
    # Old config keys of this plugin and their new names: a config that uses one is refused in one line naming it.
    moved_keys: dict[str, str] = field(default_factory=dict)
    # The plugin's own section (config[settings.section]) as a typed, frozen cardio.Settings class: its keys'
    # defaults, docs and allowed values. default_config then holds the rest (the core keys it changes, profiles).
    settings: type[Settings] | None = None

    def __post_init__(self) -> None:
        if self.settings is not None:
            self.default_config = with_settings(self.default_config, self.settings)
