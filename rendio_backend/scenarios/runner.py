"""Run flows by name and gather their reports."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from types import ModuleType

from ..config import RendioConfig
from . import (
    FLOW_NAMES,
    apple_link,
    failure_refund,
    generate,
    idempotency,
    insufficient_credits,
    load,
    onboarding,
    purchase,
    rate_limit,
    security,
)
from ._context import Context, SimulationOptions, error_text
from ._report import FlowReport, Recorder, Skip

_MODULES: tuple[ModuleType, ...] = (
    onboarding, generate, failure_refund, idempotency, insufficient_credits, rate_limit,
    purchase, apple_link, security, load)
FLOWS: dict[str, Callable[[Context, Recorder], Awaitable[None]]] = {
    module.NAME: module.run for module in _MODULES}
SUMMARIES: dict[str, str] = {module.NAME: module.SUMMARY for module in _MODULES}
assert tuple(FLOWS) == FLOW_NAMES


async def run_flow(name: str, config: RendioConfig,
                   options: SimulationOptions | None = None) -> FlowReport:
    """One flow's report. It never raises for what the system did: an unexpected error
    is the report's `error` (so the flow fails), a missing prerequisite its `skipped`."""
    options = options or SimulationOptions()
    rec = Recorder(name)
    try:
        ctx = Context(config, options)
    except Skip as skip:
        rec.report.skipped = str(skip)
        return rec.finish()
    try:
        await FLOWS[name](ctx, rec)
    except Skip as skip:
        rec.report.skipped = str(skip)
    except Exception as exc:  # the flow stopped early: that is its failure
        rec.report.error = error_text(exc)
    finally:
        await ctx.close()
    return rec.finish()


async def run_flows(names: Sequence[str], config: RendioConfig,
                    options: SimulationOptions | None = None,
                    on_done: Callable[[FlowReport], None] | None = None) -> list[FlowReport]:
    """The flows one after the other (each on fresh guests), in `names`' order."""
    reports = []
    for name in names:
        report = await run_flow(name, config, options)
        if on_done is not None:
            on_done(report)
        reports.append(report)
    return reports
