"""Every cardio command in a code block of the READMEs and docs works when pasted.

Each command is parsed by the real command line (an option that does not exist, such as `--profile`, or
`--set a=1 b=2`, fails here); `run`, `validate` and `predict` also resolve their config against the plugin's
defaults (unknown keys, moved keys and profiles fail). Commands that are quick and need no network
(`plugins`, `config`, `data list`, `new-cohort`, `new-plugin`, `--help`) run for real. The studies themselves
run in each plugin's end-to-end tests, with small settings.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from cardio import config as config_mod
from cardio import plugins
from cardio.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", *ROOT.glob("plugins/*/README.md"), *ROOT.glob("docs/**/*.md")])
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
    group = main
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
