"""The `rendio` command line: one Typer sub-app per command group.

Heavy libraries are imported inside command bodies so `rendio --help` stays fast.
Typer's standalone mode owns the exit codes of the command line itself: usage errors
print Click's usage text and exit 2, an aborted prompt exits 1 ("Aborted!"), Ctrl-C
exits 130. Every expected failure of a command is one red line and exit code 1.
Tracebacks are shown only when RENDIO_DEBUG is set, even for bugs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import (
    _console,
    bench,
    chaos,
    credits,
    db,
    demo,
    dev,
    doctor,
    jobs,
    ledger,
    maintenance,
    models,
    project,
    serve,
    simulate,
    storage,
    users,
    worker,
)

app = typer.Typer(
    name="rendio",
    help="Rendio backend: local Supabase stack, migrations, provisioning and tools.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Plain Click help: no `<bool>` type column, and `[env var: …]` notes kept.
    rich_markup_mode=None,
)
app.add_typer(dev.app, name="dev")
app.add_typer(db.app, name="db")
app.add_typer(maintenance.app, name="maintenance")
app.add_typer(storage.app, name="storage")
app.add_typer(models.app, name="models")
app.add_typer(users.app, name="users")
app.add_typer(credits.app, name="credits")
app.add_typer(jobs.app, name="jobs")
app.add_typer(ledger.app, name="ledger")
app.command(name="bench")(bench.bench)
app.command(name="chaos")(chaos.chaos)
app.command(name="doctor")(doctor.doctor)
app.command(name="demo")(demo.demo)
app.command(name="init")(project.init)
app.command(name="serve")(serve.serve)
app.command(name="simulate")(simulate.simulate)
app.command(name="worker")(worker.worker)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"rendio {version('rendio-backend')}")
        raise typer.Exit()


@app.callback()
def _root(
    workdir: Annotated[Optional[Path], typer.Option(  # noqa: UP045 (typer needs Optional)
        "--workdir", envvar="RENDIO_WORKDIR", show_envvar=True, metavar="DIR",
        help="Run as if started in DIR (the project is found from there upward).")] = None,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")]
    = False,
) -> None:
    """Rendio backend: local Supabase stack, migrations, provisioning and tools."""
    if workdir is not None:
        if not workdir.is_dir():
            raise typer.BadParameter(f"{workdir} is not a directory", param_hint="--workdir")
        # As `supabase --workdir`: every path below is then relative to it.
        os.chdir(workdir)


def _expected_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that are the user's or the environment's fault, not bugs."""
    from rendio_backend.dbtools.errors import DbToolsError
    from rendio_backend.errors import RendioError
    from rendio_backend.local.errors import StackError

    return (StackError, RendioError, DbToolsError)


def _describe(exc: BaseException) -> str:
    """The error's text, plus the field it names when the message does not (SQL
    functions answer `invalid_request` with the field only in their details)."""
    text = str(exc)
    details = getattr(exc, "details", None)
    if isinstance(details, dict) and details.get("field") and details["field"] not in text:
        reason = details.get("reason")
        text += f": {details['field']}" + (f" {reason}" if reason else "")
    return text


def main() -> None:
    try:
        app()  # standalone: exits by itself, with Click's codes, on success and usage errors
    except Exception as exc:
        if os.environ.get("RENDIO_DEBUG"):
            raise
        if isinstance(exc, _expected_errors()):
            _console.error(_describe(exc))
        else:
            _console.error(f"unexpected {type(exc).__name__}: {exc} "
                           "(set RENDIO_DEBUG=1 to see the traceback)")
        sys.exit(1)


if __name__ == "__main__":
    main()
