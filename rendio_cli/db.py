"""`rendio db`: migrations (migrate, status, new, reset), lints and the CI check.

The work is done by `rendio_backend.dbtools`; this module parses options, prints, and
maps failures to one red line on stderr with exit code 1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from . import _console

if TYPE_CHECKING:
    from rendio_backend.dbtools.lint import FailOn, Level

app = typer.Typer(
    help="Database migrations (Supabase CLI compatible), advisor lints and the CI check.",
    no_args_is_help=True,
)


DbUrl = Annotated[str | None, typer.Option(
    "--db-url", envvar="RENDIO_DB_URL", show_envvar=True, metavar="URL",
    help="Database URL to work on (default: the local stack's, as `postgres`).")]
SuperuserUrl = Annotated[str | None, typer.Option(
    "--superuser-url", metavar="URL",
    help="Superuser URL of the same server (default: the local stack's).")]
MigrationsDir = Annotated[Path | None, typer.Option(
    "--migrations-dir", file_okay=False, metavar="DIR",
    help="Directory of <version>_<name>.sql files (default: the project's "
    "supabase/migrations).")]
Json = Annotated[bool, typer.Option("--json", help="Print plain JSON on stdout.")]


def _migrations(migrations_dir: Path | None) -> Path:
    """The folder given, else the project's migrations (Rendio's own outside a project)."""
    if migrations_dir is not None:
        return migrations_dir
    from rendio_backend.project import find_project

    return find_project().migrations_to_apply()


def _db_url(db_url: str | None) -> str:
    if db_url:
        return db_url
    from rendio_backend.local.config import StackConfig

    return StackConfig.from_env().db_url


def _superuser_url(url: str | None) -> str:
    if url:
        return url
    from rendio_backend.local.config import StackConfig

    return StackConfig.from_env().superuser_db_url


def _db_host(url: str) -> str:
    """The host part of a database URL ("localhost" when it names none)."""
    from psycopg.conninfo import conninfo_to_dict

    return str(conninfo_to_dict(url).get("host") or "localhost")


def _is_local(url: str) -> bool:
    """Whether `url` names a server on this machine (loopback or a Unix socket)."""
    from rendio_backend.config import is_loopback_host

    return all(is_loopback_host(h) or h.startswith("/") for h in _db_host(url).split(","))


def _fail(message: str) -> typer.Exit:
    _console.error(message)
    return typer.Exit(1)


@contextmanager
def _errors() -> Iterator[None]:
    """Expected failures become one red line and exit code 1, never a traceback."""
    import psycopg

    from rendio_backend.dbtools.check import HINT
    from rendio_backend.dbtools.errors import DatabaseUnavailable, DbToolsError, MigrationFailed
    from rendio_backend.local.errors import StackError

    try:
        yield
    except DatabaseUnavailable as exc:
        raise _fail(f"{exc}. {HINT}") from None
    except MigrationFailed as exc:
        _console.error(str(exc))
        # The statement with a caret under the error, like `supabase db push` shows it.
        _console.err.print(exc.report().split("\n", 1)[1], markup=False, style="dim")
        raise typer.Exit(1) from None
    except (DbToolsError, StackError) as exc:
        raise _fail(str(exc)) from None
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _fail(f"database error: {first}") from None


def _state_style(state: str) -> str:
    return {"applied": "green", "pending": "yellow", "changed": "bold red",
            "missing_local": "bold red"}.get(state, "")


# --- migrate / status / new / reset -------------------------------------------------


@app.command()
def migrate(
    db_url: DbUrl = None,
    migrations_dir: MigrationsDir = None,
    include_all: Annotated[bool, typer.Option(
        "--include-all", help="Also apply files older than the newest applied version.")]
    = False,
    json: Json = False,
) -> None:
    """Apply pending migrations, each file in one transaction with its history row.

    \b
    Example:
      rendio db migrate --db-url postgresql://postgres:PASSWORD@db.PROJECT.supabase.co:5432/postgres
    """
    from rendio_backend.dbtools.migrations import migrate as run_migrate

    with _errors():
        applied = run_migrate(
            _db_url(db_url), _migrations(migrations_dir), include_all=include_all,
            on_apply=lambda m: _console.info(f"Applying migration {m.filename}..."),
            warn=_console.warning,
        )
    if json:
        _console.print_json([{"version": m.version, "name": m.name, "file": m.filename}
                             for m in applied])
    elif applied:
        _console.success(f"Applied {len(applied)} migration(s).")
    else:
        _console.success("Database is up to date.")


@app.command()
def status(
    db_url: DbUrl = None,
    migrations_dir: MigrationsDir = None,
    json: Json = False,
) -> None:
    """List migrations as applied, pending, changed (edited after apply) or missing_local.

    Exits 1 when an applied migration was edited or the database holds a version that
    has no local file.

    \b
    Example:
      rendio db status --json
    """
    from rendio_backend.dbtools.migrations import status as run_status

    with _errors():
        entries = run_status(_db_url(db_url), _migrations(migrations_dir),
                             warn=_console.warning)
    if json:
        _console.print_json([e.to_dict() for e in entries])
    else:
        from rich.table import Table
        from rich.text import Text

        table = Table("version", "name", "state")
        for entry in entries:  # Text: file names are not Rich markup
            table.add_row(Text(entry.version), Text(entry.name), Text(entry.state),
                          style=_state_style(entry.state))
        _console.out.print(table)
    bad = [e for e in entries if e.state in ("changed", "missing_local")]
    if bad:
        raise _fail(", ".join(f"{e.version} is {e.state}" for e in bad))


@app.command()
def new(
    name: Annotated[str, typer.Argument(metavar="NAME",
                                        help="lower_snake_case name, e.g. add_video_jobs")],
    migrations_dir: MigrationsDir = None,
    json: Json = False,
) -> None:
    """Create supabase/migrations/<YYYYMMDDHHMMSS>_<name>.sql (UTC timestamp).

    Outside a project, the folder becomes one first: Rendio's schema is copied into
    ./supabase (as `rendio init`), so the new migration builds on it.

    \b
    Example:
      rendio db new add_video_tags
    """
    from rendio_backend.dbtools.migrations import new_migration
    from rendio_backend.project import find_project

    if migrations_dir is None:
        project = find_project()
        if not project.found:
            created = project.init()
            _console.info(f"started a project in {project.root}: copied Rendio's schema "
                          f"({len(created)} files) into supabase/")
        migrations_dir = project.migrations_dir
    with _errors():
        path = new_migration(name, migrations_dir)
    if json:
        _console.print_json({"path": str(path)})
    else:
        print(path)


@app.command()
def reset(
    db_url: DbUrl = None,
    migrations_dir: MigrationsDir = None,
    seed_file: Annotated[Path | None, typer.Option(
        "--seed-file", dir_okay=False, metavar="FILE",
        help="Seed SQL run after the migrations (default: supabase/seed.sql).")] = None,
    no_seed: Annotated[bool, typer.Option("--no-seed", help="Skip the seed file.")] = False,
    yes: Annotated[bool, typer.Option(
        "--yes", "-y", help="Do not ask before resetting a database on this machine.")]
    = False,
    confirm_host: Annotated[str | None, typer.Option(
        "--confirm-host", metavar="HOST",
        help="Reset a database on another machine without a prompt: HOST must be the "
        "URL's host.")] = None,
) -> None:
    """Reset one database: the local stack's, or only the one --db-url names.

    The local stack's database is dropped, recreated and bootstrapped. Any other
    database is emptied in place, as `supabase db reset --db-url` does: user schemas,
    everything in public, policies on Storage/Auth tables and the migration history go;
    roles stay. Then migrations run and the seed file is applied.

    \b
    Example:
      rendio db reset --no-seed
    """
    from rendio_backend.dbtools.connection import redact_url
    from rendio_backend.dbtools.migrations import migrate as run_migrate
    from rendio_backend.dbtools.migrations import seed
    from rendio_backend.local.config import StackConfig
    from rendio_backend.project import find_project

    project = find_project()
    migrations = _migrations(migrations_dir)
    seed_path = seed_file if seed_file is not None else project.seed_file
    config = StackConfig.from_env(project=project)
    named = db_url is not None or config.external_db_url is not None
    target = db_url or config.db_url
    host = _db_host(target)
    if not _is_local(target):
        # Never drop a shared server's data on a default: the prompt names the host.
        if confirm_host is None:
            answer = typer.prompt(f"Reset {redact_url(target)}? All its data is lost. "
                                  "Type its host to confirm", default="", err=True,
                                  show_default=False)
            if answer.strip() != host:
                _console.error(f"not confirmed: the answer must be {host}")
                raise typer.Exit(1)
        elif confirm_host != host:
            _console.error(f"--confirm-host {confirm_host} does not match the host {host}")
            raise typer.Exit(2)
    elif not yes and named:
        typer.confirm(f"Reset {redact_url(target)}? All its data is lost.", abort=True,
                      err=True)
    with _errors():
        if named:
            from rendio_backend.dbtools.connection import connect
            from rendio_backend.dbtools.reset import drop_user_objects

            _console.info(f"Emptying {redact_url(target)}...")
            with connect(target) as conn:
                drop_user_objects(conn)
        else:
            from rendio_backend.local.stack import reset_database

            _console.info("Resetting the local database...")
            reset_database(config)
        applied = run_migrate(
            target, migrations,
            on_apply=lambda m: _console.info(f"Applying migration {m.filename}..."),
            warn=_console.warning,
        )
        seeded = False
        if not no_seed and seed_path.is_file():
            _console.info(f"Seeding data from {seed_path}...")
            seeded = seed(target, seed_path)
    _console.success(f"Database reset: {len(applied)} migration(s) applied"
                     + (", seeded." if seeded else "."))


# --- lint ---------------------------------------------------------------------------

# Values as `supabase db lint` takes them (`warning` spelt out there).
_LEVELS: dict[str, Level] = {"info": "INFO", "warn": "WARN", "warning": "WARN",
                              "error": "ERROR"}
_FAIL_ON: dict[str, FailOn] = {"none": "none", "warn": "warn", "warning": "warn",
                               "error": "error"}

LintSchemas = Annotated[list[str] | None, typer.Option(
    "--schema", "-s", metavar="SCHEMA",
    help="Only report findings about objects in these schemas (repeatable or comma "
    "separated; default: all), as `supabase db lint --schema`.")]
LintApiSchemas = Annotated[list[str] | None, typer.Option(
    "--api-schema", metavar="SCHEMA",
    help="Schema PostgREST exposes (repeatable or comma separated; default: the "
    "database's pgrst.db_schemas if set, else public, graphql_public).")]


def _one_of(allowed: dict[str, Any], shown: str) -> Callable[[str], str]:
    """An option callback accepting the keys of `allowed`, in any case."""

    def check(value: str) -> str:
        if value.lower() not in allowed:
            raise typer.BadParameter(f"{value!r} is not one of {shown}")
        return value.lower()

    return check


LintLevel = Annotated[str, typer.Option(
    "--level", metavar="info|warn|error", callback=_one_of(_LEVELS, "info, warn, error"),
    help="Show findings at this level or above.")]
LintFailOn = Annotated[str, typer.Option(
    "--fail-on", metavar="none|warn|error", callback=_one_of(_FAIL_ON, "none, warn, error"),
    help="Exit 1 when a finding is at this level or above, shown or not.")]


def _split(values: Sequence[str] | None) -> list[str]:
    """Repeated and comma-separated option values as one list."""
    return [part.strip() for value in values or () for part in value.split(",")
            if part.strip()]


def _print_lints(results: Sequence[Any], hidden: int) -> None:
    from rich.table import Table
    from rich.text import Text

    from rendio_backend.dbtools.lint import LINTS

    if not results:
        more = f" ({hidden} below --level)" if hidden else ""
        _console.success(f"No lint findings{more}.")
        return
    table = Table("level", "name", "detail", show_lines=False)
    styles = {"ERROR": "bold red", "WARN": "yellow", "INFO": "dim"}
    for r in results:
        # Text: details contain `[docs](…)`, which Rich would read as markup.
        table.add_row(Text(r.level), Text(r.name), Text(r.detail), style=styles[r.level])
    _console.out.print(table)
    docs = {spec.name: spec.docs for spec in LINTS}
    _console.out.print("Remediation:", markup=False)
    for name in dict.fromkeys(r.name for r in results):
        _console.out.print(f"  {name}: {docs[name]}", markup=False, soft_wrap=True)


@app.command()
def lint(
    db_url: DbUrl = None,
    schema: LintSchemas = None,
    api_schema: LintApiSchemas = None,
    level: LintLevel = "info",
    fail_on: LintFailOn = "warn",
    json: Json = False,
) -> None:
    """Security and performance lints, finding for finding those of Supabase's advisor.

    The same lints as the dashboard's database advisor (splinter), with the same names,
    levels and cache keys. Exits 1 on any finding at the --fail-on level or above
    (default: WARN or ERROR; INFO findings are advice).

    \b
    Example:
      rendio db lint --level warn --fail-on error
    """
    from rendio_backend.dbtools.lint import at_least, failing, in_schemas
    from rendio_backend.dbtools.lint import lint as run_lint

    with _errors():
        results = run_lint(_db_url(db_url), api_schemas=_split(api_schema) or None)
    if schema:
        results = in_schemas(results, _split(schema))
    shown = at_least(results, _LEVELS[level])
    if json:
        _console.print_json([r.to_dict() for r in shown])
    else:
        _print_lints(shown, len(results) - len(shown))
    bad = failing(results, _FAIL_ON[fail_on])
    if bad:
        floor = "ERROR" if _FAIL_ON[fail_on] == "error" else "WARN or ERROR"
        raise _fail(f"{len(bad)} lint finding(s) at {floor} level")


# --- check --------------------------------------------------------------------------


@app.command()
def check(
    db_url: DbUrl = None,
    superuser_url: SuperuserUrl = None,
    migrations_dir: MigrationsDir = None,
    api_schema: LintApiSchemas = None,
    json: Json = False,
) -> None:
    """CI check: fresh database → migrate → re-migrate is a no-op → lint clean → no edits.

    Also regenerates supabase/schema.sql from the fresh database; CI diffs it.

    \b
    Example:
      rendio db check && git diff --exit-code supabase/schema.sql
    """

    from rendio_backend.dbtools.check import Step, run_check

    def show(step: Step) -> None:
        if json:
            return
        mark, style = ("✓", "green") if step.ok else ("✗", "bold red")
        _console.out.print(f"{mark} {step.name}: {step.detail}", markup=False, style=style,
                           soft_wrap=True)
        for item in step.data:
            if "detail" in item:
                _console.out.print(f"    {item['level']} {item['name']}: {item['detail']}",
                                   markup=False, soft_wrap=True)

    with _errors():
        migrations = _migrations(migrations_dir)
        steps = run_check(_db_url(db_url), _superuser_url(superuser_url), migrations,
                          api_schemas=_split(api_schema) or None,
                          schema_file=migrations.parent / "schema.sql", on_step=show)
    ok = all(s.ok for s in steps)
    if json:
        _console.print_json({"ok": ok, "steps": [s.to_dict() for s in steps]})
    if not ok:
        raise _fail("check failed")
