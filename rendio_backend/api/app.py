"""The API application: configuration, routes and the error envelope."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse

from ..config import RendioConfig
from .routes import ROUTES


def error_response(status: int, code: str, message: str) -> JSONResponse:
    """The API's error envelope: `{"error": {"code", "message"}}`."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return error_response(404, "not_found", f"no function at {request.url.path}")


def create_app(config: RendioConfig | None = None) -> Starlette:
    """The API for `config` (default: `RendioConfig.from_env()`)."""
    app = Starlette(routes=list(ROUTES), exception_handlers={404: _not_found})
    app.state.config = config if config is not None else RendioConfig.from_env()
    return app
