"""The layering, as a test: benchmarks -> plugins -> core, no import running back up, and plugins only on the
core's public API (names in `cardio.__all__` and the documented submodules), never on another plugin."""
from __future__ import annotations

import ast
from pathlib import Path

import cardio

REPO = Path(__file__).resolve().parents[2]
# The submodules a plugin may import (docs/plugin-api.md); everything else in core/ is the core's own.
PUBLIC_SUBMODULES = {"cohort", "stats", "engine", "aha17", "figures", "explain", "cine", "testing", "weights"}


def _imports(path: Path):
    """(module, names, line) of every import in a file; names is () for `import x`."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, (), node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, tuple(a.name for a in node.names), node.lineno


def _files(folder: Path):
    return sorted(p for p in folder.rglob("*.py") if "templates" not in p.parts)


def test_the_core_never_imports_a_plugin_or_a_benchmark():
    bad = [f"{p.relative_to(REPO)}:{line} imports {mod}" for p in _files(REPO / "core")
           for mod, _, line in _imports(p) if mod.split(".")[0].startswith("cardio_") or mod.startswith("benchmarks")]
    assert not bad, bad


def test_plugins_use_only_the_public_api_and_never_another_plugin():
    public = set(cardio.__all__)
    bad = []
    for package in sorted((REPO / "plugins").glob("*/cardio_*")):
        own = package.name
        for p in _files(package):
            for mod, names, line in _imports(p):
                where = f"{p.relative_to(REPO)}:{line}"
                top, _, rest = mod.partition(".")
                if top.startswith("cardio_") and top != own:
                    bad.append(f"{where} imports another plugin, {mod}")
                elif top == "cardio" and not rest:
                    bad += [f"{where} imports cardio.{n}, which is not in cardio.__all__" for n in names
                            if n not in public and n not in PUBLIC_SUBMODULES]
                elif top == "cardio" and rest.split(".")[0] not in PUBLIC_SUBMODULES:
                    bad.append(f"{where} imports {mod}, not a documented submodule")
    assert not bad, "\n".join(bad)


def test_the_template_teaches_the_same_rules():
    text = "\n".join(p.read_text() for p in (REPO / "core" / "templates" / "plugin").rglob("*.tmpl"))
    imported = [line.split()[1] for line in text.splitlines() if line.startswith("from cardio")]
    assert all(m == "cardio" or m.split(".")[1] in PUBLIC_SUBMODULES for m in imported), imported


def test_no_function_is_longer_than_80_lines():
    """A function a newcomer reads in one screen: none over 80 lines in core/ or in a plugin's package."""
    folders = [REPO / "core", *sorted((REPO / "plugins").glob("*/cardio_*"))]
    long = [f"{p.relative_to(REPO)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for folder in folders for p in _files(folder) for node in ast.walk(ast.parse(p.read_text(), str(p)))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 80]
    assert not long, long


# What runs a study from above (the commands, the dispatch of tasks, the executors, sweeps): the study never
# imports them, so run, validate and predict can all open one.
ABOVE_THE_STUDY = {"cardio.run", "cardio.cli", "cardio.executors", "cardio.sweep", "cardio.permutation"}


def test_the_study_package_never_imports_what_dispatches_it():
    bad = [f"{p.relative_to(REPO)}:{line} imports {mod}" for p in _files(REPO / "core" / "study")
           for mod, names, line in _imports(p)
           if mod in ABOVE_THE_STUDY or (mod == "cardio" and {f"cardio.{n}" for n in names} & ABOVE_THE_STUDY)]
    assert not bad, bad


def _calls(path: Path, name: str):
    """Lines of `path` that call `name` (as name(...) or x.name(...))."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if called == name:
                yield node.lineno


def test_a_run_context_is_made_and_a_device_resolved_in_one_place():
    """cardio.context.new_context makes every RunContext of the core, and run_device is the one resolution of a
    device name (issue 42: four builds and three resolutions had drifted apart)."""
    where = {name: [f"{p.relative_to(REPO)}:{line}" for p in _files(REPO / "core") for line in _calls(p, name)
                    if p != REPO / "core" / "context.py"]
             for name in ("RunContext", "resolve_device", "init_distributed")}
    assert where == {"RunContext": [], "resolve_device": [], "init_distributed": []}, where
