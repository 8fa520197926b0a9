"""`rendio jobs`: list, show and retry video jobs of any user (service role)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from . import _console, _options
from ._options import AnonKey, Cursor, Json, Limit, ServiceRoleKey, Url

if TYPE_CHECKING:
    from rendio_backend.models import VideoJob

app = typer.Typer(help="Video jobs: list, show, retry a failed one.", no_args_is_help=True)

_STATUSES = ("pending", "processing", "completed", "failed")


def _status(value: str | None) -> str | None:
    if value is not None and value not in _STATUSES:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(_STATUSES)}")
    return value


JobId = Annotated[str, typer.Argument(metavar="ID", help="The job's id.")]


@app.command("list")
def list_jobs(
    user: Annotated[str | None, typer.Option(
        "--user", metavar="ID", help="Only this user's jobs.")] = None,
    status: Annotated[str | None, typer.Option(
        "--status", metavar="|".join(_STATUSES), callback=_status,
        help="Only jobs in this state.")] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
    url: Url = None, anon_key: AnonKey = None, service_role_key: ServiceRoleKey = None,
    as_json: Json = False,
) -> None:
    """Jobs of every user, newest first (deleted ones too), optionally filtered.

    \b
    Example:
      rendio jobs list --status failed --limit 10
    """
    from rich.text import Text

    with _options.admin(url, anon_key, service_role_key) as admin:
        page = admin.list_jobs(user_id=user, status=status, limit=limit, cursor=cursor)
    if as_json:
        _console.print_json(page.model_dump(mode="json"))
        return
    table = _options.table("job", "user", "status", "credits", "created", "prompt", wrap="prompt")
    for job in page.items:
        prompt = job.prompt if len(job.prompt) <= 40 else job.prompt[:39] + "…"
        table.add_row(Text(str(job.job_id)), Text(str(job.user_id)), job.status.value,
                      str(job.credits_used), f"{job.created_at:%Y-%m-%d %H:%M:%S}",
                      Text(prompt))
    _options.print_table(table)
    if page.next_cursor:
        _console.info(f"more: --cursor {page.next_cursor}")


@app.command()
def show(
    job_id: JobId,
    url: Url = None, anon_key: AnonKey = None, service_role_key: ServiceRoleKey = None,
    as_json: Json = False,
) -> None:
    """Every field of one job: status, provider request, lease, files, error.

    \b
    Example:
      rendio jobs show 0b7f5a4e-1d2c-4e3f-8a9b-7c6d5e4f3a2b --json
    """
    with _options.admin(url, anon_key, service_role_key) as admin:
        job = admin.get_job(job_id)
    _print_job(job, as_json)


@app.command()
def retry(
    job_id: JobId,
    url: Url = None, anon_key: AnonKey = None, service_role_key: ServiceRoleKey = None,
    as_json: Json = False,
) -> None:
    """Retry a FAILED job as a NEW job, charged again, for the same user, model, prompt
    and settings.

    A failed job was refunded and stays failed: its ledger rows are final, so it is
    never revived. The new job goes through the usual checks (enough credits, model
    available, jobs in flight) and a worker picks it up. Its idempotency key is
    derived from the failed job, so running the command twice (within the key's 24
    hours) answers the same new job and charges once. Pending, processing, completed
    and user-deleted jobs are refused (exit 1).

    \b
    Example:
      rendio jobs retry 0b7f5a4e-1d2c-4e3f-8a9b-7c6d5e4f3a2b
    """
    with _options.admin(url, anon_key, service_role_key) as admin:
        created = admin.retry_job(job_id)
    if as_json:
        _console.print_json({"retried": job_id, **created.model_dump(mode="json")})
        return
    print(created.job_id)
    if created.replayed:
        _console.info(f"already retried: job {created.job_id} (not charged again)")
    else:
        _console.success(f"new job {created.job_id} {created.status.value}: "
                         f"{created.credits_used} credit(s) charged, "
                         f"{created.credits_remaining} left")


def _print_job(job: VideoJob, as_json: bool) -> None:
    if as_json:
        _console.print_json(job.model_dump(mode="json"))
    else:
        _options.show_fields(job.model_dump(mode="json"))
