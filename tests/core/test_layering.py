"""The layering, as a test: benchmarks -> plugins -> kernel -> services, no import running back up, plugins only on
the kernel's public API (names in `cardio.__all__` and the documented submodules) and the services, never on another
plugin, and each service (services/<name>/cardio_<name>) on no cardio package at all."""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import cardio

REPO = Path(__file__).resolve().parents[2]
# The submodules a plugin may import (docs/plugin-api.md), with what is inside them; everything else in src/cardio
# is the kernel's own. The services (services/<name>/cardio_<name>, e.g. cardio_stats) are distributions of their
# own: a plugin imports them as it imports any library.
SERVICES = sorted(p.parent for p in (REPO / "services").glob("*/cardio_*/__init__.py"))
SERVICE_NAMES = {p.name for p in SERVICES}
# The services that stand alone (the statistics service): they never import the kernel, any plugin or other service,
# or the kernel's heavy or plugin machinery. The others (cardio_testing...) stand on the kernel, which finds them
# through entry points and never imports them (pyproject's import contracts); they never import a plugin.
STANDALONE = {"cardio_stats"}
SERVICE_NEVER = {"cardio", "torch", "torchvision", "pluggy"}
PUBLIC_SUBMODULES = {"cardio.data.cohort", "cardio.data.files", "cardio.data.file_kind", "cardio.data.same_recording",
                     "cardio.engine"}


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
           for mod, _, line in _imports(p)
           if (mod.split(".")[0].startswith("cardio_") and mod.split(".")[0] not in SERVICE_NAMES)
           or mod.startswith("benchmarks")]
    assert not bad, bad


def test_the_services_exist_and_import_no_cardio_package_no_torch_and_no_pluggy():
    """A standalone service installs alone (its own distribution): not one import of it, at the top or inside a
    function, may reach the kernel, a plugin, another service, torch or pluggy. A service on the kernel may import
    the kernel and the standalone services, never a plugin."""
    assert STANDALONE <= SERVICE_NAMES, SERVICE_NAMES
    bad = [f"{p.relative_to(REPO)}:{line} imports {mod}" for package in SERVICES for p in _files(package)
           for mod, _, line in _imports(p)
           if package.name in STANDALONE and ((top := mod.split(".")[0]) in SERVICE_NEVER
                                              or (top.startswith("cardio_") and top != package.name))
           or package.name not in STANDALONE and mod.split(".")[0].startswith("cardio_")
           and mod.split(".")[0] not in SERVICE_NAMES]
    assert not bad, "\n".join(bad)


def test_plugins_use_only_the_public_api_and_never_another_plugin():
    from cardio import engine  # here, not at the top: it imports torch

    public = set(cardio.__all__)
    bad = []
    for package in sorted((REPO / "plugins").glob("*/cardio_*")):
        own = package.name
        for p in _files(package):
            for mod, names, line in _imports(p):
                where = f"{p.relative_to(REPO)}:{line}"
                top, _, rest = mod.partition(".")
                if top.startswith("cardio_") and top != own and top not in SERVICE_NAMES:
                    bad.append(f"{where} imports another plugin, {mod}")
                elif top == "cardio" and not rest:
                    bad += [f"{where} imports cardio.{n}, which is not in cardio.__all__" for n in names
                            if n not in public and not _public(f"cardio.{n}")]
                elif top == "cardio" and not _public(mod) and not all(_public(f"{mod}.{n}") for n in names or ["?"]):
                    bad.append(f"{where} imports {mod}, not a documented submodule")
                elif mod.startswith("cardio.engine."):  # the engine's modules are its inside; engine.__all__ its API
                    bad.append(f"{where} imports {mod}; import from cardio.engine")
                elif mod == "cardio.engine":
                    bad += [f"{where} imports cardio.engine.{n}, which is not in engine.__all__" for n in names
                            if n not in engine.__all__]
    assert not bad, "\n".join(bad)


def test_the_template_teaches_the_same_rules():
    templates = REPO / "services" / "testing" / "cardio_testing" / "templates" / "plugin"
    text = "\n".join(p.read_text() for p in templates.rglob("*.tmpl"))
    imported = [line.split()[1] for line in text.splitlines() if line.startswith("from cardio")]
    assert all(m == "cardio" or _public(m) or m.split(".")[0] in SERVICE_NAMES for m in imported), imported


def _lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """How many lines a function spans, its decorators aside (a parsed node always has its end)."""
    assert node.end_lineno is not None
    return node.end_lineno - node.lineno + 1


def test_no_function_is_longer_than_80_lines():
    """A function a newcomer reads in one screen: none over 80 lines in core/ or in a plugin's package."""
    folders = [REPO / "src" / "cardio", *sorted((REPO / "plugins").glob("*/cardio_*")), *SERVICES]
    long = [f"{p.relative_to(REPO)}:{node.lineno} {node.name} ({_lines(node)} lines)"
            for folder in folders for p in _files(folder) for node in ast.walk(ast.parse(p.read_text(), str(p)))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _lines(node) > 80]
    assert not long, long


