"""Files the fakes share between processes (gateway workers, tests, the CLI): files
created once (written to a private temporary file, then linked into place, so a process
that loses the race reads the winner's file instead of overwriting it) and their
sqlite stores."""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


@contextmanager
def sqlite_transaction(path: Path) -> Iterator[sqlite3.Connection]:
    """One transaction on the store at `path`: committed, or rolled back on an error.
    Several gateway workers may write at once; sqlite serialises them."""
    db = sqlite3.connect(path, timeout=10)
    try:
        with db:
            yield db
    finally:
        db.close()
