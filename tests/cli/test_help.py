"""Every command's --help ends with an example (the issue's rule for the whole CLI)."""

from __future__ import annotations

from typing import Any

import typer

from rendio_cli.main import app


def _leaves(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    children = getattr(command, "commands", None)
    if not children:
        return [(path, command)]
    return [leaf for name, child in children.items() for leaf in _leaves(child, (*path, name))]


def test_every_command_shows_an_example() -> None:
    leaves = _leaves(typer.main.get_command(app))
    assert len(leaves) > 20
    missing = [" ".join(path) for path, command in leaves
               if "Example" not in (command.help or "")]
    assert missing == [], f"add an Example: paragraph to the docstring of: {missing}"
