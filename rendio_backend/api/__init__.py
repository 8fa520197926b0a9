"""HTTP endpoints of the edge functions (`/functions/v1/*`), as one ASGI app."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def error_response(status: int, code: str, message: str) -> JSONResponse:
    """The API's error envelope: `{"error": {"code", "message"}}`."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def _health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return error_response(404, "not_found", f"no function at {request.url.path}")


def create_app() -> Starlette:
    """The functions app; the gateway mounts it at `/functions/v1`."""
    return Starlette(
        routes=[Route("/health", _health)],
        exception_handlers={404: _not_found},
    )