def _lint_imports(cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **({"PYTHONPATH": str(pythonpath)} if pythonpath else {})}
    # lint-imports by this interpreter: the script's own shebang may name another venv's (a copied venv), which would
    # check that venv's cardio, not this one's
    code = "from importlinter.cli import lint_imports_command; lint_imports_command()"
    return subprocess.run([sys.executable, "-c", code, "--no-cache"], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_import_contracts_hold():
    """pyproject's [tool.importlinter] contracts (import-linter, as CI runs them): the core never imports a plugin, no
    plugin another, no new import cycle, and each package of the core never imports those above it."""
    run = _lint_imports(REPO)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout


def _module_graph(root: Path) -> dict[str, set[str]]:
    """The kernel's modules (package __init__ files left out: they re-export what their modules define) and, for
    each, the kernel modules it imports anywhere, type-only imports under TYPE_CHECKING included."""
    names = {".".join(p.relative_to(root.parent).with_suffix("").parts): p for p in _files(root)
             if p.name != "__init__.py"}
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        graph[name] = {target for mod, imported, _ in _imports(path)
                       for target in [mod, *(f"{mod}.{n}" for n in imported)] if target in names} - {name}
    return graph


def test_no_import_circle_not_even_in_annotations():
    """lint-imports leaves type-only imports out (exclude_type_checking_imports), so its acyclic contract cannot see
    a circle that an annotation closes: context.py saves figures through services.py, whose specification of the
    report's performance sections named RunContext. A module of the kernel reaches itself through no chain of
    imports, whichever kind."""
    graph = _module_graph(REPO / "src" / "cardio")
    circles = []
    for start in graph:
        seen: set[str] = set()
        todo: list[tuple[str, tuple[str, ...]]] = [(start, (start,))]
        while todo:
            node, chain = todo.pop()
            for nxt in graph[node]:
                if nxt == start:
                    circles.append(" -> ".join((*chain, start)))
                elif nxt not in seen:
                    seen.add(nxt)
                    todo.append((nxt, (*chain, nxt)))
    assert not circles, "\n".join(sorted(set(circles)))


def test_an_import_running_back_up_breaks_a_contract(tmp_path):
    """The contracts can fail: a copy of the core in which the data imports the CLI breaks two of them."""
    shutil.copytree(REPO / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    files = tmp_path / "src" / "cardio" / "data" / "files.py"
    files.write_text(files.read_text() + "\nfrom cardio.cli import main  # noqa: E402,F401\n")
    run = _lint_imports(tmp_path, tmp_path / "src")
    assert run.returncode != 0, run.stdout[-3000:]
    assert "the data knows nothing of a run or its report BROKEN" in run.stdout, run.stdout[-3000:]
    assert "cardio.data.files -> cardio.cli" in run.stdout, run.stdout[-3000:]


@pytest.mark.parametrize("module, planted", [("losses", "from cardio.engine.optim import make_optimizer"),
                                             ("device", "from cardio.engine.data import ArrayDataset")])
def test_an_engine_concern_importing_another_breaks_the_engine_contract(tmp_path, module, planted):
    """The engine's layers can fail: in a copy, one concern importing another (losses -> optim, beside it) or the
    device importing what stands on it (data) breaks the engine contract, naming the import."""
    shutil.copytree(REPO / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    path = tmp_path / "src" / "cardio" / "engine" / f"{module}.py"
    path.write_text(path.read_text() + f"\n{planted}  # noqa: E402,F401\n")
    run = _lint_imports(tmp_path, tmp_path / "src")
    assert run.returncode != 0, run.stdout[-3000:]
    assert "the engine: the loop, its concerns beside each other, the device BROKEN" in run.stdout, run.stdout[-3000:]
    assert f"cardio.engine.{module} is not allowed to import {planted.split()[1]}" in run.stdout, run.stdout[-3000:]


def test_the_core_keeps_only_its_entry_points_at_the_top_level():
    """A newcomer reads the folder as the architecture: the packages by role, and at the top only the CLI, the
    config, the context, the hook specs, plugin and service loading; the engine is a package of its concerns
    (engine/: the loop, checkpoints, optimizers, losses, data, the device...; pyproject's engine contract)."""
    top = {p.stem for p in (REPO / "src" / "cardio").glob("*.py")}
    assert top == {"__init__", "cli", "config", "context", "hookspecs", "plugins", "services"}, sorted(top)
    assert (REPO / "src" / "cardio" / "engine" / "__init__.py").is_file()


def test_the_old_flat_module_names_still_import_as_the_same_modules():
    import importlib

    for old, new in cardio.MOVED_MODULES.items():
        module = importlib.import_module(f"cardio.{new}")
        assert importlib.import_module(f"cardio.{old}") is module, old
        assert module.__spec__ is not None, old
        assert module.__spec__.name == module.__name__ == f"cardio.{new}", old  # still the module its path made
    from cardio import cache, cohort  # a plugin written against the flat layout
    from cardio.data import cache as new_cache
    from cardio.data import cohort as new_cohort

    assert cohort is new_cohort and cache is new_cache


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
