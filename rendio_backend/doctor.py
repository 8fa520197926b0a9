"""`rendio doctor`'s checks: is this Supabase project ready to serve the app?

Each check says ok, fail (with the fix) or skip (what it needs). Checks that need
the API stop at the first broken link (no configuration, no connection); the database
checks (migrations, lints) need a database URL, which the API does not expose.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .admin import RendioAdmin
from .config import RendioConfig
from .errors import (
    AuthError,
    ConfigurationError,
    PermissionDenied,
    RendioConnectionError,
    RendioError,
)
from .models import ChangeAction, WorkerHeartbeat

if TYPE_CHECKING:
    from .dbtools.migrations import StatusEntry

__all__ = ["Check", "run_doctor"]

CheckStatus = Literal["ok", "fail", "skip"]
# A live worker beats every 5 s (WorkerSettings.heartbeat_interval): 30 s is 6 missed.
WORKER_MAX_SILENCE = timedelta(seconds=30)


@dataclass(frozen=True)
class Check:
    name: str
    status: CheckStatus
    detail: str
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ok(name: str, detail: str) -> Check:
    return Check(name, "ok", detail)


def _fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, "fail", detail, fix)


def _skip(name: str, detail: str) -> Check:
    return Check(name, "skip", detail)


def run_doctor(
    load_config: Callable[[], RendioConfig],
    *,
    db_url: str | None,
    migrations_dir: Path,
    worker_max_silence: timedelta = WORKER_MAX_SILENCE,
    on_check: Callable[[Check], None] | None = None,
) -> list[Check]:
    """Run every check in order; `on_check` sees each as it completes."""
    checks: list[Check] = []

    def record(check: Check) -> None:
        checks.append(check)
        if on_check is not None:
            on_check(check)

    config: RendioConfig | None = None
    try:
        config = load_config()
        config.require_service_role_key()
    except ConfigurationError as exc:
        config = None
        record(_fail("config", str(exc), "set SUPABASE_URL, SUPABASE_PUBLISHABLE_KEY and "
                     "SUPABASE_SECRET_KEY (environment or .env), or pass --url, --anon-key "
                     "and --service-role-key"))
    if config is None:
        for name in ("connectivity", "buckets", "models", "worker"):
            record(_skip(name, "needs a valid configuration"))
    else:
        where = "local" if config.is_local else "hosted"
        record(_ok("config", f"{config.base_url} ({where}, {config.environment})"))
        for check in _api_checks(config, worker_max_silence):
            record(check)
    for check in _database_checks(db_url, migrations_dir):
        record(check)
    return checks


def _api_checks(config: RendioConfig, worker_max_silence: timedelta) -> list[Check]:
    checks: list[Check] = []
    with RendioAdmin(config) as admin:
        try:
            workers = admin.list_workers()
        except RendioError as exc:
            checks.append(_connection_failure(config, exc))
            return checks + [_skip(name, "needs a connection")
                             for name in ("buckets", "models", "worker")]
        checks.append(_ok("connectivity", f"{config.rest_url} answers with the service role"))
        checks.append(_guarded("buckets", lambda: _buckets(admin)))
        checks.append(_guarded("models", lambda: _models(admin)))
    checks.append(_workers(workers, worker_max_silence))
    return checks


def _connection_failure(config: RendioConfig, exc: RendioError) -> Check:
    if isinstance(exc, RendioConnectionError):
        fix = ("start the local stack: `rendio dev up`" if config.is_local
               else "check --url / SUPABASE_URL and that the project is reachable")
    elif isinstance(exc, AuthError | PermissionDenied):
        fix = "check --service-role-key / SUPABASE_SECRET_KEY: it must be this project's"
    else:
        fix = "apply the migrations (`rendio db migrate`, or `supabase db push` when hosted)"
    return _fail("connectivity", f"{config.base_url}: {exc}", fix)


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    """A check whose API call failed is a failure of that check, not of the doctor."""
    try:
        return check()
    except RendioError as exc:
        return _fail(name, str(exc), "see the error; `rendio doctor` again once fixed")


def _what(action: ChangeAction) -> str:
    return "missing" if action is ChangeAction.CREATED else "differs"


def _buckets(admin: RendioAdmin) -> Check:
    report = admin.provision_storage(dry_run=True)
    if not report.changed:
        return _ok("buckets", ", ".join(item.bucket for item in report.items) + " as specified")
    wrong = [f"{item.bucket} {_what(item.action)}"
             for item in report.items if item.action is not ChangeAction.UNCHANGED]
    return _fail("buckets", "; ".join(wrong), "run `rendio storage provision`")


def _models(admin: RendioAdmin) -> Check:
    report = admin.seed_models(dry_run=True)
    if not report.changed:
        return _ok("models", f"catalog {report.catalog_version} seeded "
                   f"({len(report.items)} models)")
    wrong = [f"{item.name} {_what(item.action)}"
             for item in report.items if item.action is not ChangeAction.UNCHANGED]
    return _fail("models", "; ".join(wrong), "run `rendio models seed`")


def _workers(workers: list[WorkerHeartbeat], max_silence: timedelta) -> Check:
    now = datetime.now(UTC)
    alive = [w for w in workers
             if w.stopped_at is None and now - w.last_seen_at <= max_silence]
    if alive:
        return _ok("worker", f"{len(alive)} worker(s) alive: "
                   + ", ".join(w.worker_id for w in alive))
    seen = f"; last seen {workers[0].last_seen_at:%Y-%m-%d %H:%M:%S} UTC" if workers else ""
    return _fail("worker", f"no worker heartbeat in the last "
                 f"{int(max_silence.total_seconds())} s{seen}",
                 "start one: `rendio worker` (paid jobs stay pending without one)")


def _database_checks(db_url: str | None, migrations_dir: Path) -> list[Check]:
    if db_url is None:
        why = "needs a database URL (--db-url or RENDIO_DB_URL)"
        return [_skip("migrations", why), _skip("lint", why)]
    # Imported here: the API checks must not need psycopg's setup.
    from .dbtools.errors import DbToolsError
    from .dbtools.lint import failing, lint
    from .dbtools.migrations import status

    try:
        entries = status(db_url, migrations_dir)
    except DbToolsError as exc:
        fix = "check --db-url / RENDIO_DB_URL and that the database is running"
        return [_fail("migrations", str(exc), fix), _skip("lint", "needs the database")]
    checks = [_migrations(entries)]
    try:
        bad = failing(lint(db_url), "warn")
    except DbToolsError as exc:
        checks.append(_fail("lint", str(exc), "check --db-url / RENDIO_DB_URL"))
        return checks
    if bad:
        names = ", ".join(dict.fromkeys(r.name for r in bad))
        checks.append(_fail("lint", f"{len(bad)} finding(s) at WARN or ERROR: {names}",
                            "run `rendio db lint --db-url URL` for each finding's remediation"))
    else:
        checks.append(_ok("lint", "no finding at WARN or ERROR"))
    return checks


def _migrations(entries: list[StatusEntry]) -> Check:
    edited = [e for e in entries if e.state in ("changed", "missing_local")]
    pending = [e for e in entries if e.state == "pending"]
    if edited:
        return _fail("migrations", ", ".join(f"{e.version} is {e.state}" for e in edited),
                     "an applied migration was edited or deleted: restore it and add a new "
                     "migration for the change")
    if pending:
        return _fail("migrations", f"{len(pending)} pending: "
                     + ", ".join(e.filename or e.version for e in pending),
                     "run `rendio db migrate --db-url URL` (hosted: `supabase db push`)")
    return _ok("migrations", f"all {len(entries)} applied")
