"""`rendio dev`: the Docker-free local Supabase stack."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import _console


class Output(StrEnum):
    pretty = "pretty"
    env = "env"
    json = "json"


app = typer.Typer(help="Run a local Supabase stack (PostgreSQL, PostgREST, Auth, Storage).",
                  no_args_is_help=True)

StateDir = Annotated[Optional[Path], typer.Option(  # noqa: UP045 (typer needs Optional)
    "--state-dir", metavar="DIR", help="Where the stack keeps its data (env RENDIO_STATE_DIR; "
    "default: .rendio beside the project's supabase/ folder).")]
DbUrl = Annotated[Optional[str], typer.Option(  # noqa: UP045
    "--db-url", metavar="URL", help="Use this existing PostgreSQL (a superuser URL) instead "
    "of the embedded server (env RENDIO_DB_URL).")]
OutputOption = Annotated[Output, typer.Option(
    "--output", "-o", help="pretty, env (as `supabase status -o env`) or json.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Same as -o json.")]


def _stack(state_dir: Path | None, db_url: str | None):  # type: ignore[no-untyped-def]
    from rendio_backend.local.config import StackConfig
    from rendio_backend.local.stack import Stack

    return Stack(StackConfig.from_env(state_dir=state_dir, external_db_url=db_url))


def _print_status(statuses: list, output: Output, stack) -> None:  # type: ignore[no-untyped-def, type-arg]
    if output is Output.env:
        for key, value in stack.env().items():
            _console.out.print(f'{key}="{value}"', markup=False, soft_wrap=True)
        return
    if output is Output.json:
        _console.print_json({
            **stack.env(),
            "services": {s.name: {"running": s.running, "pid": s.pid, "address": s.address}
                         for s in statuses},
        })
        return
    from rich.table import Table

    table = Table("service", "state", "pid", "address", title="rendio local stack")
    for s in statuses:
        state = "[green]running[/green]" if s.running else "[red]down[/red]"
        table.add_row(s.name, state, str(s.pid or "-"), s.address)
    _console.out.print(table)
    for key, value in stack.env().items():
        _console.out.print(f"{key}: {value}", markup=False, soft_wrap=True)


def _exit_if_down(statuses: list) -> None:  # type: ignore[type-arg]
    down = [s.name for s in statuses if not s.running]
    if down:
        _console.error(f"not running: {', '.join(down)} (start it with `rendio dev up`)")
        raise typer.Exit(1)


def left_running(stack) -> None:  # type: ignore[no-untyped-def]
    """After Ctrl-C: say which pieces are up, so nothing runs unnoticed."""
    running = [s.name for s in stack.status() if s.running]
    if running:
        _console.warning(f"interrupted; left running: {', '.join(running)} "
                         "(`rendio dev up` finishes the start, `rendio dev down` stops them)")
    else:
        _console.warning("interrupted; nothing was left running")


@app.command()
def up(
    state_dir: StateDir = None,
    db_url: DbUrl = None,
    migrations_dir: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        "--migrations-dir", metavar="DIR", file_okay=False,
        help="Apply pending migrations from DIR (default: the project's "
        "supabase/migrations; outside a project, Rendio's own).")] = None,
    no_migrate: Annotated[bool, typer.Option("--no-migrate", help="Skip migrations.")] = False,
    output: OutputOption = Output.pretty,
    json_: JsonOption = False,
) -> None:
    """Start the stack (idempotent: only pieces that are down are started).

    \b
    Example:
      rendio dev up --json
    """
    from rendio_backend.project import find_project

    project = find_project()
    stack = _stack(state_dir, db_url)
    if migrations_dir is None and not no_migrate:
        migrations_dir = project.migrations_to_apply()
        if not project.found:
            _console.info(f"no supabase/ folder from {project.root} upward: applying "
                          "Rendio's own schema (`rendio init` copies it here)")
    try:
        statuses = stack.up(migrations_dir=None if no_migrate else migrations_dir,
                            on_step=_console.info)
    except KeyboardInterrupt:
        left_running(stack)
        raise typer.Exit(130) from None
    _print_status(statuses, Output.json if json_ else output, stack)
    _exit_if_down(statuses)


@app.command()
def down(state_dir: StateDir = None, db_url: DbUrl = None) -> None:
    """Stop the processes this stack started (data is kept).

    \b
    Example:
      rendio dev down
    """
    stopped = _stack(state_dir, db_url).down()
    _console.success(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@app.command()
def status(
    state_dir: StateDir = None,
    db_url: DbUrl = None,
    output: OutputOption = Output.pretty,
    json_: JsonOption = False,
) -> None:
    """Show each piece's state and the connection settings; exit 1 when one is down.

    \b
    Example:
      rendio dev status -o env > .env.local
    """
    stack = _stack(state_dir, db_url)
    statuses = stack.status()
    _print_status(statuses, Output.json if json_ else output, stack)
    _exit_if_down(statuses)


@app.command()
def reset(
    state_dir: StateDir = None,
    db_url: DbUrl = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Drop the local database and bootstrap it again (all data is lost).

    \b
    Example:
      rendio dev reset --yes
    """
    if not yes:
        typer.confirm("Drop the local database and all its data?", abort=True)
    _stack(state_dir, db_url).reset()
    _console.success("database reset and bootstrapped")


@app.command()
def logs(
    piece: Annotated[Optional[str], typer.Argument(  # noqa: UP045
        help="postgres, postgrest, gateway or worker (default: all)")] = None,
    lines: Annotated[int, typer.Option("--lines", "-n")] = 40,
    state_dir: StateDir = None,
) -> None:
    """Show the end of each piece's log.

    \b
    Example:
      rendio dev logs worker -n 100
    """
    from rendio_backend.local._proc import log_tail

    paths = _stack(state_dir, None).log_paths()
    if piece is not None and piece not in paths:
        _console.error(f"unknown piece {piece!r}: choose one of {', '.join(paths)}")
        raise typer.Exit(2)
    for name, path in paths.items():
        if piece in (None, name):
            _console.out.rule(f"{name} ({path})")
            _console.out.print(log_tail(path, lines), markup=False, highlight=False)
