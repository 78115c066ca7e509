"""What `cardio new-plugin` writes: an installable plugin that runs end to end on synthetic data, from the templates
beside this module (templates/plugin: package data of cardio-crt-testing, whose contract suite its test imports)."""
from __future__ import annotations

import importlib.util
import keyword
import re
import shutil
import sys
from importlib import resources
from importlib.metadata import PackageNotFoundError, entry_points, version
from pathlib import Path
from string import Template

from cardio.data import CardioError

# template file -> path in the generated package ($pkg is the import name)
FILES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "package/__init__.py.tmpl": "$pkg/__init__.py",
    "package/plugin.py.tmpl": "$pkg/plugin.py",
    "package/cohort.py.tmpl": "$pkg/cohort.py",
    "tests/test_contract.py.tmpl": "tests/test_contract.py",
}


def check_name(name: str) -> None:
    """Refuse a name that is not an identifier, or that clashes with Python or an installed plugin."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise CardioError(f"plugin name {name!r} must be lower-case letters, digits and underscores, "
                          "starting with a letter")
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise CardioError(f"plugin name {name!r} is a Python keyword; choose another name")
    if name == "cardio":
        raise CardioError("plugin name 'cardio' is the framework's own name (its package, command and entry-point "
                          "group); choose another, e.g. cardio_mine")
    if name in sys.stdlib_module_names:
        raise CardioError(f"plugin name {name!r} is the name of a Python standard-library module; choose another")
    dist = f"cardio-{name.replace('_', '-')}"
    taken = {ep.name for ep in entry_points(group="cardio")}
    try:
        version(dist)
        taken.add(name)
    except PackageNotFoundError:
        pass
    if importlib.util.find_spec(f"cardio_{name}") is not None:
        taken.add(name)
    if name in taken:
        raise CardioError(f"plugin name {name!r} is already used by an installed plugin (distribution {dist}, "
                          f"package cardio_{name}); installing the new one would replace it. Choose another name")


def write_plugin(name: str, dest: Path) -> Path:
    """Write plugin `name` into dest/cardio-<name>/ and return that folder; never overwrites."""
    check_name(name)
    values = {"name": name, "pkg": f"cardio_{name}", "dist": f"cardio-{name.replace('_', '-')}",
              "cls": "".join(w.capitalize() for w in name.split("_")) + "Settings"}
    root = Path(dest) / values["dist"]
    if root.exists():
        raise CardioError(f"{root} already exists; choose another --dir or name")
    src = resources.files("cardio_testing").joinpath("templates", "plugin")
    tmp_root = root.with_name(f".{root.name}.tmp")
    try:
        for tmpl, target in FILES.items():
            path = tmp_root / Template(target).substitute(values)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(Template(src.joinpath(tmpl).read_text()).substitute(values))
        tmp_root.rename(root)  # the package appears whole or not at all
    except OSError as e:
        shutil.rmtree(tmp_root, ignore_errors=True)
        raise CardioError(f"cannot write the plugin into {Path(dest)}: {e.strerror}") from None
    return root
