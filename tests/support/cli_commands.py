"""Resolving `rendio …` command lines written in docs and workflows against the real CLI."""

from __future__ import annotations

from typing import Any

import typer

from rendio_cli.main import app


def resolve(line: str) -> tuple[list[str], str | None]:
    """The subcommands `line` ("rendio db check …") names, and the first word that names
    none (an argument, or a command that does not exist), or None.

    Options (`-x`, `--x`) and placeholders (`[…]`, `NAME`, `A|B`) end the walk. Typer 0.29
    carries its own Click, so groups are told apart by their `get_command`.
    """
    words = line.split()
    assert words[0] == "rendio", line
    command: Any = typer.main.get_command(app)
    ctx = typer.Context(command)
    found: list[str] = []
    for word in words[1:]:
        if word.startswith(("-", "[")) or "|" in word or word.isupper():
            break
        if not hasattr(command, "get_command"):
            return found, word  # the command takes arguments
        sub = command.get_command(ctx, word)
        if sub is None:
            return found, word
        found.append(word)
        command = sub
    return found, None
