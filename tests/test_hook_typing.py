"""Every hook implementation is typed: each parameter and the return value (a newcomer reads the types, and
mypy checks the bodies against them). The report service's sections and its service hooks, every installed plugin
and the `cardio new-plugin` template."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "services" / "report" / "cardio_report"
FILES = sorted([REPORT / "performance.py", REPORT / "subgroups.py", REPORT / "service.py",
                *ROOT.glob("plugins/*/cardio_*/plugin.py"),
                *ROOT.glob("services/testing/cardio_testing/templates/plugin/**/plugin.py*")])


def _hookimpls(path: Path):
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".tmpl":  # the template's placeholders, as `cardio new-plugin` fills them
        text = text.replace("$pkg", "cardio_example").replace("$name", "example").replace("$cls", "ExampleSettings")
    tree = ast.parse(text)
    for node in ast.walk(tree):
        marks = [d.func if isinstance(d, ast.Call) else d for d in getattr(node, "decorator_list", [])]
        if isinstance(node, ast.FunctionDef) and any(getattr(m, "id", None) == "hookimpl" for m in marks):
            yield node


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_hookimpl_is_typed(path):
    found = list(_hookimpls(path))
    assert found, f"{path} holds no hook implementation"
    untyped = [f"{f.name}({', '.join(a.arg for a in f.args.args if a.annotation is None)})"
               + ("" if f.returns is not None else " -> ?") for f in found
               if f.returns is None or any(a.annotation is None for a in f.args.args)]
    assert untyped == [], f"{path.relative_to(ROOT)}: untyped hook implementations {untyped}"
