"""A database that looks like a Supabase project's before its migrations run.

Supabase's roles (a `postgres` that is not a superuser, as on hosted), the `auth`,
`storage` and `extensions` schemas, and today's default privileges. Local only (the
stack, scratch databases of `rendio db check`); never part of `supabase/migrations`.
"""

from __future__ import annotations

from pathlib import Path

from .connection import connect

BOOTSTRAP_SQL = Path(__file__).parent / "sql" / "bootstrap.sql"


def bootstrap(superuser_url: str) -> None:
    """Apply the bootstrap SQL (idempotent) as the server's superuser, in one transaction."""
    sql = BOOTSTRAP_SQL.read_text()
    with connect(superuser_url) as conn, conn.transaction():
        conn.execute(sql.encode())
