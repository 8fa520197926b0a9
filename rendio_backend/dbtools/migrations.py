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

Errors (all `MigrationError`):

    MigrationError
     ├── DatabaseUnavailable     cannot connect (the URL is shown with its password masked)
     ├── MigrationFileError      unreadable file, duplicate version, bad migration name
     ├── MigrationOrderError     history and local files disagree (CLI's two refusals)
     └── MigrationFailed         a statement failed: file, statement number, PostgreSQL message
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

__all__ = [
    "AppliedMigration",
    "DatabaseUnavailable",
    "Migration",
    "MigrationError",
    "MigrationFailed",
    "MigrationFileError",
    "MigrationOrderError",
    "MigrationState",
    "StatusEntry",
    "connect",
    "find_pending",
    "list_local",
    "mark_position",
    "migrate",
    "new_migration",
    "read_history",
    "redact_url",
    "seed",
    "split_raw",
    "split_statements",
    "status",
    "with_database",
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


# --- errors -------------------------------------------------------------------------


class MigrationError(Exception):
    """Root of the runner's errors; `str()` is a message for a person."""


class DatabaseUnavailable(MigrationError):
    """The database could not be reached (or refused the login)."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = redact_url(url)
        self.reason = reason
        super().__init__(f"cannot connect to {self.url}: {reason}")


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


# --- the splitter -------------------------------------------------------------------

# Go's unicode.IsSpace, which the CLI's strings.TrimSpace uses (Python's isspace differs).
_GO_SPACES = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007" \
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
_RUNE_ERROR = "\ufffd"


def _is_ident_rune(ch: str) -> bool:
    # Go's unicode.IsLetter / IsDigit are Python's isalpha / isdecimal.
    return ch.isalpha() or ch.isdecimal() or ch == "_" or ch == "$"


def _decode_rune(buf: bytes, i: int) -> tuple[str, int]:
    """Go's utf8.DecodeRune: the rune at `i` and its width; U+FFFD/1 when not a lead byte."""
    b = buf[i]
    width = 1 if b < 0x80 else 2 if b >> 5 == 0b110 else 3 if b >> 4 == 0b1110 else (
        4 if b >> 3 == 0b11110 else 0)
    if width == 0:
        return _RUNE_ERROR, 1
    try:
        return buf[i : i + width].decode("utf-8"), width
    except UnicodeDecodeError:
        return _RUNE_ERROR, 1


@dataclass
class _Lexer:
    """One state of the CLI's statement tokenizer.

    kinds: ready, comment (one `-` seen), dollar (inside `$tag$…` or a `--` line comment,
    ends at `delim`), block (`/* */`, nested), quote (`'` or `"`), tag (reading `$tag`),
    escape (after `\\`), atomic (inside `(…)` or `BEGIN ATOMIC … END`, wraps `inner`).
    """

    kind: str = "ready"
    delim: bytes = b""
    depth: int = 0
    escape: bool = False
    offset: int = 0
    inner: _Lexer | None = None


def _ready_next(ch: str, data: bytes) -> _Lexer | None:
    if ch == "$":
        return _Lexer("tag", offset=len(data) - len(ch.encode()))
    if ch in ("'", '"'):
        return _Lexer("quote", delim=ch.encode())
    if ch == "-":
        return _Lexer("comment")
    if ch == "/":
        return _Lexer("block")
    if ch == "\\":
        return _Lexer("escape")
    if ch == ";":
        return None  # end of statement
    if ch == "(":
        return _Lexer("atomic", delim=b")", inner=_Lexer())
    if ch in ("c", "C") and _is_begin_atomic(data):
        return _Lexer("atomic", delim=b"END", inner=_Lexer())
    return _Lexer()


def _is_begin_atomic(data: bytes) -> bool:
    """Whether `data` ends with `BEGIN <spaces> ATOMIC` as whole words."""
    offset = len(data) - len(b"ATOMIC")
    if offset < 0 or data[offset:].upper() != b"ATOMIC":
        return False
    if offset > 0 and _is_ident_rune(_last_rune(data[:offset])):
        return False
    prefix = data[:offset].decode("utf-8", "replace").rstrip(_GO_SPACES).encode()
    offset = len(prefix) - len(b"BEGIN")
    if offset < 0 or prefix[offset:].upper() != b"BEGIN":
        return False
    return offset == 0 or not _is_ident_rune(_last_rune(prefix[:offset]))


def _last_rune(data: bytes) -> str:
    text = data[-4:].decode("utf-8", "replace")
    return text[-1] if text else _RUNE_ERROR


def _step(state: _Lexer, ch: str, data: bytes) -> _Lexer | None:
    """Feed one rune; `data` is the current statement so far, ending with that rune."""
    kind = state.kind
    if kind == "ready":
        return _ready_next(ch, data)
    if kind == "comment":
        if ch == "-":
            return _Lexer("dollar", delim=b"\n")  # a line comment ends at the newline
        return _ready_next(ch, data)
    if kind == "block":
        window = data[-2:]
        if window == b"/*":
            state.depth += 1
            return state
        if state.depth == 0:
            return _ready_next(ch, data)
        if window == b"*/":
            state.depth -= 1
            if state.depth == 0:
                return _Lexer()
        return state
    if kind == "quote":
        if state.escape:
            if ch.encode() == state.delim:  # a doubled quote stays inside the literal
                state.escape = False
                return state
            return _ready_next(ch, data)
        if ch.encode() == state.delim:
            state.escape = True
        return state
    if kind == "dollar":
        if data.endswith(state.delim):
            return _Lexer()
        return state
    if kind == "tag":
        if ch == "$":
            return _Lexer("dollar", delim=bytes(data[state.offset :]))
        if ch.isalpha() or ch.isdecimal() or ch == "_":
            return state
        return _ready_next(ch, data)
    if kind == "escape":
        return _Lexer()
    # atomic: the wrapped state decides whether we are inside a literal or comment
    assert state.inner is not None
    inner = _step(state.inner, ch, data)
    if inner is not None:
        state.inner = inner
    if state.inner.kind == "ready" and data[-len(state.delim) :].upper() == state.delim:
        return _Lexer()
    return state


def split_raw(sql: str | bytes) -> list[str]:
    """Split SQL into raw statements, each with its `;`, comments and whitespace kept.

    The rules are the Supabase CLI's (`pkg/parser`), quirks included, so the statements
    we execute and record are the ones `supabase db push` would: `;` ends a statement
    except inside quotes, `$tag$` bodies, comments, parentheses and `BEGIN ATOMIC … END`.
    Like the CLI it walks byte by byte (a multi-byte character is seen as its rune and then
    one U+FFFD per continuation byte).
    """
    buf = sql.encode() if isinstance(sql, str) else sql
    out: list[str] = []
    start = 0
    state = _Lexer()
    i = 0
    while i < len(buf):
        ch, width = _decode_rune(buf, i)
        end = i + width
        nxt = _step(state, ch, buf[start:end])
        if nxt is None:
            out.append(buf[start:end].decode("utf-8", "replace"))
            start = end
            state = _Lexer()
            i = end
            continue
        state = nxt
        i += 1  # the CLI advances one byte at a time, even inside a multi-byte rune
    if start < len(buf):
        out.append(buf[start:].decode("utf-8", "replace"))
    return out


def split_statements(sql: str | bytes) -> list[str]:
    """The statements of a migration, exactly as the CLI records them (`SplitAndTrim`).

    Each raw statement loses its trailing `;` and surrounding whitespace; empty ones are
    dropped, comment-only ones are kept (the server answers them with an empty result).
    """
    stats = []
    for token in split_raw(sql):
        trimmed = token.rstrip(";").strip(_GO_SPACES)
        if trimmed:
            stats.append(trimmed)
    return stats


def mark_position(statement: str, position: int | None) -> str:
    """The statement with a caret under the 1-based character `position`, like the CLI."""
    if not position or position <= 0:
        return statement
    lines = statement.split("\n")
    pos = position
    for j, line in enumerate(lines):
        if pos > len(line):
            pos -= len(line) + 1
            continue
        if pos > 0:
            return "\n".join([*lines[: j + 1], " " * (pos - 1) + "^"])
        break
    return statement


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


# --- connections --------------------------------------------------------------------


def redact_url(url: str) -> str:
    """`url` with its password replaced by `***` (URLs and key=value strings alike)."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
    user = params.get("user") or ""
    secret = ":***" if params.get("password") else ""
    host = params.get("host") or "localhost"
    port = f":{params['port']}" if params.get("port") else ""
    dbname = params.get("dbname") or ""
    auth = f"{user}{secret}@" if user or secret else ""
    return f"postgresql://{auth}{host}{port}/{dbname}"


def with_database(url: str, dbname: str, **overrides: str | None) -> str:
    """`url` pointed at another database (and optionally other connection parameters)."""
    params: dict[str, object] = dict(conninfo_to_dict(url))
    params["dbname"] = dbname
    params.update({k: v for k, v in overrides.items() if v is not None})
    return make_conninfo(**params)  # type: ignore[arg-type]


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.strip().splitlines() if part.strip())


@contextmanager
def connect(db_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """An autocommit connection; connection failures become `DatabaseUnavailable`."""
    try:
        conn = psycopg.connect(db_url, autocommit=True, prepare_threshold=None,
                               connect_timeout=10)
    except psycopg.OperationalError as exc:
        # libpq's first line is the reason; the next ones are generic hints.
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        reason = lines[0].rstrip(".") if lines else type(exc).__name__
        raise DatabaseUnavailable(db_url, reason) from exc
    except psycopg.ProgrammingError as exc:  # a malformed URL
        raise DatabaseUnavailable(db_url, _one_line(str(exc))) from exc
    with conn:
        yield conn


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
            pg_message=diag.message_primary or _one_line(str(exc)),
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
