"""Every cardio command in a code block of the READMEs and docs works when pasted.

Each command is parsed by the real command line (an option that does not exist, such as `--profile`, or
`--set a=1 b=2`, fails here); `run`, `validate` and `predict` also resolve their config against the plugin's
defaults (unknown keys, moved keys and profiles fail). Commands that are quick and need no network
(`plugins`, `config`, `data list`, `new-cohort`, `new-plugin`, `--help`) run for real. The studies themselves
run in each plugin's end-to-end tests, with small settings.
"""
from __future__ import annotations

import functools
import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import cardio
from cardio import config as config_mod
from cardio import plugins
from cardio.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", *ROOT.glob("plugins/*/README.md"), *ROOT.glob("services/*/README.md"),
               *ROOT.glob("docs/**/*.md")])
COMMAND = re.compile(r"^(?:\$\s+)?(?:\./scripts/setup\.sh\s*&&\s*)?(?:\.venv/bin/)?cardio(\s.*)?$")
# plugins the docs first write with `cardio new-plugin` (tests/core/test_scaffold.py runs them)
SCAFFOLDED = {"my_modality"}
RUNS_FOR_REAL = {"plugins", "config", "new-cohort", "new-plugin", "list"}


def code_lines(text: str):
    """(line number, line) of every line in a fenced or indented code block."""
    fenced = False
    previous = ""
    indented = False
    held, start = "", 0  # a command continued over lines with a trailing backslash, joined
    for n, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        indented = line.startswith("    ") and (indented or not previous.strip())
        previous = line
        if not (fenced or indented):
            continue
        piece = line.strip()
        if piece.endswith("\\"):
            held, start = held + piece[:-1] + " ", start or n
            continue
        yield (start or n), held + piece
        held, start = "", 0


def commands() -> list:
    found = []
    for doc in DOCS:
        for n, line in code_lines(doc.read_text(encoding="utf-8")):
            match = COMMAND.match(line)
            if match:
                words = shlex.split(match.group(1) or "", comments=True)
                found.append(pytest.param(words, id=f"{doc.relative_to(ROOT)}:{n}"))
    return found


def test_the_docs_hold_commands():
    assert len(commands()) >= 20  # the extractor finds the READMEs' command blocks


def _placeholders(words: list[str], tmp: Path) -> list[str]:
    """A folder the command may read or write, in place of the docs' DIR, RUN and example paths."""
    out = []
    for i, w in enumerate(words):
        before = words[i - 1] if i else ""
        if before in ("--model", "--resume", "--permutation-of"):
            (tmp / "run").mkdir(exist_ok=True)
            w = str(tmp / "run")
        elif i == 1 and words[0] in ("report", "status"):  # an existing run folder
            (tmp / "run").mkdir(exist_ok=True)
            w = str(tmp / "run")
        elif before in ("--dir", "--cohort", "--out") or (i and words[0] == "new-cohort" and
                                                          not w.startswith("-") and not before.startswith("-")):
            w = str(tmp / "out" / Path(w.strip("<>").replace(" ", "_")).name)
        out.append(w)
    return out


def _parse(words: list[str]) -> click.Context:
    """click's own parse of the words, down to the subcommand; raises on an unknown option or argument."""
    ctx = main.make_context("cardio", list(words))
    group: click.Command = main
    while isinstance(group, click.Group):
        # click keeps a group's subcommand and its words apart (protected) until it invokes it
        args = [*getattr(ctx, "_protected_args", []), *ctx.args]
        if not args:
            break
        cmd = group.get_command(ctx, args[0])
        assert cmd is not None, f"no command {args[0]!r}"
        ctx = cmd.make_context(args[0], args[1:], parent=ctx)
        group = cmd
    return ctx


def _resolve(params: dict) -> None:
    loaded = plugins.get_plugin_manager()
    name = params.get("plugin")
    if name is None or name in SCAFFOLDED:
        return
    pm = plugins.select(loaded, name)
    info = plugins.info(pm, name)
    config_mod.resolve(info.default_config, params.get("config_file"), tuple(params.get("sets") or ()),
                       info.moved_keys)


