"""Count the config look-ups by string in each plugin's package: what typed settings replace.

Usage: python scripts/config_lookups.py [PLUGINS_DIR]   (default: plugins/)
Per plugin, two counts:
  section   `config["<plugin>"]` and `config.get("<plugin>")` (NAMESPACE for the name too): the section taken
            from the whole config by its name;
  in it     string subscripts and `.get("...")` on that section or on anything taken from it: a local name it
            was assigned to, a sub-section, a function parameter that some call in the package hands it (by
            the function's name, followed until nothing changes), `dict(...)` and `x or {}` of them.
What it cannot follow: a section stored on an object's attribute (`self.settings`) or in a container. Reads
of the core's keys (`config["train"]`, `config["cohort"]`) are not counted: they are the core's.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path


def _is_str(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


class _Module:
    def __init__(self, tree: ast.Module, section: str) -> None:
        self.tree, self.section = tree, section
        self.functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]

    def key(self, node: ast.AST) -> str | None:
        """The string a subscript or .get("...") call looks up, or None."""
        if isinstance(node, ast.Subscript):
            return _is_str(node.slice) or ("NAMESPACE" if isinstance(node.slice, ast.Name)
                                           and node.slice.id == "NAMESPACE" else None)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                and node.args:
            return _is_str(node.args[0]) or ("NAMESPACE" if isinstance(node.args[0], ast.Name)
                                             and node.args[0].id == "NAMESPACE" else None)
        return None

    @staticmethod
    def base(node: ast.AST) -> ast.AST:
        return node.value if isinstance(node, ast.Subscript) else node.func.value  # type: ignore[attr-defined]

    def is_section(self, node: ast.AST) -> bool:
        """config["<plugin>"] (or .get), config being any expression named config or `config or {}`."""
        key = self.key(node)
        if key not in (self.section, "NAMESPACE"):
            return False
        root = self.base(node)
        if isinstance(root, ast.BoolOp):
            root = root.values[0]
        return isinstance(root, ast.Name) and root.id == "config"

    def tainted(self, node: ast.AST, names: set[str]) -> bool:
        if isinstance(node, ast.Name):
            return node.id in names
        if isinstance(node, ast.BoolOp):
            return any(self.tainted(v, names) for v in node.values)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and node.args:
            return self.tainted(node.args[0], names)
        if self.key(node) is not None:
            return self.is_section(node) or self.tainted(self.base(node), names)
        return False


def count(package: Path, section: str) -> tuple[int, int]:
    modules = [_Module(ast.parse(p.read_text()), section) for p in sorted(package.rglob("*.py"))]
    params: dict[str, set[str]] = {}  # function name -> its parameters handed the section somewhere
    scopes: dict[int, set[str]] = {}
    changed = True
    while changed:  # names taken from the section, then the parameters calls hand them to, until stable
        changed = False
        for m in modules:
            for fn in m.functions:
                names = scopes.setdefault(id(fn), set())
                before = len(names)
                names |= params.get(fn.name, set())
                for node in ast.walk(fn):
                    if isinstance(node, ast.Assign):
                        pairs = (zip(node.targets[0].elts, node.value.elts)
                                 if isinstance(node.targets[0], ast.Tuple) and isinstance(node.value, ast.Tuple)
                                 else [(node.targets[0], node.value)])
                        names |= {t.id for t, v in pairs if isinstance(t, ast.Name) and m.tainted(v, names)}
                    elif isinstance(node, ast.Call):
                        callee = node.func.id if isinstance(node.func, ast.Name) else (
                            node.func.attr if isinstance(node.func, ast.Attribute) else None)
                        target = next((f for mm in modules for f in mm.functions if f.name == callee), None)
                        if target is None:
                            continue
                        args = [a.arg for a in target.args.args]
                        handed = {args[i] for i, a in enumerate(node.args) if i < len(args) and m.tainted(a, names)}
                        handed |= {k.arg for k in node.keywords if k.arg and m.tainted(k.value, names)}
                        if not handed <= params.get(callee, set()):  # type: ignore[arg-type]
                            params.setdefault(callee, set()).update(handed)  # type: ignore[arg-type]
                            changed = True
                changed |= len(names) != before
    sections = inside = 0
    for m in modules:
        seen: set[int] = set()
        for fn in m.functions:
            for node in ast.walk(fn):
                if id(node) in seen or m.key(node) is None:
                    continue
                seen.add(id(node))
                if m.is_section(node):
                    sections += 1
                elif m.tainted(m.base(node), scopes[id(fn)]):
                    inside += 1
    return sections, inside


def main(root: Path) -> None:
    total = [0, 0]
    print(f"{'plugin':<20} {'section':>8} {'in it':>6}")
    for folder in sorted(root.glob("*/cardio_*")):
        name = folder.name.removeprefix("cardio_")
        s, i = count(folder, name)
        total[0] += s
        total[1] += i
        print(f"{name:<20} {s:>8} {i:>6}")
    print(f"{'total':<20} {total[0]:>8} {total[1]:>6}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "plugins")
