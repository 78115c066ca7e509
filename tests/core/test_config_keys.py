"""Documented config, both ways: every config key the code reads is in the defaults, and every key in the
defaults is read, for the core and for each installed plugin.

Why a static scan of the source and not recorded reads of real runs: a run only reads the keys of the branches
it takes (a small CPU config never reads the GPU, profile, real-cohort or resume keys), whole sections are
copied into plain dicts (`dict(cfg["train"])` for the engine), and one small run per plugin would add minutes
of CPU to the suite. The scan reads every module's AST once (well under a second) and covers every branch.

What it resolves: chains of string subscripts and `.get("key")` calls rooted at a name `config`, at a local
alias of such a chain (`pt = config["pretrain"]`, `s = dict(config["stats"])`). Those reads must name a key of
the defaults (core defaults, then the plugin's), from the root or below one of its sections (a helper handed
`config["baselines"]` as `config`).
A key of the defaults counts as read when such a chain names it, or, for sections handed to helpers under
another name (`cfg`, `s`, `settings`), when its own name is read as a key (subscript, `.get`, `in`) or listed
in a module-level tuple of key names (the engine's SETTINGS) in the core or the plugin's own package. Empty
mappings in the defaults (`profiles`, `optimizer_args`, `report.display_names`) are open: any key below them is
fine. Keys that no scan can see are in ALLOWED, each with the reason.
A plugin that declares its section as a cardio.Settings class (PluginInfo.settings) reads it as typed attributes
(`s.step1.epochs`), which mypy checks against the declaration: a key of that section counts as read when an
attribute of its name is read in the plugin's package. The core's keys are typed too (cardio.CoreSettings): one
counts as read when an attribute of its name is read in the core or the plugin (`core.stats.level`).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import cardio
from cardio import plugins
from cardio.config import core_defaults, merge

# The core's keys (defaults.yaml) are read by the kernel and by the services that stand on it (the executor keys by
# the cluster service, a plugin's `response` section by the outcome service's rule): scanned together, each
# installed service where it is installed
CORE = [Path(cardio.__file__).parent, *(Path(m.__file__).parent for m in (
    pytest.importorskip(name) for name in ("cardio_cluster", "cardio_fusion", "cardio_imaging", "cardio_report",
                                             "cardio_public", "cardio_response", "cardio_signal", "cardio_deploy")))]
# (plugin or "core", dotted key) -> why the scan cannot see it read, or the fix the plugin needs
ALLOWED: dict[tuple[str, str], str] = {
    ("core", "profile"): "read by config.resolve from the user's file and --set before the merged config exists",
    ("core", "cohort.allow_outside_paths"): "read by each plugin's cardio_load and handed to "
                                            "cardio.data.cohort.read_table, the one place that applies it",
    # Mismatches in plugins (their files belong to their plugins; the fix each needs):
    ("ecg_transfer", "ecg_transfer.pretrain.split"): "never read: aami.split_records(split=...) is never called "
                                                     "with it; pass EcgSettings.of(config).pretrain.split where "
                                                     "the DS1 records are chosen, or drop it",
}


def _leaves(node: dict, prefix: tuple = ()) -> dict[tuple, object]:
    """Every leaf path of a defaults mapping; an empty mapping is a leaf (open: filled by plugins or users)."""
    out = {}
    for key, value in node.items():
        path = (*prefix, str(key))
        if isinstance(value, dict) and value:
            out.update(_leaves(value, path))
        else:
            out[path] = value
    return out


def _known(path: tuple, defaults: dict) -> bool:
    """A read path names a key of the defaults (or lies below an open, empty mapping)."""
    node = defaults
    for key in path:
        if not isinstance(node, dict):
            return False
        if not node:
            return True  # open mapping
        if key not in node:
            return False
        node = node[key]
    return True


class _Reads(ast.NodeVisitor):
    """Config reads of one module: resolved chains, and every key name read as a key anywhere."""

    def __init__(self) -> None:
        self.resolved: list[tuple[tuple, int]] = []  # (path, line)
        self.names: set[str] = set()
        self.attributes: set[str] = set()  # every attribute name read: typed settings' keys
        self.aliases: list[dict[str, tuple]] = [{}]

    def _root(self, node: ast.AST) -> tuple | None:
        if isinstance(node, ast.Name):
            if node.id in ("config", "cfg"):
                return ()
            for scope in reversed(self.aliases):
                if node.id in scope:
                    return scope[node.id]
            return None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" \
                and len(node.args) == 1:
            return self.chain(node.args[0])
        return self.chain(node) if isinstance(node, (ast.Subscript, ast.Call)) else None

    def chain(self, node: ast.AST) -> tuple | None:
        """The config path a subscript or .get chain reads, or None when its root is not the config."""
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) \
                and isinstance(node.slice.value, str):
            base = self._root(node.value)
            return None if base is None else (*base, node.slice.value)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            base = self._root(node.func.value)
            return None if base is None else (*base, node.args[0].value)
        return None

    def _function(self, node) -> None:
        self.aliases.append({})
        self.generic_visit(node)
        self.aliases.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_Assign(self, node: ast.Assign) -> None:
        self.generic_visit(node)
        targets, values = node.targets[0], node.value
        pairs = (zip(targets.elts, values.elts) if isinstance(targets, ast.Tuple) and isinstance(values, ast.Tuple)
                 and len(targets.elts) == len(values.elts) else [(targets, values)])
        for target, value in pairs:
            if isinstance(target, ast.Name):
                whole = isinstance(value, ast.Name) and value.id in ("config", "cfg")
                path = None if whole else self._root(value)
                if path:
                    self.aliases[-1][target.id] = path
                else:
                    self.aliases[-1].pop(target.id, None)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
            self.names.add(node.slice.value)
            path = self.chain(node)
            if path:
                self.resolved.append((path, node.lineno))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("get", "pop", "setdefault") and node.args \
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            self.names.add(node.args[0].value)
            path = self.chain(node) if node.func.attr == "get" else None
            if path:
                self.resolved.append((path, node.lineno))
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.attributes.add(node.attr)
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        if isinstance(node.left, ast.Constant) and isinstance(node.left.value, str) \
                and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops):
            self.names.add(node.left.value)
        self.generic_visit(node)


def _scan(folder: Path | list[Path]) -> tuple[list[tuple[tuple, str]], set[str], set[str]]:
    """(resolved reads with their file:line, key names read, attribute names read) of every module under `folder`
    (or under each of several)."""
    resolved, names, attributes = [], set(), set()
    for path in sorted(p for f in (folder if isinstance(folder, list) else [folder]) for p in f.rglob("*.py")):
        if "templates" in path.parts:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        reads = _Reads()
        reads.visit(tree)
        resolved += [(p, f"{path.name}:{line}") for p, line in reads.resolved]
        names |= reads.names
        attributes |= reads.attributes
        for node in tree.body:  # module-level tuples of key names, e.g. the engine's SETTINGS
            value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
            if isinstance(value, (ast.Tuple, ast.List, ast.Set)):
                names |= {e.value for e in value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
    return resolved, names, attributes


def _installed() -> list[tuple[str, dict, Path, str | None]]:
    loaded = plugins.get_plugin_manager()
    out = []
    for name in sorted(n for n, v in loaded.versions.items() if "(service)" not in v):
        module = loaded.pm.get_plugin(name)
        info = plugins.info(loaded.pm, name)
        if info.modality is None or module is None:
            continue
        typed = info.settings.section if info.settings is not None else None
        out.append((name, dict(info.default_config or {}), Path(module.__file__).parent, typed))
    return out


def _sections(node: dict, prefix: tuple = ()) -> list[tuple]:
    """Every path of a non-empty mapping in the defaults, the root () included."""
    out = [prefix]
    for key, value in node.items():
        if isinstance(value, dict) and value:
            out += _sections(value, (*prefix, str(key)))
    return out


def _anchored(path: tuple, defaults: dict) -> list[tuple]:
    """The full paths a read may mean: itself from the root, or below a section a helper was handed as `config`."""
    return [(*section, *path) for section in _sections(defaults) if _known((*section, *path), defaults)]


def _mismatches(owner: str, defaults: dict, own: dict, folder: Path | None,
                typed: str | None = None) -> tuple[list[str], list[str]]:
    """(reads not in the defaults, keys of `own` never read), minus ALLOWED. `typed`: the section a Settings class
    declares, whose keys are read as attributes."""
    core_reads, core_names, core_attributes = _scan(CORE)
    reads, names, attributes = (core_reads, core_names, set()) if folder is None else _scan(folder)
    names = names | core_names  # a plugin's section may be handed to the core's engine
    attributes = attributes | core_attributes  # the core's keys are typed too (CoreSettings), read by either
    core_keys = set(core_defaults())
    unknown = sorted({f"{'.'.join(p)} ({where})" for p, where in reads if not _anchored(p, defaults)
                      and (owner, ".".join(p)) not in ALLOWED})
    stale = [k for o, k in ALLOWED if o == owner and _is_read(tuple(k.split(".")), reads, core_reads, names,
                                                                defaults, folder)]
    assert not stale, f"ALLOWED lists {owner} keys that are read now; remove them: {stale}"
    unread = [".".join(path) for path in _leaves({k: v for k, v in own.items() if k != "profiles"})
              if not (_is_read(path, reads, core_reads, names, defaults, folder)
                      or (path[0] in {typed, *core_keys} and path[-1] in attributes))
              and (owner, ".".join(path)) not in ALLOWED]
    return unknown, unread


def _is_read(path: tuple, reads: list, core_reads: list, names: set, defaults: dict, folder: Path | None) -> bool:
    read_paths = {full for p, _ in (reads if folder is None else reads + core_reads) for full in _anchored(p, defaults)}
    # a top-level key is never handed to a helper as a section: it must be read by its path
    return path in read_paths or (len(path) > 1 and path[-1] in names)


def test_core_reads_only_documented_keys_and_reads_every_one():
    defaults = core_defaults()
    unknown, unread = _mismatches("core", defaults, defaults, None)
    assert unknown == [], f"the core reads keys that are not in src/cardio/defaults.yaml: {unknown}"
    assert unread == [], f"src/cardio/defaults.yaml has keys no core code reads: {unread}"


@pytest.mark.parametrize("name,own,folder,typed", _installed(), ids=lambda v: v if isinstance(v, str) else "")
def test_plugin_reads_only_documented_keys_and_reads_every_one(name, own, folder, typed):
    defaults = merge(core_defaults(), own, strict=False)
    for profile, over in (own.get("profiles") or {}).items():  # a profile may only repeat documented keys
        bad = [".".join(p) for p in _leaves(over) if not _known(p, defaults)]
        assert not bad, f"{name}: profile {profile} sets keys that are not in its defaults: {bad}"
    unknown, unread = _mismatches(name, defaults, own, folder, typed)
    assert unknown == [], f"{name} reads keys that are not in its config.yaml or the core's: {unknown}"
    assert unread == [], f"{name}'s config.yaml has keys its code never reads: {unread}"


def test_the_scan_finds_reads_and_aliases():
    """The scanner itself: aliases, .get, dict() copies, and a read of an undocumented key."""
    code = ("def f(config, ctx):\n"
            "    pt = config['pretrain']\n"
            "    s = dict(config['stats'])\n"
            "    a, b = config['cv'], 3\n"
            "    return pt['arch'], s.get('level'), config['train']['epochs'], a['folds'], config['nope']['x']\n")
    reads = _Reads()
    reads.visit(ast.parse(code))
    paths = {p for p, _ in reads.resolved}
    assert {("pretrain", "arch"), ("stats", "level"), ("train", "epochs"), ("cv", "folds"), ("nope", "x")} <= paths
    assert not _known(("nope", "x"), core_defaults()) and _known(("report", "display_names", "lvef"), core_defaults())


def test_a_typo_and_a_dead_key_are_both_found(tmp_path):
    code = "def f(config):\n    s = config['sec']\n    return s['a'], config['sec']['tpyo']\n"
    (tmp_path / "mod.py").write_text(code)
    own = {"sec": {"a": 1, "never_read_anywhere": 2}}
    unknown, unread = _mismatches("demo", merge(core_defaults(), own, strict=False), own, tmp_path)
    assert unknown == ["sec.tpyo (mod.py:3)"] and unread == ["sec.never_read_anywhere"]


def test_a_dead_key_of_a_typed_section_is_found(tmp_path):
    (tmp_path / "mod.py").write_text("def f(s):\n    return s.step.epochs, s.a\n")
    own = {"sec": {"a": 1, "step": {"epochs": 2, "never_read": 3}}}
    unknown, unread = _mismatches("demo", merge(core_defaults(), own, strict=False), own, tmp_path, typed="sec")
    assert unknown == [] and unread == ["sec.step.never_read"]
