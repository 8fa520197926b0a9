"""`rendio doctor`: is this project ready? The checks are `rendio_backend.doctor`'s."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from . import _console, _options
from ._options import AnonKey, Json, ServiceRoleKey, Url

if TYPE_CHECKING:
    from rendio_backend.config import RendioConfig
    from rendio_backend.doctor import Check


def _local_db_url(config: RendioConfig) -> str | None:
    """The local stack's database when the API URL is that stack's, else None."""
    if not config.is_local:
        return None
    from rendio_backend.errors import RendioError
    from rendio_backend.local.config import StackConfig
    from rendio_backend.local.errors import StackError

    try:
        stack = StackConfig.from_env()
    except (StackError, RendioError):  # no readable project: skip the database checks
        return None
    return stack.db_url if stack.api_url.rstrip("/") == config.base_url else None


def doctor(
    db_url: Annotated[str | None, typer.Option(
        "--db-url", envvar="RENDIO_DB_URL", show_envvar=True, metavar="URL",
        help="Database to check migrations and lints on (default: the local stack's when "
        "--url is the local stack; otherwise those checks are skipped).")] = None,
    migrations_dir: Annotated[Path | None, typer.Option(
        "--migrations-dir", file_okay=False, metavar="DIR",
        help="Migrations expected applied (default: the project's supabase/migrations).")]
    = None,
    url: Url = None, anon_key: AnonKey = None, service_role_key: ServiceRoleKey = None,
    as_json: Json = False,
) -> None:
    """Check that a project is ready: config, connectivity, buckets, model catalog, a
    live worker, migrations applied, advisor lints clean. Each failure comes with its
    fix; exits 1 if any check fails (skipped checks do not fail).

    \b
    Examples:
      rendio doctor
      rendio doctor --url https://abc.supabase.co --anon-key sb_publishable_… \\
        --service-role-key sb_secret_… --db-url postgresql://postgres:…@db.abc.supabase.co/postgres
    """
    from rendio_backend.doctor import run_doctor
    from rendio_backend.errors import ConfigurationError
    from rendio_backend.project import find_project

    def load() -> RendioConfig:
        return _options.config(url, anon_key, service_role_key)

    def show(check: Check) -> None:
        if as_json:
            return
        mark, style = {"ok": ("✓", "green"), "fail": ("✗", "bold red"),
                       "skip": ("-", "dim")}[check.status]
        _console.out.print(f"{mark} {check.name}: {check.detail}", markup=False, style=style,
                           soft_wrap=True)
        if check.fix:
            _console.out.print(f"    fix: {check.fix}", markup=False, soft_wrap=True)

    if db_url is None:
        try:
            db_url = _local_db_url(load())
        except ConfigurationError:
            pass  # the config check reports it
    migrations = migrations_dir or find_project().migrations_to_apply()
    checks = run_doctor(load, db_url=db_url, migrations_dir=migrations, on_check=show)
    failed = [c.name for c in checks if c.status == "fail"]
    if as_json:
        _console.print_json({"ok": not failed, "checks": [c.to_dict() for c in checks]})
    if failed:
        _console.error(f"{len(failed)} check(s) failed: {', '.join(failed)}")
        raise typer.Exit(1)
    _console.success("all checks passed")
