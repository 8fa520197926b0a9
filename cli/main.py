"""The `rendio` command line: one Typer sub-app per command group.

Heavy libraries are imported inside command bodies so `rendio --help` stays fast.
Every expected failure is a one-line red message and exit code 1; usage errors exit 2;
Ctrl-C exits 130. Tracebacks are shown only when RENDIO_DEBUG is set, even for bugs.
"""

from __future__ import annotations

import os
import sys

import click
import typer

from . import _console, db, demo, dev

app = typer.Typer(
    name="rendio",
    help="Rendio backend: local Supabase stack, migrations, provisioning and tools.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(dev.app, name="dev")
app.add_typer(db.app, name="db")
app.command(name="demo")(demo.demo)


def _expected_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that are the user's or the environment's fault, not bugs."""
    from cli.migrations import MigrationError
    from rendio_backend.errors import RendioError
    from rendio_backend.local.errors import StackError

    return (StackError, RendioError, MigrationError)


def main() -> None:
    try:
        result = app(standalone_mode=False)
    except click.exceptions.Abort:
        _console.error("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        if os.environ.get("RENDIO_DEBUG"):
            raise
        if isinstance(exc, _expected_errors()):
            _console.error(str(exc))
        else:
            _console.error(f"unexpected {type(exc).__name__}: {exc} "
                           "(set RENDIO_DEBUG=1 to see the traceback)")
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
