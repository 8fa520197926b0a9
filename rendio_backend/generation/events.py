"""Structured logs of the pipeline: one JSON line per job transition.

Every transition (claimed, submitted, completed, failed, released, ...) is one record of
the `rendio.generation` logger whose `extra` carries the job id, the provider and how
long the step took; `JsonFormatter` writes it as one line, so a log shipper can index
it without parsing prose. `rendio worker` installs the formatter on stderr.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from ..models import VideoJob

log = logging.getLogger("rendio.generation")

# LogRecord's own attributes: everything else on a record came from `extra`.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime"}


def job_event(event: str, job: VideoJob, *, provider: str | None,
              started: float | None = None, level: int = logging.INFO,
              **fields: Any) -> None:
    """Log one transition of `job`; `started` (time.monotonic()) gives `duration_ms`."""
    extra: dict[str, Any] = {"event": event, "job_id": str(job.job_id),
                             "provider": provider or job.provider}
    if started is not None:
        extra["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
    extra["age_ms"] = round((datetime.now(UTC) - job.created_at).total_seconds() * 1000, 1)
    extra.update({key: value for key, value in fields.items() if value is not None})
    log.log(level, event, extra=extra)


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "event"/"message", ...extra}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        extra = {k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS}
        if "event" not in extra:
            line["message"] = record.getMessage()
        line.update(extra)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)
