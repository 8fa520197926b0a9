"""The shapes PostgREST, the SQL functions and Storage answer with, checked."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from ..errors import ServerError
from ..models import JobCreated


def _unexpected(what: str) -> ServerError:
    return ServerError(f"unexpected answer from {what}", code="invalid_response")


def rows(data: Any) -> list[dict[str, Any]]:
    """The rows of a PostgREST answer (a list of objects)."""
    if data is None:
        return []
    if isinstance(data, list) and all(isinstance(row, dict) for row in data):
        return data
    if isinstance(data, dict):
        return [data]
    raise _unexpected("PostgREST: rows expected")


def count(data: Any, what: str) -> int:
    """An integer a SQL function answered (e.g. how many rows it changed)."""
    if isinstance(data, int) and not isinstance(data, bool):
        return data
    raise _unexpected(f"{what}: an integer expected")


def job_created(data: Any, key: uuid.UUID) -> JobCreated:
    """create_video_job's answer (`{response: {...}, replayed, status_code}`) as JobCreated."""
    response = data.get("response") if isinstance(data, dict) else None
    if not isinstance(response, dict):
        raise _unexpected("create_video_job: no response object")
    try:
        return JobCreated.model_validate({
            **response, "replayed": data.get("replayed", False),
            "status_code": data.get("status_code", 202), "idempotency_key": key})
    except PydanticValidationError as exc:
        raise _unexpected(f"create_video_job: {exc.errors()[0]['msg']}") from exc


def signed_url(answer: Any) -> str:
    """The URL of storage3's create_signed_url answer."""
    url = answer.get("signedURL") if isinstance(answer, dict) else None
    if not isinstance(url, str) or not url:
        raise _unexpected("Storage: no signed URL")
    return url
