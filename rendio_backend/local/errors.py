"""Errors of the local stack: each says what went wrong and what to do about it."""

from __future__ import annotations


class StackError(Exception):
    """The local stack could not do what was asked; the message tells the user what to do."""


class PortBusy(StackError):
    def __init__(self, piece: str, port: int, env_var: str) -> None:
        super().__init__(
            f"port {port} needed by {piece} is in use by another process: "
            f"stop that process or choose another port with {env_var}"
        )
        self.port = port


class ToolMissing(StackError):
    """A program the stack needs is not installed."""


class PieceFailed(StackError):
    """A process of the stack did not start; the message carries the end of its log."""
