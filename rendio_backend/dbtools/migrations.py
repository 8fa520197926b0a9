"""The migration runner: `supabase/migrations/<version>_<name>.sql`, applied like the Supabase CLI.

Everything the Supabase CLI (`supabase migration up`, `supabase db push`) observes is kept
identical, so the two tools can take turns on one database:

- files match `^([0-9]+)_(.*)\\.sql$` and are applied in file-name order;
- the history lives in `supabase_migrations.schema_migrations(version, statements, name)`,
  created the way the CLI creates it (`set lock_timeout = '4s'` first);
- each file is split into statements by `split_statements` (the CLI's splitter rules,
  `pkg/parser`), `reset all` runs before it, and its statements plus its history row go to
  the server as ONE pipelined batch in one implicit transaction — on any error nothing of
  the file remains;
- a database version with no local file, or a pending file older than the newest applied
  version, is refused (unless `include_all`).

After applying, `NOTIFY pgrst, 'reload schema'` tells PostgREST to reload its schema cache.
One addition to the CLI: a session advisory lock serialises concurrent runs of this runner.

Errors are `MigrationError`s (and `DatabaseUnavailable`), see `errors.py`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import psycopg

from .connection import connect, one_line
from .errors import MigrationFailed, MigrationFileError, MigrationOrderError
from .sqlsplit import split_statements

__all__ = [
    "AppliedMigration",
    "Migration",
    "MigrationState",
    "StatusEntry",
    "find_pending",
    "list_local",
    "migrate",
    "new_migration",
    "read_history",
    "seed",
    "status",
]

MIGRATION_FILE_RE = re.compile(r"^([0-9]+)_(.*)\.sql$")
MIGRATION_NAME_RE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")

# The CLI's history statements (pkg/migration/history.go), verbatim so both tools agree.
SET_LOCK_TIMEOUT = "SET lock_timeout = '4s'"
CREATE_VERSION_SCHEMA = "CREATE SCHEMA IF NOT EXISTS supabase_migrations"
CREATE_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS supabase_migrations.schema_migrations "
    "(version text NOT NULL PRIMARY KEY)"
)
ADD_STATEMENTS_COLUMN = (
    "ALTER TABLE supabase_migrations.schema_migrations "
    "ADD COLUMN IF NOT EXISTS statements text[]"
)
ADD_NAME_COLUMN = (
    "ALTER TABLE supabase_migrations.schema_migrations ADD COLUMN IF NOT EXISTS name text"
)
INSERT_MIGRATION_VERSION = (
    "INSERT INTO supabase_migrations.schema_migrations(version, name, statements) "
    "VALUES(%s, %s, %s)"
)
CREATE_SEED_TABLE = (
    "CREATE TABLE IF NOT EXISTS supabase_migrations.seed_files "
    "(path text NOT NULL PRIMARY KEY, hash text NOT NULL)"
)
UPSERT_SEED_FILE = (
    "INSERT INTO supabase_migrations.seed_files(path, hash) VALUES(%s, %s) "
    "ON CONFLICT (path) DO UPDATE SET hash = EXCLUDED.hash"
)
RELOAD_POSTGREST = "NOTIFY pgrst, 'reload schema'"
# pg_advisory_lock key held while migrating ("rendio_migrate" as a number).
MIGRATION_LOCK_KEY = int.from_bytes(b"rendmigr", "big") >> 1


# --- files --------------------------------------------------------------------------


@dataclass(frozen=True)
class Migration:
    """One local migration file."""

    version: str
    name: str
    path: Path
    statements: tuple[str, ...] = field(repr=False)

    @property
    def filename(self) -> str:
        return self.path.name

    @classmethod
    def from_file(cls, path: Path) -> Migration:
        """Read and split one `<version>_<name>.sql` file."""
        match = MIGRATION_FILE_RE.match(path.name)
        if match is None:
            raise MigrationFileError(f"{path.name}: name must match <version>_<name>.sql")
        try:
            text = path.read_bytes().decode("utf-8")
        except OSError as exc:
            raise MigrationFileError(f"cannot read {path}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise MigrationFileError(f"{path.name} is not UTF-8: {exc.reason}") from exc
        return cls(match[1], match[2], path, tuple(split_statements(text)))


def list_local(
    migrations_dir: Path, *, warn: Callable[[str], None] | None = None
) -> list[Migration]:
    """The migrations in `migrations_dir`, in file-name order (the CLI's order).

    Files that do not match the naming pattern are skipped (reported through `warn`);
    a missing directory means no migrations; two files with one version are an error.
    """
    if not migrations_dir.is_dir():
        return []
    found: list[Migration] = []
    seen: dict[str, str] = {}
    for path in sorted(migrations_dir.iterdir(), key=lambda p: p.name):
        if path.is_dir():
            continue
        if MIGRATION_FILE_RE.match(path.name) is None:
            if warn is not None:
                warn(f"Skipping migration {path.name}... "
                     '(file name must match pattern "<timestamp>_name.sql")')
            continue
        migration = Migration.from_file(path)
        if migration.version in seen:
            raise MigrationFileError(
                f"{path.name} and {seen[migration.version]} share version {migration.version}"
            )
        seen[migration.version] = path.name
        found.append(migration)
    return found


def new_migration(name: str, migrations_dir: Path, *, now: datetime | None = None,
                  content: str = "") -> Path:
    """Create `<migrations_dir>/<YYYYMMDDHHMMSS>_<name>.sql` (UTC) and return its path."""
    if MIGRATION_NAME_RE.match(name) is None:
        raise MigrationFileError(
            f"invalid migration name {name!r}: use lower snake case, e.g. add_video_jobs"
        )
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%d%H%M%S")
    migrations_dir.mkdir(parents=True, exist_ok=True)
    for existing in migrations_dir.glob(f"{stamp}_*.sql"):
        raise MigrationFileError(
            f"{existing.name} already uses version {stamp}; wait a second and retry"
        )
    path = migrations_dir / f"{stamp}_{name}.sql"
    path.write_text(content, encoding="utf-8")
    return path


# --- history ------------------------------------------------------------------------


@dataclass(frozen=True)
class AppliedMigration:
    """A row of `supabase_migrations.schema_migrations`."""

    version: str
    name: str
    statements: tuple[str, ...] | None


def read_history(conn: psycopg.Connection[tuple[object, ...]]) -> list[AppliedMigration]:
    """The history rows in version order; none when the table does not exist yet."""
    exists = conn.execute(
        "select to_regclass('supabase_migrations.schema_migrations') is not null"
    ).fetchone()
    if not exists or not exists[0]:
        return []
    columns = {
        str(r[0]) for r in conn.execute(
            "select attname from pg_attribute where attrelid = "
            "'supabase_migrations.schema_migrations'::regclass and attnum > 0 "
            "and not attisdropped"
        )
    }
    # Histories written by old CLI versions have only `version`.
    name = "coalesce(name, '')" if "name" in columns else "''"
    statements = "statements" if "statements" in columns else "null::text[]"
    rows = conn.execute(
        f"select version, {name}, {statements} "  # fixed expressions, no user input
        "from supabase_migrations.schema_migrations"
    ).fetchall()
    history = [
        AppliedMigration(
            str(version), str(mname),
            None if stats is None else tuple(str(s) for s in stats),  # type: ignore[attr-defined]
        )
        for version, mname, stats in rows
    ]
    return sorted(history, key=lambda m: m.version)


def find_pending(
    local: Sequence[Migration], remote_versions: Sequence[str], *, include_all: bool = False
) -> list[Migration]:
    """The local migrations still to apply, refusing what the Supabase CLI refuses.

    Raises `MigrationOrderError` when the database holds versions that have no local file,
    or when an unapplied local file is older than the newest applied version (unless
    `include_all`, which applies those first, as `supabase migration up --include-all`).
    """
    remote = sorted(remote_versions)
    unapplied: list[Migration] = []
    missing: list[str] = []
    i = j = 0
    while i < len(remote) and j < len(local):
        if remote[i] == local[j].version:
            i += 1
            j += 1
        elif remote[i] < local[j].version:
            missing.append(remote[i])
            i += 1
        else:
            unapplied.append(local[j])
            j += 1
    if j == len(local):
        missing.extend(remote[i:])
    if missing:
        raise MigrationOrderError(
            "Remote migration versions not found in local migrations directory:", missing
        )
    if unapplied and not include_all:
        raise MigrationOrderError(
            "Found local migration files to be inserted before the last migration on "
            "remote database (rerun with --include-all to apply them):",
            [m.filename for m in unapplied],
        )
    return [*unapplied, *local[j:]]


def _create_history_table(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    # One implicit transaction, like the CLI's batch; `reset all` later drops the timeout.
    with conn.pipeline():
        for stmt in (SET_LOCK_TIMEOUT, CREATE_VERSION_SCHEMA, CREATE_VERSION_TABLE,
                     ADD_STATEMENTS_COLUMN, ADD_NAME_COLUMN):
            conn.execute(stmt)


def _exec_batch(
    conn: psycopg.Connection[tuple[object, ...]],
    path: Path,
    statements: Sequence[str],
    tail: tuple[str, Sequence[object]] | None,
) -> None:
    """Run `statements` (and `tail`) as one pipelined batch in one implicit transaction.

    This is what pgconn's ExecBatch does for the CLI: the extended protocol (one command
    per statement), a single Sync at the end, so any error rolls back the whole batch.
    """
    cursors: list[psycopg.Cursor[tuple[object, ...]]] = []
    try:
        with conn.pipeline():
            for stmt in statements:
                cur = conn.cursor()
                cur.execute(stmt)  # runtime-read SQL, no params: `%` stays literal
                cursors.append(cur)
            if tail is not None:
                cur = conn.cursor()
                cur.execute(tail[0], tail[1])
                cursors.append(cur)
    except psycopg.Error as exc:
        # Results arrive in order; the first statement without one is the one that failed.
        index = next((k for k, c in enumerate(cursors) if c.pgresult is None), len(cursors))
        stmt = statements[index] if index < len(statements) else (tail[0] if tail else "")
        diag = exc.diag
        position = int(diag.statement_position) if diag.statement_position else None
        raise MigrationFailed(
            path=path,
            statement_index=index,
            statement=stmt,
            pg_message=diag.message_primary or one_line(str(exc)),
            sqlstate=exc.sqlstate,
            detail=diag.message_detail,
            position=position,
        ) from exc


def migrate(
    db_url: str,
    migrations_dir: Path,
    *,
    include_all: bool = False,
    on_apply: Callable[[Migration], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> list[Migration]:
    """Apply the pending migrations of `migrations_dir` to `db_url`; return those applied.

    Runs as whichever role `db_url` logs in as (locally and on hosted Supabase: `postgres`,
    not a superuser). Each file and its history row commit together or not at all;
    `on_apply` is called before each file. Raises a `MigrationError` subclass.
    """
    local = list_local(migrations_dir, warn=warn)
    with connect(db_url) as conn:
        # Serialise concurrent runners (two CI jobs, a test and `rendio dev up`); the lock
        # goes with the session. The history is read only once we hold it.
        conn.execute("select pg_catalog.pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        history = read_history(conn)
        pending = find_pending(local, [m.version for m in history], include_all=include_all)
        if not pending:
            return []
        _create_history_table(conn)
        applied: list[Migration] = []
        for migration in pending:
            if on_apply is not None:
                on_apply(migration)
            # A previous file may have changed session settings (pg_dump's search_path).
            conn.execute("RESET ALL")
            _exec_batch(
                conn, migration.path, migration.statements,
                (INSERT_MIGRATION_VERSION,
                 (migration.version, migration.name, list(migration.statements))),
            )
            applied.append(migration)
        conn.execute(RELOAD_POSTGREST)
        return applied


def seed(db_url: str, seed_file: Path, *, record_as: str | None = None) -> bool:
    """Run a seed file like `supabase db reset`; return False if it was already seeded.

    The file's sha256 is recorded in `supabase_migrations.seed_files` under `record_as`
    (default: the path as given, e.g. `supabase/seed.sql`, as the CLI records it); an
    unchanged file is not run again.
    """
    data = seed_file.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    key = record_as or str(seed_file)
    try:
        statements = split_statements(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise MigrationFileError(f"{seed_file} is not UTF-8: {exc.reason}") from exc
    with connect(db_url) as conn:
        with conn.pipeline():
            for stmt in (SET_LOCK_TIMEOUT, CREATE_VERSION_SCHEMA, CREATE_SEED_TABLE):
                conn.execute(stmt)
        row = conn.execute(
            "select hash from supabase_migrations.seed_files where path = %s", (key,)
        ).fetchone()
        if row is not None and row[0] == digest:
            return False
        conn.execute("RESET ALL")
        _exec_batch(conn, seed_file, statements, (UPSERT_SEED_FILE, (key, digest)))
        return True


# --- status -------------------------------------------------------------------------

MigrationState = Literal["applied", "pending", "changed", "missing_local"]


@dataclass(frozen=True)
class StatusEntry:
    """Where one migration version stands.

    `changed`: applied, but the file's statements differ from the recorded ones (an applied
    migration was edited). `missing_local`: in the history but no local file.
    """

    version: str
    name: str
    state: MigrationState
    filename: str | None

    def to_dict(self) -> dict[str, str | None]:
        return {"version": self.version, "name": self.name, "state": self.state,
                "file": self.filename}


def status(db_url: str, migrations_dir: Path,
           *, warn: Callable[[str], None] | None = None) -> list[StatusEntry]:
    """Every local and applied version with its state, in version order.

    A history row without recorded statements (written by an old CLI) counts as applied:
    there is nothing to compare.
    """
    local = {m.version: m for m in list_local(migrations_dir, warn=warn)}
    with connect(db_url) as conn:
        history = {m.version: m for m in read_history(conn)}
    entries: list[StatusEntry] = []
    for version in sorted(local.keys() | history.keys()):
        file = local.get(version)
        row = history.get(version)
        state: MigrationState
        if file is None:
            assert row is not None
            entries.append(StatusEntry(version, row.name, "missing_local", None))
            continue
        if row is None:
            state = "pending"
        elif row.statements is not None and tuple(row.statements) != file.statements:
            state = "changed"
        else:
            state = "applied"
        entries.append(StatusEntry(version, file.name, state, file.filename))
    return entries
