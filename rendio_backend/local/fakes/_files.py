"""Files the fakes create once and every process then shares (gateway workers, tests,
the CLI): written to a private temporary file, then linked into place, so a process
that loses the race reads the winner's file instead of overwriting it."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path


def create_once(path: Path, make: Callable[[], bytes]) -> bytes:
    """The bytes of `path`, made by `make()` (mode 0600) if it does not exist yet."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(make())
        try:
            os.link(temporary, path)  # fails if another process won: its file stays
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return path.read_bytes()
