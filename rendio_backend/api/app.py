"""The API application: configuration, routes, the body limit and the error envelope."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import RendioConfig
from .errors import error_response, install_error_handlers
from .routes import ROUTERS
from .runtime import Runtime

MAX_BODY_BYTES = 64 * 1024


class _BodyLimit:
    """413 `payload_too_large` for a body over MAX_BODY_BYTES, declared or streamed.

    The body is read here, before the app sees it (bodies are small): FastAPI turns any
    error raised while it reads a body into a 400, so the limit cannot be enforced from
    inside the app's own read.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            await _too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > MAX_BODY_BYTES:
                await _too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: wait for a disconnect
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)


async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
    response = error_response(413, "payload_too_large",
                              f"the body is larger than {MAX_BODY_BYTES} bytes")
    await response(scope, receive, send)


def create_app(config: RendioConfig | None = None) -> FastAPI:
    """The API for `config` (default: `RendioConfig.from_env()`)."""
    runtime = Runtime(config if config is not None else RendioConfig.from_env())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await runtime.aclose()

    app = FastAPI(
        title="Rendio API",
        version="1",
        summary="The endpoints the Rendio iOS app calls (Supabase edge functions' paths).",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    for router in ROUTERS:
        app.include_router(router)
    install_error_handlers(app)
    app.add_middleware(_BodyLimit)
    app.openapi = _documented_as_answered(app.openapi)  # type: ignore[method-assign]
    return app


_FASTAPI_VALIDATION = "#/components/schemas/HTTPValidationError"


def _documented_as_answered(build: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """FastAPI's document, without the 422 `HTTPValidationError` it adds to every route
    with parameters: a request it cannot read is answered 400 `invalid_request` in the
    error envelope (errors.py), which each route documents, so the 422 was never sent."""

    def openapi() -> dict[str, Any]:
        schema = build()  # FastAPI builds it once and keeps it
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                answers = operation.get("responses", {})
                content = answers.get("422", {}).get("content", {})
                if content.get("application/json", {}).get("schema", {}).get(
                        "$ref") == _FASTAPI_VALIDATION:
                    del answers["422"]
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        return schema

    return openapi
