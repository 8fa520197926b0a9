"""Output conventions: data on stdout, messages on stderr, errors as one red line."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console

# Messages may carry untrusted text (server errors, paths): no markup interpretation.
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def info(message: str) -> None:
    err.print(message, markup=False, style="dim")


def success(message: str) -> None:
    err.print(message, markup=False, style="green")


def warning(message: str) -> None:
    err.print(message, markup=False, style="yellow")


def error(message: str) -> None:
    err.print(f"error: {message}", markup=False, style="bold red", soft_wrap=True)


def print_json(data: Any) -> None:
    """Plain compact JSON on stdout (no styling), for scripts."""
    print(json.dumps(data, separators=(",", ":"), default=str))
