"""Reading and validating request parameters as GoTrue does."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

from starlette.requests import Request

from .._http import BodyErrors, json_object
from ._errors import ApiError, bad_request

# The pattern of github.com/badoux/checkmail, which GoTrue validates emails with.
_EMAIL = re.compile(
    r"^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$"
)
_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


# GoTrue reads at most 1 MiB of any body (`limitRequestBody(1 << 20)` in api.go).
MAX_BODY_BYTES = 1 << 20
_BODY_ERRORS = BodyErrors(
    invalid=lambda exc: bad_request("bad_json", f"Could not parse request body as JSON: {exc}"),
    not_object=lambda: bad_request("bad_json", "Could not parse request body as JSON: json: "
                                               "cannot unmarshal into a Go value of type object"),
    max_bytes=MAX_BODY_BYTES,
    too_large=lambda limit: ApiError(413, "request_entity_too_large",
                                     f"Request body too large (max {limit} bytes)"),
    # `null` leaves GoTrue's params empty: the endpoint's own validation answers.
    null_is_empty=True,
)


async def json_body(request: Request, *, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object; GoTrue's `bad_json` error if it is not one."""
    return await json_object(request, _BODY_ERRORS, allow_empty=optional)


def text(body: dict[str, Any], key: str) -> str:
    """A string field; null or missing is "" (Go's zero value)."""
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise bad_request("bad_json", f"Could not parse request body as JSON: json: cannot "
                                      f"unmarshal {type(value).__name__} into field {key} "
                                      "of type string")
    return value


def mapping(body: dict[str, Any], key: str) -> dict[str, Any] | None:
    """An object field, or None when absent or null."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_request("bad_json", "Could not parse request body as JSON: json: cannot "
                                      f"unmarshal into field {key} of type "
                                      "map[string]interface {}")
    return value


def validate_email(email: str) -> str:
    """The lower-cased email, or GoTrue's `validation_failed` error."""
    if not email:
        raise bad_request("validation_failed", "An email address is required")
    if len(email) > 255:
        raise bad_request("validation_failed", "An email address is too long")
    if not _EMAIL.match(email):
        raise bad_request("validation_failed",
                          "Unable to validate email address: invalid format")
    return email.lower()


def parse_go_duration(value: str) -> timedelta:
    """A Go `time.ParseDuration` string such as `24h` or `1h30m` (`ban_duration`)."""
    if value in {"0", "+0", "-0"}:
        return timedelta(0)
    sign = -1 if value.startswith("-") else 1
    rest = value.lstrip("+-")
    seconds = 0.0
    position = 0
    for match in _GO_DURATION.finditer(rest):
        if match.start() != position:
            break
        seconds += float(match.group(1)) * _GO_UNITS[match.group(2)]
        position = match.end()
    if not rest or position != len(rest):
        raise bad_request("validation_failed",
                          f'invalid format for ban duration: time: invalid duration "{value}"')
    return timedelta(seconds=sign * seconds)


def parse_uuid(value: str, error: ApiError) -> uuid.UUID:
    """`value` as a UUID, or raise `error`."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise error from None
