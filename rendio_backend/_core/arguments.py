"""Caller arguments checked and converted into what the SQL functions take."""

from __future__ import annotations

import uuid
from datetime import timedelta

from ..errors import InvalidRequest
from ..models import CreditReason, JobStatus


def as_uuid(value: uuid.UUID | str, field: str) -> uuid.UUID:
    """`value` as a UUID, or InvalidRequest naming `field`."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidRequest(f"{field} must be a UUID", code="invalid_request",
                             details={"field": field}) from None


def credit_reason(reason: str) -> str:
    """A valid quota_log reason, or InvalidRequest."""
    try:
        return CreditReason(reason).value
    except ValueError:
        raise InvalidRequest(f"unknown credit reason {reason!r}",
                             details={"field": "reason"}) from None


def job_status(status: str) -> str:
    """A valid job status, or InvalidRequest."""
    try:
        return JobStatus(status).value
    except ValueError:
        choices = ", ".join(s.value for s in JobStatus)
        raise InvalidRequest(f"unknown job status {status!r} (one of {choices})",
                             details={"field": "status"}) from None


def interval(value: timedelta | float | int, field: str) -> str:
    """A PostgreSQL interval literal for a timedelta or a number of seconds."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 0:
        raise InvalidRequest(f"{field} must not be negative", details={"field": field})
    return f"{seconds:.6f} seconds"
