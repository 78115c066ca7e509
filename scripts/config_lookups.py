"""Count the config look-ups by string in each plugin's package: what typed settings replace.

Usage: python scripts/config_lookups.py [PLUGINS_DIR] [--before REF]   (default: plugins/)
Per plugin, two counts for its own section and two for the core's keys (src/cardio/defaults.yaml's top level:
stats, cv, cohort, train, report, label, ...), which cardio.CoreSettings types:
  section   `config["<plugin>"]` and `config.get("<plugin>")` (NAMESPACE for the name too): the section taken
            from the whole config by its name; for the core, `config["stats"]`, `config.get("label")`, ...;
  in it     string subscripts and `.get("...")` on that section or on anything taken from it: a local name it
            was assigned to, a sub-section, a function parameter that some call in the package hands it (by
            the function's name, followed until nothing changes), `dict(...)` and `x or {}` of them.
The whole config is any expression named `config` or `cfg`. What it cannot follow: a section stored on an object's
attribute (`self.settings`) or in a container. With --before REF (a git commit, e.g. main) it counts the plugins as
they are at REF too and prints before -> after. A last row counts the kernel's own look-ups of its keys.
"""
from __future__ import annotations

import argparse
import ast
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
CORE_KEYS = frozenset(yaml.safe_load((REPO / "src" / "cardio" / "defaults.yaml").read_text()))


def _is_str(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


class _Module:
    def __init__(self, tree: ast.Module, sections: frozenset[str]) -> None:
        self.tree, self.sections = tree, sections
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
        """config["<section>"] (or .get), config being any expression named config or cfg, or `config or {}`."""
        if self.key(node) not in self.sections:
            return False
        root = self.base(node)
        if isinstance(root, ast.BoolOp):
            root = root.values[0]
        return isinstance(root, ast.Name) and root.id in ("config", "cfg")

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


def count(sources: list[str], sections: frozenset[str]) -> tuple[int, int]:
    """(sections taken by name, look-ups in them) over the modules' source texts."""
    modules = [_Module(ast.parse(text), sections) for text in sources]
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


def _sources(root: Path, ref: str | None) -> dict[str, list[str]]:
    """Each plugin's package name -> its modules' source texts, in the working tree or at git commit `ref`."""
    if ref is None:
        return {p.name: [m.read_text() for m in sorted(p.rglob("*.py"))] for p in sorted(root.glob("*/cardio_*"))}
    git = ("git", "-C", str(REPO))
    files = subprocess.run((*git, "ls-tree", "-r", "--name-only", ref, "--", str(root.relative_to(REPO))),
                           check=True, capture_output=True, text=True).stdout.split()
    out: dict[str, list[str]] = {}
    for f in sorted(files):
        parts = Path(f).relative_to(root.relative_to(REPO)).parts
        if f.endswith(".py") and len(parts) > 2 and parts[1].startswith("cardio_"):
            text = subprocess.run((*git, "show", f"{ref}:{f}"), check=True, capture_output=True, text=True).stdout
            out.setdefault(parts[1], []).append(text)
    return out


def _kernel(ref: str | None) -> list[str]:
    """The kernel's modules' source texts (src/cardio), in the working tree or at git commit `ref`."""
    if ref is None:
        return [p.read_text() for p in sorted((REPO / "src" / "cardio").rglob("*.py"))]
    git = ("git", "-C", str(REPO))
    files = subprocess.run((*git, "ls-tree", "-r", "--name-only", ref, "--", "src/cardio"), check=True,
                           capture_output=True, text=True).stdout.split()
    return [subprocess.run((*git, "show", f"{ref}:{f}"), check=True, capture_output=True, text=True).stdout
            for f in sorted(files) if f.endswith(".py")]


def _counts(root: Path, ref: str | None) -> dict[str, tuple[int, int, int, int]]:
    """Per plugin: (own sections, look-ups in them, core keys taken by name, look-ups in them)."""
    out = {}
    for package, sources in _sources(root, ref).items():
        name = package.removeprefix("cardio_")
        out[name] = (*count(sources, frozenset({name, "NAMESPACE"})), *count(sources, CORE_KEYS))
    return out


def main(root: Path, before: str | None) -> None:
    after = _counts(root, None)
    old = _counts(root, before) if before else after
    heads = ("own section", "in it", "core keys", "in them")
    note = f"   (before: {before} -> after)" if before else ""
    print(f"{'plugin':<20}" + "".join(f"{h:>16}" for h in heads) + note)
    rows = [*sorted(after), "total"]
    for name in rows:
        a = after.get(name) or tuple(sum(v[i] for v in after.values()) for i in range(4))
        b = old.get(name, (0, 0, 0, 0)) if name != "total" else tuple(sum(v[i] for v in old.values()) for i in range(4))
        cells = [f"{y}" if not before else f"{x} -> {y}" for x, y in zip(b, a, strict=True)]
        print(f"{name:<20}" + "".join(f"{c:>16}" for c in cells))
    # the kernel's own reads of its keys, for comparison (each module alone: a section handed between modules is
    # not followed)
    k_after = [sum(x) for x in zip(*(count([t], CORE_KEYS) for t in _kernel(None)), strict=True)]
    k_before = [sum(x) for x in zip(*(count([t], CORE_KEYS) for t in _kernel(before)), strict=True)] if before \
        else k_after
    cells = ["", "", *(f"{y}" if not before else f"{x} -> {y}" for x, y in zip(k_before, k_after, strict=True))]
    print(f"{'kernel (src/cardio)':<20}" + "".join(f"{c:>16}" for c in cells))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("plugins", nargs="?", type=Path, default=REPO / "plugins")
    parser.add_argument("--before", help="a git commit to count too, e.g. main: prints before -> after")
    args = parser.parse_args()
    main(args.plugins.resolve(), args.before)
