"""`rendio maintenance`: the sweeper, stray files, the idempotency-key purge, the archive.

Each step is one SQL function (pg_cron can schedule them on hosted Supabase, see the
README) called with the service role, like the workers do, on the project the other
operator commands use: --url / --service-role-key, else SUPABASE_URL /
SUPABASE_SECRET_KEY (environment or .env), else the project's local stack.
Removing stray files and archiving go through the Storage API, which SQL cannot do.
One line per step says what it did; `--json` prints one object instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from . import _console, _options
from ._options import AnonKey, ServiceRoleKey, Url

if TYPE_CHECKING:
    from rendio_backend import RendioAdmin

app = typer.Typer(
    help="Maintenance: fail stuck jobs, remove stray files, purge expired idempotency keys, "
    "archive old jobs.",
    no_args_is_help=True,
)

StuckAfter = Annotated[str, typer.Option(
    "--stuck-after", metavar="AGE",
    help="Fail and refund unfinished jobs created longer ago than AGE (e.g. 2h, 90m); "
    "jobs past their deadline are failed anyway.")]
ArchiveAfter = Annotated[str, typer.Option(
    "--archive-after", metavar="AGE",
    help="Archive finished jobs created longer ago than AGE (e.g. 90d) and remove their "
    "files.")]
StrayWithin = Annotated[str, typer.Option(
    "--strays-within", metavar="AGE",
    help="Look for stray files among jobs that finished within AGE (e.g. 7d).")]
Json = Annotated[bool, typer.Option("--json", help="Print plain JSON on stdout.")]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_AGE = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_age(text: str, option: str) -> timedelta:
    """`90d`, `2h`, `1h30m`, `45s` as a timedelta; a usage error (exit 2) otherwise."""
    value = text.strip().lower()
    if not value or _AGE.sub("", value):
        raise typer.BadParameter(f"{text!r} is not an age such as 90d, 2h, 1h30m or 45s",
                                 param_hint=option)
    return timedelta(seconds=sum(float(n) * _UNITS[unit] for n, unit in _AGE.findall(value)))


Say = Callable[[str], None]


def _fail_stuck(admin: RendioAdmin, say: Say, age: timedelta, text: str) -> dict[str, Any]:
    failed = admin.fail_stuck_jobs(age)
    say(f"fail-stuck: {failed} job(s) failed and refunded (past their deadline, created "
        f"over {text} ago, or claimed too often)")
    return {"jobs_failed": failed, "stuck_after_seconds": age.total_seconds()}


def _remove_strays(admin: RendioAdmin, say: Say, age: timedelta, text: str) -> dict[str, Any]:
    report = admin.remove_stray_files(age)
    line = (f"remove-strays: {len(report.files_removed)} stray file(s) of jobs finished "
            f"within {text} removed through Storage")
    if report.files_missing:
        line += f", {report.files_missing} already gone"
    say(line)
    return {"strays_within_seconds": age.total_seconds(), **report.model_dump(mode="json")}


def _purge_keys(admin: RendioAdmin, say: Say) -> dict[str, Any]:
    purged = admin.purge_expired_idempotency_keys()
    say(f"purge-keys: {purged} expired idempotency key(s) deleted")
    return {"keys_purged": purged}


def _archive(admin: RendioAdmin, say: Say, age: timedelta, text: str) -> dict[str, Any]:
    report = admin.archive_old_jobs(age)
    line = (f"archive: {report.jobs_archived} finished job(s) created over {text} ago "
            f"archived; {len(report.files_removed)} file(s) removed through Storage")
    if report.files_missing:
        line += f", {report.files_missing} already gone"
    say(line)
    for name in report.files_invalid:
        _console.warning(f"archive: {name} is no Storage path; dropped from the queue")
    return {"archive_after_seconds": age.total_seconds(), **report.model_dump(mode="json")}


@contextmanager
def _session(as_json: bool, url: str | None, anon_key: str | None,
             service_role_key: str | None) -> Iterator[tuple[RendioAdmin, Say, dict[str, Any]]]:
    """The admin of the project the options name (see `_options.config`), a line printer
    (silent under --json) and the results to print as JSON."""
    results: dict[str, Any] = {}

    def say(line: str) -> None:
        if not as_json:
            _console.out.print(line, markup=False, soft_wrap=True)

    with _options.admin(url, anon_key, service_role_key) as admin:
        yield admin, say, results
    if as_json:
        _console.print_json(results)


@app.command()
def run(
    stuck_after: StuckAfter = "2h",
    strays_within: StrayWithin = "7d",
    archive_after: ArchiveAfter = "90d",
    url: Url = None, anon_key: AnonKey = None, service_role_key: ServiceRoleKey = None,
    as_json: Json = False,
) -> None:
    """Run every step: fail-stuck, remove-strays, purge-keys, then archive.

    \b
    Example:
      rendio maintenance run --stuck-after 2h --archive-after 90d --json
    """
    stuck = parse_age(stuck_after, "--stuck-after")
    within = parse_age(strays_within, "--strays-within")
    old = parse_age(archive_after, "--archive-after")
    with _session(as_json, url, anon_key, service_role_key) as (admin, say, results):
        results["fail_stuck"] = _fail_stuck(admin, say, stuck, stuck_after)
        results["remove_strays"] = _remove_strays(admin, say, within, strays_within)
        results["purge_keys"] = _purge_keys(admin, say)
        results["archive"] = _archive(admin, say, old, archive_after)


@app.command("fail-stuck")
def fail_stuck(
    stuck_after: StuckAfter = "2h",
    url: Url = None, anon_key: AnonKey = None, service_role_key: ServiceRoleKey = None,
    as_json: Json = False,
) -> None:
    """Fail and refund (exactly once) jobs that will not finish.

    \b
    Example:
      rendio maintenance fail-stuck --stuck-after 30m
    """
    stuck = parse_age(stuck_after, "--stuck-after")
    with _session(as_json, url, anon_key, service_role_key) as (admin, say, results):
        results["fail_stuck"] = _fail_stuck(admin, say, stuck, stuck_after)


@app.command("remove-strays")
def remove_strays(
    strays_within: StrayWithin = "7d",
    url: Url = None, anon_key: AnonKey = None, service_role_key: ServiceRoleKey = None,
    as_json: Json = False,
) -> None:
    """Remove files stored for finished jobs that the jobs do not hold.

    A failed job's video left by a worker killed before its cleanup, say. Workers do
    this for the last hour on every sweep; this looks further back.

    \b
    Example:
      rendio maintenance remove-strays --strays-within 30d
    """
    within = parse_age(strays_within, "--strays-within")
    with _session(as_json, url, anon_key, service_role_key) as (admin, say, results):
        results["remove_strays"] = _remove_strays(admin, say, within, strays_within)


@app.command("purge-keys")
def purge_keys(
    url: Url = None, anon_key: AnonKey = None, service_role_key: ServiceRoleKey = None,
    as_json: Json = False,
) -> None:
    """Delete idempotency keys past their 24 hours.

    \b
    Example:
      rendio maintenance purge-keys --json
    """
    with _session(as_json, url, anon_key, service_role_key) as (admin, say, results):
        results["purge_keys"] = _purge_keys(admin, say)


@app.command()
def archive(
    archive_after: ArchiveAfter = "90d",
    url: Url = None, anon_key: AnonKey = None, service_role_key: ServiceRoleKey = None,
    as_json: Json = False,
) -> None:
    """Archive old finished jobs; remove their files (and any a pg_cron run queued).

    \b
    Example:
      rendio maintenance archive --archive-after 180d
    """
    old = parse_age(archive_after, "--archive-after")
    with _session(as_json, url, anon_key, service_role_key) as (admin, say, results):
        results["archive"] = _archive(admin, say, old, archive_after)
