"""The core's keys typed (cardio.CoreSettings): its classes agree with src/cardio/defaults.yaml, the text `cardio
config` prints, key for key, default for default and doc for comment; resolving a config checks the core's keys."""
from __future__ import annotations

import re
from dataclasses import fields

import pytest

import cardio
from cardio.config import CoreSettings, Settings, _plain, core_defaults, resolve


def _comments(text: str) -> dict[str, str]:
    """Each dotted key of a YAML text -> its comment, its continuation lines (a line holding only a comment) joined."""
    out: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    last = None
    for line in text.splitlines():
        if m := re.match(r"^(\s*)([A-Za-z_]\w*):(.*)$", line):
            stack = [(i, k) for i, k in stack if i < len(m.group(1))] + [(len(m.group(1)), m.group(2))]
            last = ".".join(k for _, k in stack)
            out[last] = m.group(3).partition("#")[2].strip()
        elif (c := re.match(r"^\s+#\s?(.*)$", line)) and last:
            out[last] = f"{out[last]} {c.group(1).strip()}".strip()
    return out


def _declared(values: Settings, where: str = "") -> dict[str, tuple[object, str]]:
    """Each dotted key of a Settings object -> (its default as a config holds it, its doc)."""
    out = {}
    for f in fields(values):
        key, value = f"{where}{f.name}", getattr(values, f.name)
        out[key] = (_plain(value), f.metadata["doc"])
        if isinstance(value, Settings):
            out.update(_declared(value, f"{key}."))
    return out


def test_the_classes_declare_every_key_of_defaults_yaml_with_its_default_and_no_other():
    declared, defaults = _declared(CoreSettings()), core_defaults()
    keys = _comments(defaults.text)
    assert sorted(declared) == sorted(keys), (sorted(set(keys) - set(declared)), sorted(set(declared) - set(keys)))
    for key in keys:
        node = defaults
        for part in key.split("."):
            node = node[part]
        assert declared[key][0] == node, f"{key}: the class's default {declared[key][0]!r}, defaults.yaml's {node!r}"
    assert CoreSettings.defaults() == dict(defaults)


def test_each_doc_is_the_comment_of_its_key_in_defaults_yaml():
    declared = _declared(CoreSettings())
    differ = [(k, doc, note) for k, note in _comments(core_defaults().text).items()
              if note and (doc := declared[k][1]) != note]
    assert not differ, differ


def test_a_plugin_reads_the_core_keys_typed():
    config = resolve({}, sets=("cohort.dir=/data/crt", "stats.reference={auc: ae}", "cv.folds=3", "train.epochs=2"))
    core = cardio.CoreSettings.of(config)
    assert (core.cohort.dir, core.cv.folds, core.train.epochs, core.stats.level) == ("/data/crt", 3, 2, 0.95)
    assert (core.stats.reference_for("auc"), core.stats.reference_for("other")) == ("ae", None)
    assert core.train.as_dict() == config["train"]  # what the engine's train= mapping was
    with pytest.raises(TypeError):
        core.report.display_names["x"] = "y"  # type: ignore[index]  # the point: a read-only mapping refuses it


@pytest.mark.parametrize("item,message", [
    ("cohort.dir=5", "config key cohort.dir must be str or null, got 5"),
    ("train.epochs=null", "config key train.epochs must be int, got None"),
    ("subgroups=[1]", "config key subgroups must be str, got 1"),
    ("executor.gpus=[a]", "config key executor.gpus must be list of int or null, got ['a']"),
    ("cv.folds=1", "config key cv.folds = 1 is out of range; allowed: >= 2"),
    ("stats.level=1.5", "config key stats.level = 1.5 is out of range; allowed: > 0 and < 1"),
    ("cohort.records=all", "config key cohort.records = 'all' is out of range; allowed: one of headers, read"),
])
def test_resolve_checks_the_core_keys_against_their_classes(item, message):
    with pytest.raises(cardio.CardioError) as e:
        resolve({}, sets=(item,))
    assert str(e.value) == message


def test_no_plugin_looks_up_a_core_key_by_string():
    """scripts/config_lookups.py's count of the core's keys taken from a config by string, in every plugin: 0."""
    import importlib.util
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("config_lookups", repo / "scripts" / "config_lookups.py")
    assert spec is not None and spec.loader is not None
    lookups = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lookups)
    found = {name: counts[2:] for name, counts in lookups._counts(repo / "plugins", None).items() if any(counts[2:])}
    assert not found, f"plugins that look up the core's keys by string (read CoreSettings.of(config)): {found}"
    planted = lookups.count(["def f(config):\n    return config['stats']['level'], config.get('label')\n"],
                            lookups.CORE_KEYS)
    assert planted == (2, 1)  # the count itself finds them
