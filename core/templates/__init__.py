"""What `cardio new-plugin` writes: an installable plugin that runs end to end on synthetic data."""
from __future__ import annotations

import keyword
import re
from importlib import resources
from pathlib import Path
from string import Template

from cardio.data import CardioError

# template file -> path in the generated package ($pkg is the import name)
FILES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "package/__init__.py.tmpl": "$pkg/__init__.py",
    "package/plugin.py.tmpl": "$pkg/plugin.py",
    "package/synthetic.py.tmpl": "$pkg/synthetic.py",
    "package/model.py.tmpl": "$pkg/model.py",
    "package/config.yaml.tmpl": "$pkg/config.yaml",
    "tests/test_plugin.py.tmpl": "tests/test_plugin.py",
}


def write_plugin(name: str, dest: Path) -> Path:
    """Write plugin `name` into dest/cardio-<name>/ and return that folder; never overwrites."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or keyword.iskeyword(name):
        raise CardioError(f"plugin name {name!r} must be lower-case letters, digits and underscores, "
                          "starting with a letter")
    values = {"name": name, "pkg": f"cardio_{name}", "dist": f"cardio-{name.replace('_', '-')}"}
    root = Path(dest) / values["dist"]
    if root.exists():
        raise CardioError(f"{root} already exists; choose another --dir or name")
    src = resources.files("cardio.templates").joinpath("plugin")
    for tmpl, target in FILES.items():
        path = root / Template(target).substitute(values)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(src.joinpath(tmpl).read_text()).substitute(values))
    return root
