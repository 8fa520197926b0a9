"""`rendio demo`: the main job end to end against the local stack.

Brings the stack up (migrations applied), then runs `rendio_backend.scenarios.demo`
and prints its report.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from . import _console

if TYPE_CHECKING:
    from rendio_backend.scenarios.demo import DemoReport


def demo(
    state_dir: Annotated[Optional[Path], typer.Option(  # noqa: UP045 (typer needs Optional)
        "--state-dir", metavar="DIR",
        help="Where the stack keeps its data (env RENDIO_STATE_DIR).")] = None,
) -> None:
    """Start the local stack and run one guest through a generation and a refund."""
    from rendio_backend.local.config import StackConfig
    from rendio_backend.local.stack import Stack
    from rendio_backend.project import find_project
    from rendio_backend.scenarios.demo import run_demo

    from .dev import left_running

    stack = Stack(StackConfig.from_env(state_dir=state_dir))
    try:
        stack.up(migrations_dir=find_project().migrations_to_apply(), on_step=_console.info)
    except KeyboardInterrupt:
        left_running(stack)
        raise typer.Exit(130) from None
    report = run_demo(stack.config.rendio_config())
    _show(report)
    if report.violations:
        _console.error(f"ledger invariants violated: {report.violations}")
        raise typer.Exit(1)
    _console.success("ledger invariants hold for every user")


def _show(report: DemoReport) -> None:
    from rich.table import Table

    say = _console.out.print
    say(f"[bold]Local stack[/bold] at {report.api_url}")
    say(f"buckets: {report.buckets.summary()}")
    say(f"models:  {report.models_seeded.summary()}")
    say(f"\n[bold]Guest[/bold] {report.user_id} signed in anonymously")
    say(f"initial grant for {report.device_id}: {report.first_grant}; "
        f"again for the same device: {report.second_grant}")
    table = Table("model", "provider model", "credits", "featured")
    for model in report.models:
        table.add_row(model.name, model.provider_model_id or "-",
                      str(model.cost_per_generation), "yes" if model.is_featured else "")
    say(table)
    job, replay = report.job, report.replay
    say(f"\ngenerate with {report.models[0].name}: job {job.job_id} {job.status.value}, "
        f"{job.credits_used} credits used, {job.credits_remaining} left")
    say(f"same Idempotency-Key again: job {replay.job_id}, replayed={replay.replayed}, "
        f"{replay.credits_remaining} left (charged once)")
    say(f"provider failed: refunded {report.failure.credits_refunded}; "
        f"failing it again refunds {report.failure_again.credits_refunded}")
    balance = report.balance
    say(f"\nbalance {balance.credits_remaining} (lifetime earned "
        f"{balance.credits_total}), guest={balance.is_guest}")
    history = Table("change", "reason", "balance after")
    for row in report.history:
        history.add_row(f"{row.change:+d}", row.reason.value, str(row.balance_after))
    say(history)