@pytest.mark.parametrize("words", commands())
def test_a_pasted_command_works(words, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    words = _placeholders(words, tmp_path)
    if not words or words[0] in ("--help", "--version"):
        result = CliRunner().invoke(main, words)
        assert result.exit_code == 0, result.output
        return
    ctx = _parse(words)
    name = ctx.command.name
    if name in RUNS_FOR_REAL:
        result = CliRunner().invoke(main, words)
        assert result.exit_code == 0, f"cardio {shlex.join(words)}\n{result.output}"
    elif name in ("run", "validate", "new-cohort"):
        _resolve(ctx.params)


# ---- config keys and install lines named in prose as well as in code blocks -----------------------------------

# `a.b.c`, `a.b=value` or `a.b: value` in backticks: a config key when `a` is a core section or a plugin's namespace
KEY_SPAN = re.compile(r"`([a-z][a-z0-9_]*(?:\.(?:[a-z0-9_]+|<key>))+)(?:[=:][^`]*)?`")
FILE_SUFFIXES = (".md", ".html", ".json", ".csv", ".png", ".py", ".yaml", ".log", ".pt", ".npz", ".pkl", ".txt")
# Python names that share a first word with a config section (the cohort module of a plugin, its functions)
PYTHON_NAMES = {"cohort.mask", "cohort.echonet_schema", "cohort.write_multimodal_cohort", "cohort.drive_to_late_offset",
                "cohort.planted_effects", "cohort.py"}


@functools.cache
def _installed_modalities() -> dict:
    loaded = plugins.get_plugin_manager()
    return {r["name"]: plugins.info(plugins.select(loaded, r["name"]), r["name"]) for r in plugins.listing(loaded)
            if r["modality"] and not r["error"]}


@functools.cache
def _defaults(plugin: str) -> dict:
    return config_mod.resolve(_installed_modalities()[plugin].default_config)


def _lookup(cfg: dict, key: str):
    node = cfg
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(key)
        node = node[part]
    return node


@functools.cache
def _refusal(plugin: str, key: str) -> str | None:
    """None when `cardio config --plugin P --set KEY=<its default>` accepts the key; else the command's error."""
    import json

    from cardio.data import CardioError

    info = _installed_modalities()[plugin]
    defaults = _defaults(plugin)
    try:
        value = _lookup(defaults, key)
    except KeyError:
        value = None
    try:
        config_mod.resolve(info.default_config, None, (f"{key}={json.dumps(value)}",), info.moved_keys)
    except CardioError as e:
        return str(e)
    return None


def named_keys() -> list:
    """(doc:line, key, the line) of every config key the READMEs and docs name in backticks."""
    infos = _installed_modalities()
    sections = set(config_mod.core_defaults()) | set(infos) | {"data"}  # data.*: the keys of earlier versions
    found = []
    for doc in DOCS:
        for n, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            for key in KEY_SPAN.findall(line):
                key = key.removesuffix(".<key>")
                if key.split(".")[0] in sections and key not in PYTHON_NAMES and not key.endswith(FILE_SUFFIXES):
                    found.append((f"{doc.relative_to(ROOT)}:{n}", key, line))
    return found


def test_every_config_key_the_docs_name_is_accepted():
    """A key named in the READMEs or docs is one `cardio config --set` accepts (for its plugin, or for every plugin
    when it is a core key); a key that moved may be named only beside its new place (a table of moved keys)."""
    infos = _installed_modalities()
    if not infos:
        pytest.skip("no modality plugin installed")
    found = named_keys()
    assert len(found) > 100  # the extractor finds the docs' keys
    refused = []
    for where, key, line in found:
        first = key.split(".")[0]
        candidates = [first] if first in infos else [
            p for p in infos if f"plugins/{p}/" in where or f"data/{p}.md" in where] or list(infos)
        errors = [_refusal(p, key) for p in candidates]
        if all(errors):
            moved = [infos[p].moved_keys.get(key) for p in candidates if infos[p].moved_keys.get(key)]
            if moved and all(f"`{new}" in line or f"`{new.rsplit('.', 1)[0]}.<key>`" in line for new in moved):
                continue  # the docs name an old key with its new place
            refused.append(f"{where}: `{key}`: {errors[0]}")
    assert not refused, "\n".join(refused)


PIP = re.compile(r"(\S*)\bpip3? install\b")


def test_every_install_line_names_the_venvs_pip():
    """`pip install` in a README or doc always names the environment's own pip (`.venv/bin/python -m pip` or
    `<venv>/bin/pip`): a bare `pip` outside the venv installs elsewhere, and `pip install cardio...` from the index
    is an unrelated package of that name."""
    bare = []
    for doc in DOCS:
        for n, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            for match in PIP.finditer(line):
                before = line[:match.start()].rstrip()
                if match.group(1).endswith("/bin/") or re.search(r"\S*/bin/python3? -m$", before):
                    continue
                bare.append(f"{doc.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not bare, "\n".join(bare)


def test_the_cli_names_its_own_pip():
    """What the command line tells a user to install names the interpreter cardio runs in."""
    import sys

    hint = cardio.pip_install("-e plugins/x")
    assert hint.endswith(" -m pip install -e plugins/x") and Path(hint.split(" -m pip")[0]).resolve() == \
        Path(sys.executable).resolve()
