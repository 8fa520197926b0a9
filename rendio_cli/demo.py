"""`rendio demo`: the first thing a newcomer runs.

Brings the local stack up if needed (migrations, a generation worker), provisions the
buckets and seeds the models, plays every client flow of `rendio simulate all` against
it, and ends with where to look next. A second run needs no reset: provisioning and
seeding are idempotent and every flow acts on fresh guests.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from . import _console, _options

if TYPE_CHECKING:
    from rendio_backend.local.config import StackConfig
    from rendio_backend.local.stack import Stack

DEMO_ANONYMOUS_SIGN_INS_PER_HOUR = 1000


def demo(
    state_dir: Annotated[Optional[Path], typer.Option(  # noqa: UP045 (typer needs Optional)
        "--state-dir", metavar="DIR",
        help="Where the stack keeps its data (env RENDIO_STATE_DIR).")] = None,
    users: Annotated[int, typer.Option("--users", min=1,
                                       help="Guests of the `load` flow.")] = 5,
    json_output: _options.Json = False,
) -> None:
    """Start the local stack and play every client flow against it.

    Example: rendio demo --json > demo.json
    """
    from rendio_backend import RendioAdmin
    from rendio_backend.local.config import StackConfig
    from rendio_backend.local.stack import Stack
    from rendio_backend.project import find_project
    from rendio_backend.scenarios import FLOW_NAMES
    from rendio_backend.scenarios._context import SimulationOptions

    from . import simulate
    from .dev import left_running

    # The demo's jobs need a worker, even where RENDIO_DEV_WORKER=0 left it out.
    stack = Stack(_demo_limits(StackConfig.from_env(state_dir=state_dir, run_worker=True)))
    try:
        stack.up(migrations_dir=find_project().migrations_to_apply(), on_step=_console.info)
    except KeyboardInterrupt:
        left_running(stack)
        raise typer.Exit(130) from None
    target = simulate.local_target(stack.config)
    with RendioAdmin(target.config) as admin:
        buckets = admin.provision_storage().summary()
        models = admin.seed_models().summary()
    _console.info(f"buckets: {buckets}; models: {models}")
    reports = simulate.run(target, FLOW_NAMES, SimulationOptions(users=users))
    video = next((r.links["video"] for r in reports if "video" in r.links), None)
    if json_output:
        _console.print_json({"ok": all(r.ok for r in reports), **_where(stack),
                             "buckets": buckets, "models": models, "video_url": video,
                             "flows": [r.to_dict() for r in reports]})
    else:
        simulate.show(reports)
        _next_steps(stack, video, buckets, models)
    if not simulate.summary(reports):
        raise typer.Exit(1)
    if any(r.flow == "load" and r.skipped is None for r in reports):
        # summary() passed, so the load flow, which checks the ledger, passed too.
        _console.success("ledger invariants hold for every user")


def _demo_limits(config: StackConfig) -> StackConfig:
    """Hosted Auth's 30 anonymous sign-ins per hour and address would stop a second run
    (each makes ~16 guests): a stack the demo starts allows more, unless
    RENDIO_AUTH_RATE_LIMIT_ANONYMOUS_USERS says otherwise. A gateway already running
    keeps the limits it started with."""
    from dataclasses import replace

    from rendio_backend.config import read_settings

    if read_settings().get("RENDIO_AUTH_RATE_LIMIT_ANONYMOUS_USERS"):
        return config
    limits = replace(config.auth.rate_limits, anonymous_users=max(
        config.auth.rate_limits.anonymous_users, DEMO_ANONYMOUS_SIGN_INS_PER_HOUR))
    return replace(config, auth=replace(config.auth, rate_limits=limits))


def _where(stack: Stack) -> dict[str, Any]:
    config = stack.config
    return {"api_url": config.api_url, "publishable_key": config.publishable_key,
            "secret_key": config.secret_key, "db_url": config.db_url}


def _next_steps(stack: Stack, video: str | None, buckets: str, models: str) -> None:
    say = _console.out.print
    where = _where(stack)
    say("[bold]Local stack[/bold]")
    for label, value in (
            ("buckets", buckets),
            ("models", models),
            ("API", f"{where['api_url']}  (/rest/v1, /auth/v1, /storage/v1, the app's "
                    "API at /functions/v1, docs at /functions/v1/docs)"),
            ("publishable key", where["publishable_key"]),
            ("secret key", where["secret_key"]),
            ("database", where["db_url"]),
            ("a video it made", f"{video}  (signed, valid 1 h)" if video else "none"),
            ("next", "rendio dev status · rendio dev logs worker · "
                     "rendio simulate all --users 20 · rendio dev down")):
        say(f"  {label:16} ", end="")
        say(value, markup=False, soft_wrap=True)
