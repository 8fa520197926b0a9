"""`rendio worker`: a generation worker against any Supabase (configured like the
library: SUPABASE_* and the providers' settings from the environment / .env)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from . import _console


def worker(
    concurrency: Annotated[int, typer.Option(
        "--concurrency", "-c", min=1, envvar="RENDIO_WORKER_CONCURRENCY", show_envvar=True,
        help="Jobs handled at once.")] = 4,
    once: Annotated[bool, typer.Option(
        "--once", help="Submit what is pending, poll what is processing once, then exit.")]
    = False,
    poll_interval: Annotated[float, typer.Option(
        "--poll-interval", min=0.01, metavar="SECONDS",
        help="Between two polls of one processing job.")] = 10.0,
    lease: Annotated[float, typer.Option(
        "--lease", min=0.01, metavar="SECONDS",
        help="How long a claimed job is this worker's while it submits it.")] = 300.0,
    finish_lease: Annotated[float, typer.Option(
        "--finish-lease", min=0.01, metavar="SECONDS",
        help="How long a finished job is this worker's while it stores the video.")] = 300.0,
    idle_interval: Annotated[float, typer.Option(
        "--idle-interval", min=0.01, metavar="SECONDS",
        help="Sleep between claims when there is nothing to do.")] = 1.0,
    sweep_interval: Annotated[float, typer.Option(
        "--sweep-interval", min=0, metavar="SECONDS",
        help="Fail and refund stuck jobs this often (0: leave it to pg_cron).")] = 60.0,
    grace: Annotated[float, typer.Option(
        "--grace", min=0, metavar="SECONDS",
        help="On SIGTERM/SIGINT, how long steps in flight may finish.")] = 20.0,
    backoff_max: Annotated[float, typer.Option(
        "--backoff-max", min=0.01, metavar="SECONDS",
        help="Longest wait between two submission retries.")] = 30.0,
    webhook_base: Annotated[Optional[str], typer.Option(  # noqa: UP045 (typer needs Optional)
        "--webhook-base", metavar="URL", envvar="RENDIO_WEBHOOK_BASE_URL", show_envvar=True,
        help="Where providers send webhooks, + /<provider> (default: "
        "SUPABASE_URL/functions/v1/webhooks).")] = None,
    no_webhooks: Annotated[bool, typer.Option(
        "--no-webhooks", help="Send no webhook URL: finish jobs by polling only.")] = False,
) -> None:
    """Run a generation worker: submit paid jobs to their provider, store the videos,
    fail and refund what cannot finish. Logs one JSON line per job transition (stderr).

    Run as many as you like, anywhere, against the same Supabase. SIGTERM/SIGINT stop it
    gracefully (a second one at once).

    \b
    Example:
      rendio worker --concurrency 8
    """
    import asyncio
    import json
    import logging

    from rendio_backend import AsyncRendioAdmin, RendioConfig
    from rendio_backend.generation.events import JsonFormatter
    from rendio_backend.generation.worker import Worker, WorkerSettings, pause_from_env

    config = RendioConfig.from_env()  # fail here, in one line, when misconfigured
    settings = WorkerSettings(
        concurrency=concurrency, claim_lease=lease, poll_interval=poll_interval,
        finish_lease=finish_lease, idle_interval=idle_interval, sweep_interval=sweep_interval,
        grace=grace, backoff_max=backoff_max, webhook_base=webhook_base,
        webhooks=not no_webhooks)
    pause = pause_from_env()
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("rendio")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    async def main() -> dict[str, int]:
        async with AsyncRendioAdmin(config) as admin:
            stats = await Worker(admin, settings=settings, pause=pause).run(
                once=once, handle_signals=True)
        return dict(vars(stats))

    _console.info(f"worker for {config.base_url}, concurrency {concurrency}"
                  + (", once" if once else ""))
    stats = asyncio.run(main())
    if once:
        print(json.dumps(stats, separators=(",", ":")))
