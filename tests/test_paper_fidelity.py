"""Each plugin README's `## Paper fidelity` table names config keys; every one must be set in the plugin's
`profiles.paper`, so that `--set profile=paper` carries each documented departure as a tested choice."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Paper fidelity"
HEADER = ("key", "paper", "default", "why they differ")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def fidelity_keys(readme: Path) -> list[str] | None:
    """The dotted keys of the README's paper-fidelity table, or None when the README has no such section.

    A section without the table, or a row whose first cell is not a key in backticks, is an error."""
    lines = readme.read_text(encoding="utf-8").splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == SECTION)
    except StopIteration:
        return None
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"#{1,2} ", lines[i])), len(lines))
    body = lines[start + 1:end]
    header = next((i for i, line in enumerate(body) if line.lstrip().startswith("|")
                   and tuple(c.lower() for c in _cells(line)) == HEADER), None)
    if header is None:
        raise AssertionError(f"{readme}: '{SECTION}' has no table headed | {' | '.join(HEADER)} |")
    keys = []
    for line in body[header + 2:]:  # past the header and its |---| rule
        if not line.lstrip().startswith("|"):
            break
        first = _cells(line)[0]
        m = re.fullmatch(r"`([A-Za-z0-9_.]+)`", first)
        if not m:
            raise AssertionError(f"{readme}: paper-fidelity row {line.strip()!r} does not start with a `dotted.key`")
        keys.append(m.group(1))
    if not keys:
        raise AssertionError(f"{readme}: '{SECTION}' table has no rows")
    return keys


def _set_in(mapping: dict, dotted: str) -> bool:
    node = mapping
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def missing_keys(plugin_dir: Path) -> list[str]:
    """Keys the README's table names that the plugin's `profiles.paper` does not set."""
    keys = fidelity_keys(plugin_dir / "README.md") or []
    configs = sorted(plugin_dir.glob("*/config.yaml"))
    assert configs, f"plugin {plugin_dir.name}: no <package>/config.yaml"
    config = yaml.safe_load(configs[0].read_text(encoding="utf-8")) or {}
    paper = (config.get("profiles") or {}).get("paper")
    if not isinstance(paper, dict):
        return keys
    return [k for k in keys if not _set_in(paper, k)]


PLUGINS = sorted(p.parent for p in ROOT.glob("plugins/*/README.md")
                 if SECTION in [line.strip() for line in p.read_text(encoding="utf-8").splitlines()])


@pytest.mark.parametrize("plugin_dir", PLUGINS, ids=[p.name for p in PLUGINS])
def test_fidelity_keys_are_in_the_paper_profile(plugin_dir: Path) -> None:
    missing = missing_keys(plugin_dir)
    assert not missing, f"plugin {plugin_dir.name}: README '{SECTION}' names keys not set in profiles.paper: {missing}"


def test_every_plugin_has_the_table() -> None:
    every = sorted(p.parent for p in ROOT.glob("plugins/*/pyproject.toml"))
    assert every and [p.name for p in every if p not in PLUGINS] == []


def _plugin(tmp_path: Path, readme: str, config: str) -> Path:
    (tmp_path / "pkg").mkdir(parents=True)
    (tmp_path / "README.md").write_text(readme, encoding="utf-8")
    (tmp_path / "pkg" / "config.yaml").write_text(config, encoding="utf-8")
    return tmp_path


TABLE = ("# x\n\n## Paper fidelity\n\n| key | paper | default | why they differ |\n|---|---|---|---|\n"
         "| `a.b` | 1 | 2 | reason |\n| `c` | 3 | 4 | reason |\n\n## Next\n| `not.a.row` | | | |\n")


def test_a_key_missing_from_the_profile_is_named(tmp_path: Path) -> None:
    plugin = _plugin(tmp_path, TABLE, "a: {b: 2}\nc: 4\nprofiles:\n  paper:\n    a: {b: 1}\n")
    assert missing_keys(plugin) == ["c"]
    plugin2 = _plugin(tmp_path / "q", TABLE, "a: {b: 2}\nc: 4\nprofiles:\n  paper:\n    a: {b: 1}\n    c: null\n")
    assert missing_keys(plugin2) == []  # set to null is set


def test_a_malformed_section_fails(tmp_path: Path) -> None:
    plugin = _plugin(tmp_path, "## Paper fidelity\n\n| key | paper |\n|---|---|\n", "profiles: {paper: {}}\n")
    with pytest.raises(AssertionError, match="no table headed"):
        missing_keys(plugin)
    plugin2 = _plugin(tmp_path / "q", TABLE.replace("`a.b`", "a.b"), "profiles: {paper: {}}\n")
    with pytest.raises(AssertionError, match="does not start with"):
        missing_keys(plugin2)
