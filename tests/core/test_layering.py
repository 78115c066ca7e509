"""The layering, as a test: benchmarks -> plugins -> core, no import running back up, and plugins only on the
core's public API (names in `cardio.__all__` and the documented submodules), never on another plugin."""
from __future__ import annotations

import ast
from pathlib import Path

import cardio

REPO = Path(__file__).resolve().parents[2]
# The submodules a plugin may import (docs/plugin-api.md), with what is inside them; everything else in core/ is
# the core's own.
PUBLIC_SUBMODULES = {"cardio.data.cohort", "cardio.data.response", "cardio.data.files", "cardio.data.file_kind",
                     "cardio.data.same_recording", "cardio.data.same_image", "cardio.data.cine", "cardio.data.aha17",
                     "cardio.data.weights",
                     "cardio.report.figures", "cardio.report.explain", "cardio.stats", "cardio.engine",
                     "cardio.testing"}


def _public(module: str) -> bool:
    return any(module == m or module.startswith(f"{m}.") for m in PUBLIC_SUBMODULES)


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
    bad = [f"{p.relative_to(REPO)}:{line} imports {mod}" for p in _files(REPO / "src" / "cardio")
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
                            if n not in public and not _public(f"cardio.{n}")]
                elif top == "cardio" and not _public(mod) and not all(_public(f"{mod}.{n}") for n in names or ["?"]):
                    bad.append(f"{where} imports {mod}, not a documented submodule")
    assert not bad, "\n".join(bad)


def test_the_template_teaches_the_same_rules():
    text = "\n".join(p.read_text() for p in (REPO / "src" / "cardio" / "templates" / "plugin").rglob("*.tmpl"))
    imported = [line.split()[1] for line in text.splitlines() if line.startswith("from cardio")]
    assert all(m == "cardio" or _public(m) for m in imported), imported


def test_no_function_is_longer_than_80_lines():
    """A function a newcomer reads in one screen: none over 80 lines in core/ or in a plugin's package."""
    folders = [REPO / "src" / "cardio", *sorted((REPO / "plugins").glob("*/cardio_*"))]
    long = [f"{p.relative_to(REPO)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for folder in folders for p in _files(folder) for node in ast.walk(ast.parse(p.read_text(), str(p)))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 80]
    assert not long, long


# core/ by role, as an import graph: each package never imports those above it. The study never imports what
# dispatches it (so run, validate and predict can all open one); the data and the report know nothing of a run;
# stats knows only the data's types and the figure helper.
NEVER_IMPORTS = {
    "data": {"study", "execution", "fusion", "cli", "testing", "report.outputs", "report.performance",
             "report.summary", "report.tripod", "report.subgroups", "report.explain"},
    "report": {"study", "execution", "fusion", "cli", "testing"},
    "stats": {"study", "execution", "fusion", "cli", "testing", "plugins", "engine", "context", "report.outputs",
              "report.performance", "report.summary", "report.tripod", "report.subgroups", "report.explain"},
    "study": {"execution", "fusion", "cli", "testing"},
    "execution": {"fusion", "cli", "testing"},
    "fusion": {"cli", "testing"},
}


def _cardio_modules(path: Path):
    for mod, names, line in _imports(path):
        if mod == "cardio":
            yield from ((f"cardio.{n}", line) for n in names)
        elif mod.startswith("cardio."):
            yield from ((f"{mod}.{n}", line) for n in names) if names else [(mod, line)]


def test_each_package_of_the_core_never_imports_those_above_it():
    bad = []
    for package, above in NEVER_IMPORTS.items():
        for p in _files(REPO / "src" / "cardio" / package):
            for mod, line in _cardio_modules(p):
                name = mod.removeprefix("cardio.")
                if any(name == a or name.startswith(f"{a}.") for a in above):
                    bad.append(f"{p.relative_to(REPO)}:{line} imports {mod}")
    assert not bad, "\n".join(bad)


def test_the_core_keeps_only_its_entry_points_at_the_top_level():
    """A newcomer reads the folder as the architecture: the packages by role, and at the top only the CLI, the
    config, the context, the hook specs, plugin loading, the engine and the testing API."""
    top = {p.stem for p in (REPO / "src" / "cardio").glob("*.py")}
    assert top == {"__init__", "cli", "config", "context", "hookspecs", "plugins", "engine", "testing",
                   "plugin_contract"}, sorted(top)
    assert set(NEVER_IMPORTS) <= {p.name for p in (REPO / "src" / "cardio").iterdir() if (p / "__init__.py").exists()}


def test_the_old_flat_module_names_still_import_as_the_same_modules():
    import importlib

    for old, new in cardio.MOVED_MODULES.items():
        module = importlib.import_module(f"cardio.{new}")
        assert importlib.import_module(f"cardio.{old}") is module, old
        assert module.__spec__.name == module.__name__ == f"cardio.{new}", old  # still the module its path made
    from cardio import aha17, figures  # a plugin written against the flat layout
    from cardio.data import aha17 as new_aha17
    from cardio.report import figures as new_figures

    assert aha17 is new_aha17 and figures is new_figures


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
    where = {name: [f"{p.relative_to(REPO)}:{line}" for p in _files(REPO / "src" / "cardio") for line in _calls(p, name)
                    if p != REPO / "src" / "cardio" / "context.py"]
             for name in ("RunContext", "resolve_device", "init_distributed")}
    assert where == {"RunContext": [], "resolve_device": [], "init_distributed": []}, where
