"""Reading request bodies and parameters as Storage's JSON schemas (Ajv) check them."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from .._http import BodyErrors, json_object
from . import _errors as errors

_BODY_ERRORS = BodyErrors(
    invalid=lambda _exc: errors.validation_error(
        "Body is not valid JSON but content-type is set to 'application/json'"),
    not_object=lambda: errors.validation_error("body must be object"),
    empty=lambda: errors.validation_error(
        "Body cannot be empty when content-type is set to 'application/json'"),
)


async def json_body(request: Request, *, allow_empty: bool = False) -> dict[str, Any]:
    return await json_object(request, _BODY_ERRORS, allow_empty=allow_empty)


def require(body: dict[str, Any], *names: str) -> None:
    for name in names:
        if name not in body:
            raise errors.validation_error(f"body must have required property '{name}'")


def string(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise errors.validation_error(f"body/{name} must be string")
    return value


def string_list(body: dict[str, Any], name: str) -> list[str]:
    """A required, non-empty array of strings."""
    require(body, name)
    values = body[name]
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise errors.validation_error(f"body/{name} must be array")
    if not values:
        raise errors.validation_error(f"body/{name} must NOT have fewer than 1 items")
    return values


def integer(value: Any, where: str, minimum: int | None = None) -> int:
    """Ajv with `coerceTypes`: "60" is 60, "x" is an error."""
    if isinstance(value, bool):
        raise errors.validation_error(f"{where} must be integer")
    try:
        number = int(value) if isinstance(value, int | str) else None
    except ValueError:
        number = None
    if number is None or (isinstance(value, str) and value.strip() != str(number)):
        raise errors.validation_error(f"{where} must be integer")
    if minimum is not None and number < minimum:
        raise errors.validation_error(f"{where} must be >= {minimum}")
    return number
