"""Keyset pagination: opaque cursors and page sizes."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from ..errors import InvalidRequest
from ..models import Page, VideoJob

MAX_JOBS_PAGE = 50
# The largest page a caller may ask for (the SQL function get_my_credit_history may
# answer fewer rows than asked; the user client does not rely on its cap).
MAX_HISTORY_PAGE = 100


def _invalid_cursor() -> InvalidRequest:
    return InvalidRequest("invalid cursor", code="invalid_cursor", details={"field": "cursor"})


def encode_cursor(values: Mapping[str, Any]) -> str:
    """An opaque, URL-safe cursor."""
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, keys: Iterable[str]) -> dict[str, Any]:
    """The values of a cursor made by encode_cursor, or InvalidRequest."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        values = None
    wanted = list(keys)
    if not isinstance(values, dict) or any(key not in values for key in wanted):
        raise _invalid_cursor()
    return values


def page_limit(limit: int, maximum: int) -> int:
    """`limit` checked to be within 1..maximum."""
    if not 1 <= limit <= maximum:
        raise InvalidRequest(f"limit must be between 1 and {maximum}",
                             details={"field": "limit"})
    return limit


def job_cursor(created_at: datetime, job_id: uuid.UUID) -> str:
    """The cursor after a job in (created_at, job_id) descending order."""
    return encode_cursor({"c": created_at.isoformat(), "i": str(job_id)})


def job_page(items: list[VideoJob], size: int) -> Page[VideoJob]:
    """A page of jobs from up to `size + 1` rows (newest first); the extra row, if
    any, only says there is a next page."""
    page = items[:size]
    more = len(items) > size
    next_cursor = job_cursor(page[-1].created_at, page[-1].job_id) if more else None
    return Page[VideoJob](items=page, next_cursor=next_cursor)


def job_keyset_filter(cursor: str) -> str:
    """The PostgREST `or` filter selecting jobs strictly after the cursor's job."""
    values = decode_cursor(cursor, ("c", "i"))
    try:
        created = datetime.fromisoformat(str(values["c"])).isoformat()
        job_id = uuid.UUID(str(values["i"]))
    except ValueError:
        raise _invalid_cursor() from None
    # Quoted: timestamps contain '.', ':' and '+', reserved in PostgREST logic trees.
    return (f'created_at.lt."{created}",'
            f'and(created_at.eq."{created}",job_id.lt.{job_id})')


def version_cursor(version: int) -> str:
    """The cursor after a ledger row (history is ordered by version, descending)."""
    return encode_cursor({"v": version})


def cursor_version(cursor: str) -> int:
    """The ledger version a history cursor points after."""
    value = decode_cursor(cursor, ("v",))["v"]
    if not isinstance(value, int) or value < 1:
        raise _invalid_cursor()
    return value
