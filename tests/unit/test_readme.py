"""README.md's CLI reference names only commands that exist. Pure: nothing is started."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.cli_commands import resolve

README = Path(__file__).resolve().parents[2] / "README.md"


def _reference_commands() -> list[str]:
    """Each command of the CLI reference table: "`rendio jobs list` / `show`" is three."""
    section = README.read_text(encoding="utf-8").split("## The command line (`rendio`)", 1)[1]
    section = section.split("\n## ", 1)[0]
    commands: list[str] = []
    for row in section.splitlines():
        if not row.startswith("| `rendio "):
            continue
        first_cell = row.split(" | ", 1)[0]
        names = re.findall(r"`([^`]+)`", first_cell)
        commands.append(names[0])
        parent = " ".join(names[0].split()[:-1])
        commands.extend(n if n.startswith("rendio ") else f"{parent} {n}" for n in names[1:])
    return commands


def test_every_command_in_the_readme_reference_exists() -> None:
    commands = _reference_commands()
    assert len(commands) > 20
    missing = []
    for line in commands:
        found, unknown = resolve(line)
        if unknown is not None or not found:
            missing.append(f"{line} (no `{unknown}` after `rendio {' '.join(found)}`)")
    assert not missing, "README lists commands the CLI does not have: " + "; ".join(missing)
