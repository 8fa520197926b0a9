"""What a flow saw: steps (expected vs observed) gathered into a report."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from ..errors import RendioError


@dataclass(frozen=True)
class Step:
    """One check of a flow: what the spec expects, what the system did."""

    name: str
    expected: str
    observed: str
    ok: bool

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "expected": self.expected, "observed": self.observed,
                "ok": self.ok}


@dataclass
class FlowReport:
    """A flow's steps; `skipped` says why it could not run here (a skip is not a failure)."""

    flow: str
    steps: list[Step] = field(default_factory=list)
    duration: float = 0.0
    skipped: str | None = None
    error: str | None = None
    # Things worth showing afterwards, e.g. a signed URL of a video the flow made.
    links: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None and all(step.ok for step in self.steps)

    @property
    def failed_steps(self) -> list[Step]:
        return [step for step in self.steps if not step.ok]

    def to_dict(self) -> dict[str, Any]:
        return {"flow": self.flow, "ok": self.ok, "duration": round(self.duration, 3),
                "skipped": self.skipped, "error": self.error, "links": self.links,
                "steps": [step.to_dict() for step in self.steps]}


class Skip(Exception):
    """Raised by a flow that cannot run against this project (the reason is reported)."""


class Recorder:
    """Collects a flow's steps; every check returns whether it held."""

    def __init__(self, flow: str) -> None:
        self.report = FlowReport(flow)
        self._started = time.monotonic()

    def check(self, name: str, expected: str, observed: str, ok: bool) -> bool:
        self.report.steps.append(Step(name, expected, observed, ok))
        return ok

    def equal(self, name: str, expected: object, observed: object) -> bool:
        return self.check(name, str(expected), str(observed), expected == observed)

    async def refused(self, name: str, wanted: str | tuple[str | type[RendioError], ...],
                      call: Awaitable[Any], *, expected: str | None = None
                      ) -> RendioError | None:
        """Run `call`; the step holds when it fails with one of `wanted`: error codes
        (`RendioError.code`) or error classes."""
        kinds = (wanted,) if isinstance(wanted, str) else wanted
        expected = expected or "refused: " + " or ".join(
            kind if isinstance(kind, str) else kind.default_code for kind in kinds)
        try:
            result = await call
        except RendioError as exc:
            ok = any(exc.code == kind if isinstance(kind, str) else isinstance(exc, kind)
                     for kind in kinds)
            self.check(name, expected, f"refused: {exc.code} ({exc.http_status})", ok)
            return exc
        self.check(name, expected, f"accepted: {_short(result)}", False)
        return None

    def finish(self) -> FlowReport:
        self.report.duration = time.monotonic() - self._started
        return self.report


def _short(value: object, limit: int = 80) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
