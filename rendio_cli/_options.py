"""Options shared by the operator commands: the project to talk to and `--json`.

No `envvar=` on the connection options: `RendioConfig.from_env` reads the environment
and `.env` with the library's own precedence (new key names over legacy ones), and an
option given on the command line wins over both.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from . import _console

if TYPE_CHECKING:
    from rich.table import Table

    from rendio_backend import RendioAdmin
    from rendio_backend.config import RendioConfig
    from rendio_backend.local.config import StackConfig
    from rendio_backend.models import ChangeAction, ProvisionReport, SeedReport

Url = Annotated[str | None, typer.Option(
    "--url", metavar="URL",
    help="Supabase API URL (default: SUPABASE_URL from the environment or .env, else "
    "the local stack).")]
AnonKey = Annotated[str | None, typer.Option(
    "--anon-key", metavar="KEY",
    help="Publishable (anon) key (default: SUPABASE_PUBLISHABLE_KEY or SUPABASE_ANON_KEY; "
    "the local stack's for a local URL).")]
ServiceRoleKey = Annotated[str | None, typer.Option(
    "--service-role-key", metavar="KEY",
    help="Secret (service role) key (default: SUPABASE_SECRET_KEY or "
    "SUPABASE_SERVICE_ROLE_KEY; the local stack's for a local URL).")]
Json = Annotated[bool, typer.Option(
    "--json", help="Print plain JSON on stdout (messages stay on stderr).")]
DryRun = Annotated[bool, typer.Option(
    "--dry-run", help="Change nothing; say what would change.")]
Limit = Annotated[int, typer.Option("--limit", min=1, max=50, help="Rows to show (1-50).")]
Cursor = Annotated[str | None, typer.Option(
    "--cursor", metavar="CURSOR", help="Continue after a page: its next_cursor.")]


def config(url: str | None, anon_key: str | None,
           service_role_key: str | None) -> RendioConfig:
    """The library's settings, the options overriding the environment and `.env`.

    With no URL anywhere, the project's local stack as `rendio dev up` runs it (its
    port from RENDIO_API_PORT or config.toml, its keys), not a fixed default.
    """
    from rendio_backend.config import RendioConfig

    stack = local_stack(url)
    if stack is not None:
        # Its URL and keys only: operator commands need no Apple or provider fakes
        # (StackConfig.rendio_config() would load them, and write their keys once).
        return RendioConfig(supabase_url=stack.api_url,
                            anon_key=anon_key or stack.publishable_key,
                            service_role_key=service_role_key or stack.secret_key,
                            jwt_secret=stack.jwt_secret)
    return RendioConfig.from_env(supabase_url=url, anon_key=anon_key,
                                 service_role_key=service_role_key)


def local_stack(url: str | None) -> StackConfig | None:
    """The project's local stack when neither --url nor SUPABASE_URL names a project."""
    from rendio_backend.config import read_settings

    if url is not None or read_settings().get("SUPABASE_URL"):
        return None
    from rendio_backend.local.config import StackConfig

    return StackConfig.from_env()


@contextmanager
def admin(url: str | None, anon_key: str | None,
          service_role_key: str | None) -> Iterator[RendioAdmin]:
    """A service-role admin for the project the options name; closed afterwards."""
    from rendio_backend import RendioAdmin

    with RendioAdmin(config(url, anon_key, service_role_key)) as session:
        yield session


def change_line(name: str, action: ChangeAction, changed: Iterable[str]) -> str:
    """`name: updated (field, field)`, `name: created` or `name: unchanged`."""
    fields = ", ".join(changed)
    return f"{name}: {action.value}" + (f" ({fields})" if fields else "")


def print_changes(report: ProvisionReport | SeedReport, lines: Iterable[str], summary: str,
                  *, dry_run: bool, as_json: bool) -> None:
    """An idempotent step's report: a line per item on stdout and the summary on
    stderr, or one JSON object."""
    if as_json:
        _console.print_json({"dry_run": dry_run, **report.model_dump(mode="json")})
        return
    for line in lines:
        print(line)
    _console.info(("dry run, nothing changed: " if dry_run else "") + summary)


def show_fields(values: dict[str, object]) -> None:
    """`name: value` lines on stdout, for one record."""
    width = max(len(name) for name in values)
    for name, value in values.items():
        shown = "-" if value is None else value
        print(f"{name.ljust(width)}  {shown}")


def table(*headers: str, wrap: str) -> Table:
    """A Rich table in which only `wrap`'s cells wrap at spaces; ids fold when they
    must, never lose characters."""
    from rich.table import Column, Table

    return Table(*(Column(h, overflow="fold", no_wrap=h != wrap) for h in headers))


def print_table(table: Table) -> None:
    """On a terminal, fitted to it; piped, at the table's natural width, so each row
    stays one greppable line instead of Rich's default 80 columns."""
    from rich.console import Console

    out = _console.out
    if not out.is_terminal:
        width = out.measure(table, options=out.options.update_width(10_000)).maximum
        out = Console(width=width, highlight=False)
    out.print(table)
