"""Errors of the database tools; `str()` is a message for a person, one line.

    DbToolsError
     ├── DatabaseUnavailable     cannot connect (the URL is shown with its password masked)
     └── MigrationError
          ├── MigrationFileError      unreadable file, duplicate version, bad migration name
          ├── MigrationOrderError     history and local files disagree (CLI's two refusals)
          └── MigrationFailed         a statement failed: file, statement number, message
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .sqlsplit import mark_position


class DbToolsError(Exception):
    """Root of the database tools' errors."""


class DatabaseUnavailable(DbToolsError):
    """The database could not be reached (or refused the login)."""

    def __init__(self, url: str, reason: str) -> None:
        from .connection import redact_url

        self.url = redact_url(url)
        self.reason = reason
        super().__init__(f"cannot connect to PostgreSQL at {self.url}: {reason}")


class MigrationError(DbToolsError):
    """Root of the migration runner's errors."""

class MigrationFileError(MigrationError):
    """A migration file is unusable (unreadable, not UTF-8, duplicate version, bad name)."""


class MigrationOrderError(MigrationError):
    """The history table and the local files disagree; the Supabase CLI refuses these too."""

    def __init__(self, message: str, versions: Sequence[str]) -> None:
        self.versions = tuple(versions)
        super().__init__(f"{message} {', '.join(self.versions)}")


class MigrationFailed(MigrationError):
    """A statement of a migration failed; nothing of that file was applied.

    `statement_index` counts from 0, as the CLI's "At statement: N" does; it equals
    `len(statements)` when the history insert itself failed.
    """

    def __init__(
        self,
        *,
        path: Path,
        statement_index: int,
        statement: str,
        pg_message: str,
        sqlstate: str | None,
        detail: str | None = None,
        position: int | None = None,
    ) -> None:
        self.path = path
        self.statement_index = statement_index
        self.statement = statement
        self.pg_message = pg_message
        self.sqlstate = sqlstate
        self.detail = detail
        self.position = position
        code = f" (SQLSTATE {sqlstate})" if sqlstate else ""
        super().__init__(
            f"migration {path.name} failed at statement {statement_index}: {pg_message}{code}"
        )

    def report(self) -> str:
        """The CLI's multi-line form: message, detail, `At statement: N`, marked statement."""
        lines = [str(self)]
        if self.detail:
            lines.append(self.detail)
        lines.append(f"At statement: {self.statement_index}")
        lines.append(mark_position(self.statement, self.position))
        return "\n".join(lines)
