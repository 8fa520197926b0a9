"""CORS as the Supabase stack answers browsers: its gateway, and GoTrue's own headers.

`KongCors` is Kong 2.8's `cors` plugin with its default configuration, which the
Supabase CLI's `kong.yml` puts on every service route (supabase/cli
`internal/start/templates/kong.yml`, Kong `kong/plugins/cors/handler.lua` at 2.8.1):

- a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered
  200 at the gateway with `*`, the requested headers echoed and Kong's method list. It
  never reaches a service, so it needs no `apikey` (browsers send none on preflights);
- every other response of a service route gets `Access-Control-Allow-Origin: *`,
  replacing the service's own value, as Kong's header filter does.

`GoTrueCors` is what GoTrue adds itself (rs/cors in supabase/auth `internal/api/api.go`):
on an actual request with an `Origin`, credentials allowed and the headers supabase-js
must read (`X-Supabase-Api-Version` picks its error format, `X-Total-Count` and `Link`
page admin listings) exposed.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The routes of the CLI's kong.yml that the local stack serves.
SERVICE_PREFIXES = ("/rest/v1", "/auth/v1", "/storage/v1", "/functions/v1")
_KONG_METHODS = b"GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT"
_ALLOW_ORIGIN = b"access-control-allow-origin"


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


class KongCors:
    """Kong's `cors` plugin in front of `app` for the service routes."""

    def __init__(self, app: ASGIApp, prefixes: tuple[str, ...] = SERVICE_PREFIXES) -> None:
        self.app = app
        self.prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._routed(scope["path"]):
            await self.app(scope, receive, send)
            return
        if (scope["method"] == "OPTIONS" and _header(scope, b"origin") is not None
                and _header(scope, b"access-control-request-method") is not None):
            await self._preflight(scope, send)
            return

        async def send_any_origin(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != _ALLOW_ORIGIN]
                headers.append((_ALLOW_ORIGIN, b"*"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_any_origin)

    def _routed(self, path: str) -> bool:
        return any(path == p or path.startswith(p + "/") for p in self.prefixes)

    async def _preflight(self, scope: Scope, send: Send) -> None:
        headers = [(_ALLOW_ORIGIN, b"*"), (b"access-control-allow-methods", _KONG_METHODS),
                   (b"content-length", b"0")]
        requested = _header(scope, b"access-control-request-headers")
        if requested is not None:
            headers.insert(1, (b"access-control-allow-headers", requested))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


class GoTrueCors:
    """rs/cors's headers on GoTrue's actual (non-preflight) requests."""

    _METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
    _EXPOSED = b"X-Total-Count, Link, X-Supabase-Api-Version"

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        origin = _header(scope, b"origin")
        added = [(b"vary", b"Origin")]
        if origin and scope["method"] in self._METHODS:
            added += [(_ALLOW_ORIGIN, origin), (b"access-control-expose-headers", self._EXPOSED),
                      (b"access-control-allow-credentials", b"true")]

        async def send_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        await self.app(scope, receive, send_cors)
