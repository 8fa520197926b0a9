"""HTTP plumbing the local Auth and Storage services share.

Only the mechanics are shared. Each service passes in how it words and renders its
errors: GoTrue's and Storage's error bodies differ on purpose, because their clients
parse them.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

Handler = Callable[[Request], Awaitable[Response]]
# The service's error body for any exception a handler raised.
ErrorRenderer = Callable[[Exception, Request], Response]


def json_response(body: object, status: int = 200,
                  headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers=headers)


def endpoint(handler: Handler, render_error: ErrorRenderer) -> Handler:
    """`handler`, with every exception it raises answered by `render_error`: a failure
    leaves as the service's own JSON error, never as a traceback or a framework page."""

    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception as exc:
            return render_error(exc, request)

    return run


@dataclass(frozen=True)
class BodyErrors:
    """How a service words a request body that is not a JSON object."""

    invalid: Callable[[ValueError], Exception]
    not_object: Callable[[], Exception]
    # None: an empty body is parsed, and fails, like any other (GoTrue does this).
    empty: Callable[[], Exception] | None = None
    # A body over `max_bytes` fails with `too_large(max_bytes)` (None: no cap).
    max_bytes: int | None = None
    too_large: Callable[[int], Exception] | None = None
    # JSON `null` reads as `{}` (Go unmarshals it into a struct as a no-op).
    null_is_empty: bool = False


async def json_object(request: Request, errors: BodyErrors, *,
                      allow_empty: bool = False) -> dict[str, Any]:
    """The request body as a JSON object; `{}` for an empty body when `allow_empty`."""
    raw = await _capped_body(request, errors)
    if not raw.strip():
        if allow_empty:
            return {}
        if errors.empty is not None:
            raise errors.empty()
    try:
        body = json.loads(raw)
    except ValueError as exc:  # UnicodeDecodeError included
        raise errors.invalid(exc) from None
    if body is None and errors.null_is_empty:
        return {}
    if not isinstance(body, dict):
        raise errors.not_object()
    return body


async def _capped_body(request: Request, errors: BodyErrors) -> bytes:
    """The body, read no further than the cap (a huge body is refused, never buffered)."""
    limit = errors.max_bytes
    if limit is None or errors.too_large is None:
        return await request.body()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def service_path(request: Request) -> str:
    """The request path below the gateway's mount point, as the real service (behind
    Kong) sees it: `/admin/users` for `/auth/v1/admin/users`."""
    path = request.url.path
    root = request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    return path
