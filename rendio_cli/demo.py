"""`rendio demo`: the main job end to end against the local stack.

Brings the stack up (migrations applied), provisions the buckets, seeds the model
catalog, then plays one guest's life through the library: anonymous sign-in, the initial
grant, a paid generation with an idempotent replay, a provider failure refunded exactly
once, and the ledger checked. Running it again is safe: every step is idempotent or
acts on a fresh guest.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import _console


def demo(
    state_dir: Annotated[Optional[Path], typer.Option(  # noqa: UP045 (typer needs Optional)
        "--state-dir", metavar="DIR",
        help="Where the stack keeps its data (env RENDIO_STATE_DIR).")] = None,
) -> None:
    """Start the local stack and run one guest through a generation and a refund."""
    from rich.table import Table

    from rendio_backend import RendioAdmin, RendioClient, RendioConfig
    from rendio_backend.local.config import StackConfig
    from rendio_backend.local.stack import Stack
    from rendio_backend.project import find_project

    from .dev import _left_running

    stack = Stack(StackConfig.from_env(state_dir=state_dir))
    try:
        stack.up(migrations_dir=find_project().migrations_to_apply(), on_step=_console.info)
    except KeyboardInterrupt:
        _left_running(stack)
        raise typer.Exit(130) from None
    config = stack.config
    settings = RendioConfig(supabase_url=config.api_url, anon_key=config.anon_key,
                            service_role_key=config.service_role_key)
    say = _console.out.print

    with RendioAdmin(settings) as admin, RendioClient(settings) as guest:
        say(f"[bold]Local stack[/bold] at {config.api_url}")
        say(f"buckets: {admin.provision_storage().summary()}")
        say(f"models:  {admin.seed_models().summary()}")

        guest.sign_in_anonymously()
        user_id = guest.user_id
        say(f"\n[bold]Guest[/bold] {user_id} signed in anonymously")
        # Stands in for POST /functions/v1/device/check (DeviceCheck-verified device).
        device = f"demo-device-{uuid.uuid4()}"
        say(f"initial grant for {device}: {admin.grant_initial_credits(user_id, device)}; "
            f"again for the same device: {admin.grant_initial_credits(user_id, device)}")

        table = Table("model", "provider model", "credits", "featured")
        models = guest.list_models()
        for model in models:
            table.add_row(model.name, model.provider_model_id or "-",
                          str(model.cost_per_generation), "yes" if model.is_featured else "")
        say(table)

        model = models[0]
        key = uuid.uuid4()
        prompt = "A paper boat drifting down a rainy street, cinematic"
        job = admin.create_job(user_id, model.id, prompt, idempotency_key=key)
        replay = admin.create_job(user_id, model.id, prompt, idempotency_key=key)
        say(f"\ngenerate with {model.name}: job {job.job_id} {job.status.value}, "
            f"{job.credits_used} credits used, {job.credits_remaining} left")
        say(f"same Idempotency-Key again: job {replay.job_id}, replayed={replay.replayed}, "
            f"{replay.credits_remaining} left (charged once)")

        failure = admin.fail_job(job.job_id, "provider error (demo)")
        again = admin.fail_job(job.job_id, "provider error (demo)")
        say(f"provider failed: refunded {failure.credits_refunded}; "
            f"failing it again refunds {again.credits_refunded}")

        balance = guest.get_balance()
        say(f"\nbalance {balance.credits_remaining} (lifetime earned "
            f"{balance.credits_total}), guest={balance.is_guest}")
        history = Table("change", "reason", "balance after")
        for row in reversed(guest.credit_history(limit=10).items):
            history.add_row(f"{row.change:+d}", row.reason.value, str(row.balance_after))
        say(history)

        violations = admin.verify_ledger()
        if violations:
            _console.error(f"ledger invariants violated: {violations}")
            raise typer.Exit(1)
        _console.success("ledger invariants hold for every user")
