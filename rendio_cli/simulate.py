"""`rendio simulate FLOW|all`: play client flows against the local stack or any Supabase.

Without `--url` (nor SUPABASE_URL) the target is the local stack, and the flows get its
fakes' signers (DeviceCheck tokens, StoreKit's test chain, the fake Apple issuer); a
hosted project has none, so the flows needing them are skipped with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from rendio_backend.scenarios import FLOW_NAMES

from . import _console, _options

if TYPE_CHECKING:
    from rendio_backend.config import RendioConfig
    from rendio_backend.local.config import StackConfig
    from rendio_backend.scenarios._context import SimulationOptions
    from rendio_backend.scenarios._report import FlowReport

ALL = "all"


@dataclass(frozen=True)
class Target:
    config: RendioConfig
    # What only Apple makes, from the local stack's fakes (empty for other projects).
    signers: dict[str, Any]
    local: bool


def local_target(stack: StackConfig) -> Target:
    """The local stack's settings and its fakes' signers."""
    from rendio_backend.local.fake_apple import FakeAppleIssuer
    from rendio_backend.local.fakes.devicecheck import fake_device_token
    from rendio_backend.local.fakes.storekit import StoreKitSigner

    issuer = FakeAppleIssuer(stack)

    def apple_id_token(sub: str, nonce: str) -> str:
        return issuer.mint_id_token(sub=sub, nonce=nonce)

    return Target(stack.rendio_config(), local=True, signers={
        "device_tokens": fake_device_token, "storekit": StoreKitSigner.for_stack(stack),
        "apple_id_tokens": apple_id_token})


def _target(url: str | None, anon_key: str | None, service_role_key: str | None) -> Target:
    stack = _options.local_stack(url)
    if stack is not None:
        import httpx

        from rendio_backend.local.errors import StackError

        try:
            httpx.get(f"{stack.api_url}/functions/v1/health", timeout=5).raise_for_status()
        except httpx.HTTPError:
            raise StackError(f"no local stack answers at {stack.api_url}: start it with "
                             "`rendio dev up` (or pass --url for another project)") from None
        return local_target(stack)
    return Target(_options.config(url, anon_key, service_role_key), signers={}, local=False)


def run(target: Target, names: tuple[str, ...], options: SimulationOptions,
        *, quiet: bool = False) -> list[FlowReport]:
    """Run the flows with a progress bar on stderr (when it is a terminal)."""
    import asyncio
    from dataclasses import replace

    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from rendio_backend.scenarios.runner import run_flows

    options = replace(options, **target.signers)
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                        TextColumn("{task.completed}/{task.total} flows"), TimeElapsedColumn(),
                        console=_console.err, transient=True, redirect_stdout=False,
                        redirect_stderr=False,
                        disable=quiet or not _console.err.is_terminal)
    with progress:
        task = progress.add_task(names[0], total=len(names))
        current = {"flow": names[0]}

        def on_step(message: str) -> None:
            progress.update(task, description=f"{current['flow']}: {message}")

        def on_done(report: FlowReport) -> None:
            progress.advance(task)
            index = names.index(report.flow) + 1
            if index < len(names):
                current["flow"] = names[index]
                progress.update(task, description=names[index])

        return asyncio.run(run_flows(names, target.config, replace(options, on_step=on_step),
                                     on_done=on_done))


def show(reports: list[FlowReport]) -> None:
    """A table per flow (stdout) and a summary line (stderr)."""
    from rich.table import Table

    from rendio_backend.scenarios.runner import SUMMARIES

    for report in reports:
        table = Table("step", "expected", "observed", "", title=f"[bold]{report.flow}[/bold]: "
                      f"{SUMMARIES[report.flow]}", title_justify="left", expand=False)
        for step in report.steps:
            table.add_row(step.name, step.expected, step.observed,
                          "[green]✓[/green]" if step.ok else "[red]✗[/red]")
        if report.error is not None:
            table.add_row("(stopped)", "the flow runs to its end", report.error, "[red]✗[/red]")
        if report.skipped is not None:
            _console.out.print(f"[bold]{report.flow}[/bold]: skipped: ", end="")
            _console.out.print(report.skipped, markup=False)
            continue
        _console.out.print(table)
        failed = len(report.failed_steps) + (report.error is not None)
        verdict = "[green]as specified[/green]" if report.ok else f"[red]{failed} differ[/red]"
        _console.out.print(f"{len(report.steps)} steps, {verdict} ({report.duration:.1f} s)\n")


def summary(reports: list[FlowReport]) -> bool:
    """One line on stderr; True when every flow that ran is as specified."""
    failed = [r.flow for r in reports if not r.ok]
    skipped = [r.flow for r in reports if r.skipped is not None]
    passed = len(reports) - len(failed) - len(skipped)
    line = (f"{len(reports)} flow(s): {passed} passed, {len(failed)} failed, "
            f"{len(skipped)} skipped ({', '.join(skipped)})" if skipped else
            f"{len(reports)} flow(s): {passed} passed, {len(failed)} failed")
    if failed:
        _console.error(f"{line}; differing from the spec: {', '.join(failed)}")
        return False
    _console.success(line)
    return True


def flow_names(flow: str) -> tuple[str, ...]:
    if flow == ALL:
        return FLOW_NAMES
    if flow not in FLOW_NAMES:
        raise typer.BadParameter(f"{flow!r} is not one of {', '.join((*FLOW_NAMES, ALL))}",
                                 param_hint="FLOW")
    return (flow,)


def options(users: int, concurrency: int, timeout: float, failure_prompt: str | None,
            slow_prompt: str | None) -> SimulationOptions:
    from rendio_backend.scenarios._context import SimulationOptions

    values: dict[str, Any] = {"users": users, "concurrency": concurrency,
                              "job_timeout": timeout}
    if failure_prompt is not None:
        values["failure_prompt"] = failure_prompt
    if slow_prompt is not None:
        values["slow_prompt"] = slow_prompt
    return SimulationOptions(**values)


def simulate(
    flow: Annotated[str, typer.Argument(
        metavar="FLOW|all", help=f"One of: {', '.join(FLOW_NAMES)}; or all.")],
    users: Annotated[int, typer.Option("--users", min=1, help="Guests of `load`.")] = 5,
    concurrency: Annotated[int, typer.Option(
        "--concurrency", min=1, help="Requests in flight at once (load, duplicates).")] = 4,
    timeout: Annotated[float, typer.Option(
        "--timeout", min=0.1, metavar="SECONDS",
        help="How long a generation may take to finish.")] = 30.0,
    failure_prompt: Annotated[Optional[str], typer.Option(  # noqa: UP045 (typer)
        "--failure-prompt", metavar="TEXT", help="A prompt the provider fails (default: the "
        "fake providers' `[fake:fail]`; give one your real provider refuses).")] = None,
    slow_prompt: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--slow-prompt", metavar="TEXT", help="A prompt that keeps a job running for a while "
        "(default: `[fake:latency-ms=1500]`; any prompt for a real provider).")] = None,
    json_output: _options.Json = False,
    url: _options.Url = None,
    anon_key: _options.AnonKey = None,
    service_role_key: _options.ServiceRoleKey = None,
) -> None:
    """Drive the system as the iOS app does and check every step against the spec.

    Example: rendio simulate all --users 20 --concurrency 8
    """
    names = flow_names(flow)
    target = _target(url, anon_key, service_role_key)
    _console.info(f"simulating {', '.join(names)} against {target.config.base_url}")
    reports = run(target, names, options(users, concurrency, timeout, failure_prompt,
                                         slow_prompt))
    if json_output:
        _console.print_json({"ok": all(r.ok for r in reports),
                             "url": target.config.base_url,
                             "flows": [r.to_dict() for r in reports]})
    else:
        show(reports)
    if not summary(reports):
        raise typer.Exit(1)
