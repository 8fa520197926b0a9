"""`rendio chaos`: the chaos campaign (`rendio_backend.local.chaos`).

By default on a fresh local stack in a temporary folder, on free ports, stopped and
removed at the end (kept when a check failed, for its logs); `--running` uses the
stack of `rendio dev up` instead (its Auth rate limits must allow the guests).
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from . import _console, _options

if TYPE_CHECKING:
    from rendio_backend.local.chaos import ChaosReport


def chaos(
    users: Annotated[int, typer.Option("--users", min=1, help="Guests.")] = 200,
    generations: Annotated[int, typer.Option(
        "--generations", min=1, help="Generations per guest.")] = 10,
    seed: Annotated[Optional[int], typer.Option(  # noqa: UP045 (typer needs Optional)
        "--seed", help="Makes the random choices reproducible (default: a random one, "
        "printed).")] = None,
    workers: Annotated[int, typer.Option(
        "--workers", min=1, help="Generation worker processes (killed at random).")] = 2,
    worker_concurrency: Annotated[int, typer.Option(
        "--worker-concurrency", min=1, help="Jobs each worker handles at once.")] = 8,
    deadline: Annotated[float, typer.Option(
        "--deadline", min=2.0, metavar="SECONDS",
        help="Job deadline: what never finishes is failed and refunded after it.")] = 20.0,
    running: Annotated[bool, typer.Option(
        "--running", help="Use the running local stack instead of a fresh one.")] = False,
    json_output: _options.Json = False,
) -> None:
    """Generate under faults, then check nothing was lost or charged twice.

    USERS × GENERATIONS jobs with a random mix of provider outcomes, duplicate and late
    webhooks, client retries with the same Idempotency-Key, purchases and refund
    notifications, while workers are SIGKILLed and restarted and the gateway and
    PostgREST are restarted once each. Exit 1 when any check fails.

    Example: rendio chaos --users 20 --generations 5 --seed 7
    """
    from rendio_backend.local.chaos import ChaosOptions, run_campaign

    if seed is None:
        seed = secrets.randbelow(10**6)
    options = ChaosOptions(users=users, generations=generations, seed=seed, workers=workers,
                           worker_concurrency=worker_concurrency, deadline_seconds=deadline,
                           on_step=_console.info)
    _console.info(f"chaos campaign: {users} users × {generations} generations, seed {seed}, "
                  f"{workers} worker(s)")
    stack = None
    if running:
        from rendio_backend.local.config import StackConfig
        from rendio_backend.local.errors import StackError
        from rendio_backend.local.stack import Stack

        stack = Stack(StackConfig.from_env())
        if not stack.gateway.ready():
            raise StackError(f"no local stack answers at {stack.config.api_url}: start it "
                             "with `rendio dev up` (or leave out --running)")
    report = run_campaign(options, stack=stack)
    if json_output:
        _console.print_json(report.to_dict())
    else:
        show(report)
    if not report.ok:
        failed = [c.name for c in report.checks if not c.ok]
        _console.error(f"chaos campaign (seed {seed}): {len(failed)} check(s) failed: "
                       + "; ".join(failed))
        raise typer.Exit(1)
    _console.success(f"chaos campaign (seed {seed}): every check passed "
                     f"({report.duration:.0f} s)")


def show(report: ChaosReport) -> None:
    from rich.table import Table

    say = _console.out.print
    options = report.options
    say(f"[bold]chaos[/bold]: {options['users']} users × {options['generations']} "
        f"generations, seed {options['seed']}, {options['workers']} workers, deadline "
        f"{options['deadline_seconds']:g} s; {report.duration:.0f} s "
        f"(clients {report.client_phase:.0f} s)")
    say("jobs: " + ", ".join(f"{n} {status}" for status, n in report.jobs_by_status.items()))
    outcomes = Table("outcome asked of the provider", "completed", "failed",
                     title_justify="left", expand=False)
    for label, counts in report.outcomes.items():
        outcomes.add_row(label, str(counts.get("completed", 0)), str(counts.get("failed", 0)))
    say(outcomes)
    say("failure reasons: " + (", ".join(f"{n} {reason}" for reason, n in sorted(
        report.failure_reasons.items())) or "none"), markup=False)
    say("counts: " + ", ".join(f"{name} {n}" for name, n in sorted(report.counts.items())),
        markup=False)
    checks = Table("check", "", "detail", expand=False)
    for check in report.checks:
        checks.add_row(check.name, "[green]✓[/green]" if check.ok else "[red]✗[/red]",
                       check.detail)
    say(checks)
