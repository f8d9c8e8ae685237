"""`--help` of every command, as a newcomer reads it: placeholders name what to give (`ID`,
`N`, `TIME`), never typer's Python types (`<list[str]>`, `<str>`, `<bool>`); a default is
stated once; the command list is not cut off mid-sentence."""

from __future__ import annotations

import re
from typing import Any

import typer
from typer.testing import CliRunner

from rag_indexer_service.cli import app

PYTHON_TYPE = re.compile(r"<\s*(?:str|int|float|bool|list|path|uuid|datetime)\b[^>]*>", re.I)


def command_paths(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command's words (`()`: the app itself), through the groups' `commands`."""
    paths = [prefix]
    for name, sub in getattr(command, "commands", {}).items():
        paths += command_paths(sub, (*prefix, name))
    return paths


def help_of(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=80)
    assert result.exit_code == 0, (path, result.output)
    return result.output


def test_every_command_names_its_values_in_words_not_python_types() -> None:
    paths = command_paths(typer.main.get_command(app))
    assert len(paths) >= 14  # the app, 8 commands, 3 groups and their 3 commands

    for path in paths:
        text = help_of(path)
        assert not PYTHON_TYPE.search(text), (path, text)
        cut = text.replace("[ID]...", "").replace("[ARGS]...", "")
        assert "..." not in cut, (path, text)  # no line cut off mid-sentence
        for line in text.splitlines():
            assert not ("(default:" in line and "[default:" in line), (path, line)


def test_the_placeholders_a_newcomer_types() -> None:
    index = help_of(("index",))
    assert "rag-indexer index [OPTIONS] [ID]..." in index
    assert re.search(r"^\s+ID\s+Cabinet ids to index", index, re.M)
    assert "--tick-at TIME" in help_of(("scheduler",))
    assert "--cabinet ID" in help_of(("sources", "check"))
    worker = help_of(("worker",))
    assert "(default: CPU count)" in worker and "[default: 2;" in worker  # --threads' own
