"""The API gateway on one port, routing like Supabase's Kong.

- `/rest/v1/*`   → PostgREST over its unix socket (pooled keep-alive; responses over
                   256 KiB streamed; headers and status codes passed through unchanged)
- `/auth/v1/*`   → the local Auth service
- `/storage/v1/*`→ the local Storage service
- `/functions/v1/*` → `rendio_backend.api`
- `/_fake/apple/*`  → the fake Apple id_token issuer (its JWKS)
- `/_fake/fal/*`, `/_fake/runway/*` → the fake video providers (`fakes/providers.py`)

Like self-hosted Supabase's Kong (key-auth), REST and Auth (but GoTrue's open routes,
the JWKS among them) need an `apikey` header or query parameter: the publishable or
secret key, or the legacy anon or service_role JWT. Storage and Functions are not
key-checked, as there: they verify JWTs themselves, which is what lets a signed URL work
without any key; only an unknown `sb_` key is refused everywhere. Then, as the Supabase
CLI's Kong does, the apikey becomes the `Authorization` header unless the request
carries a token of its own (`_with_bearer`).

The proxy path is a plain ASGI callable rather than a framework route: it is the hot
path of every database call, and the gateway's throughput is measured against direct
PostgREST (see `bench/`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

import aiohttp
import yarl
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .config import AppOnly, LocalService, StackConfig, load_config
from .cors import KongCors

# Headers that describe one connection, not the message (RFC 9110 §7.6.1).
_HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
    b"trailer", b"transfer-encoding", b"upgrade", b"host", b"proxy-connection",
})
_HOP_BY_HOP_STR = frozenset(h.decode() for h in _HOP_BY_HOP)
# GoTrue routes Kong leaves open (no apikey): email links and OAuth redirects.
_AUTH_OPEN = ("/verify", "/callback", "/authorize", "/.well-known/jwks.json")
# Bodies up to this size are sent in one ASGI message; larger ones are streamed.
_BUFFER_LIMIT = 256 * 1024

KeyCheck = Callable[[str], bool]


@dataclass(frozen=True)
class _Mount:
    prefix: str
    app: ASGIApp
    needs_key: KeyCheck
    # Kong's request-transformer on the route: Authorization derived from the apikey.
    sets_bearer: KeyCheck


def _auth_keyed(path: str) -> bool:
    return not path.startswith(_AUTH_OPEN)


def _never(path: str) -> bool:
    return False


def _always(path: str) -> bool:
    return True


async def _json(send: Send, status: int, body: object) -> None:
    payload = json.dumps(body).encode()
    await send({
        "type": "http.response.start", "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode())],
    })
    await send({"type": "http.response.body", "body": payload})


class Gateway:
    """The ASGI app of the gateway process (one instance per worker)."""

    def __init__(self, config: StackConfig, services: dict[str, LocalService]) -> None:
        self.config = config
        self.keys = frozenset({config.anon_key, config.service_role_key,
                               config.publishable_key, config.secret_key})
        # The opaque keys stand for the legacy role JWTs (the CLI's BearerToken rule).
        self.key_jwts = {config.secret_key: config.service_role_key,
                         config.publishable_key: config.anon_key}
        self.services = services
        self.session: aiohttp.ClientSession | None = None
        self.upstream = "http://postgrest"
        self.mounts = [
            _Mount("/auth/v1", services["auth"].app, _auth_keyed, _auth_keyed),
            _Mount("/storage/v1", services["storage"].app, _never, _always),
            _Mount("/functions/v1", services["functions"].app, _never, _always),
            _Mount("/_fake/apple", services["fake_apple"].app, _never, _never),
            _Mount("/_fake/fal", services["fake_fal"].app, _never, _never),
            _Mount("/_fake/runway", services["fake_runway"].app, _never, _never),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path == "/rest/v1" or path.startswith("/rest/v1/"):
            api_key = self._api_key(scope)
            if api_key not in self.keys:
                await self._reject(api_key, send)
                return
            await self._proxy(self._with_bearer(scope, api_key), receive, send)
            return
        for mount in self.mounts:
            if path == mount.prefix or path.startswith(mount.prefix + "/"):
                inner = path[len(mount.prefix):] or "/"
                api_key = self._api_key(scope)
                # An `sb_` key is never a JWT a service could judge: a wrong one is
                # refused on every route, as hosted Supabase's gateway does.
                if api_key not in self.keys and (
                        mount.needs_key(inner) or (api_key or "").startswith("sb_")):
                    await self._reject(api_key, send)
                    return
                child: Scope = dict(scope, root_path=scope.get("root_path", "") + mount.prefix)
                if mount.sets_bearer(inner):
                    child = self._with_bearer(child, api_key)
                await mount.app(child, receive, send)
                return
        if path == "/_rendio/health":
            await _json(send, 200, {"status": "ok"})
            return
        await _json(send, 404, {"message": "no Route matched with those values"})

    # --- key-auth ------------------------------------------------------------------
    def _api_key(self, scope: Scope) -> str | None:
        for name, value in scope["headers"]:
            if name == b"apikey":
                return str(value.decode("latin-1"))
        query = scope.get("query_string", b"")
        if b"apikey=" in query:
            return dict(parse_qsl(query.decode("latin-1"))).get("apikey")
        return None

    def _with_bearer(self, scope: Scope, api_key: str | None) -> Scope:
        """`scope` with the Authorization header the Supabase CLI's Kong sends on.

        A header that is not `Bearer sb_…` passes untouched (a user token wins over the
        key); otherwise the apikey decides: the secret / publishable key become the
        service_role / anon JWT, any other key is sent as it is. The CLI copies that key
        without `Bearer `; the prefix lets PostgREST and Auth read it too.
        """
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        authorization = next((value for name, value in headers if name == b"authorization"),
                             None)
        if authorization is not None and not authorization.startswith(b"Bearer sb_"):
            return scope
        if authorization is None and api_key is None:
            return scope
        kept = [(name, value) for name, value in headers if name != b"authorization"]
        if api_key is not None:
            token = self.key_jwts.get(api_key, api_key)
            # A query-string key may hold what no header can: it then fails as a token.
            kept.append((b"authorization", b"Bearer " + token.encode("latin-1", "replace")))
        return dict(scope, headers=kept)

    async def _reject(self, api_key: str | None, send: Send) -> None:
        # Kong's key-auth messages, so clients that match on them keep working.
        if api_key is None:
            await _json(send, 401, {"message": "No API key found in request"})
        else:
            await _json(send, 401, {"message": "Invalid authentication credentials"})

    # --- proxy to PostgREST ----------------------------------------------------------
    async def _proxy(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.session is not None, "gateway used before its lifespan startup"
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        if not raw_path.startswith(b"/rest/v1"):  # e.g. /rest%2Fv1/...: not a REST path
            await _json(send, 404, {"message": "no Route matched with those values"})
            return
        target = raw_path[len(b"/rest/v1"):] or b"/"
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        url = yarl.URL(self.upstream + target.decode("latin-1"), encoded=True)
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in scope["headers"] if k not in _HOP_BY_HOP
        ]
        body = await _read_body(receive)
        if body is None:  # the client went away mid-request: forward nothing
            return
        started = False
        try:
            async with self.session.request(
                scope["method"], url, headers=headers, data=body or None,
                allow_redirects=False,
            ) as upstream:
                response_headers = [
                    (k.lower(), v) for k, v in upstream.raw_headers
                    if k.decode("latin-1").lower() not in _HOP_BY_HOP_STR
                ]
                length = upstream.content_length
                if length is not None and length <= _BUFFER_LIMIT:
                    payload = await upstream.read()
                    await send({"type": "http.response.start", "status": upstream.status,
                                "headers": response_headers})
                    await send({"type": "http.response.body", "body": payload})
                    return
                await send({"type": "http.response.start", "status": upstream.status,
                            "headers": response_headers})
                started = True
                async for chunk in upstream.content.iter_any():
                    await send({"type": "http.response.body", "body": chunk,
                                "more_body": True})
                await send({"type": "http.response.body", "body": b""})
        except (aiohttp.ClientError, OSError):
            if started:
                # Too late for an error response: let the server drop the connection so
                # the client sees a truncated body, never a short one that looks whole.
                raise
            # Kong's answer when the upstream is down.
            await _json(send, 502, {"message": "An invalid response was received from the "
                                               "upstream server"})

    # --- lifespan --------------------------------------------------------------------
    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:  # reported to the server, which exits
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        connector = aiohttp.UnixConnector(
            path=str(self.config.postgrest_socket), limit=64, keepalive_timeout=30,
        )
        self.session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=5),
        )
        for service in self.services.values():
            await service.startup()

    async def shutdown(self) -> None:
        for service in self.services.values():
            await service.shutdown()
        if self.session is not None:
            await self.session.close()


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body (PostgREST requests are small JSON); None on disconnect."""
    chunks: list[bytes] = []
    more = True
    while more:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def build_services(config: StackConfig) -> dict[str, LocalService]:
    from rendio_backend.api import create_app as create_functions_app

    from .auth import create_auth_service
    from .fake_apple import create_fake_apple_app
    from .fakes.providers import create_fake_provider_services
    from .storage import create_storage_service

    return {
        "auth": create_auth_service(config),
        "storage": create_storage_service(config),
        "functions": AppOnly(create_functions_app(config.rendio_config())),
        "fake_apple": AppOnly(create_fake_apple_app(config)),
        **create_fake_provider_services(config),
    }


def create_app() -> ASGIApp:
    """uvicorn factory: the configuration comes from the file `rendio dev up` wrote."""
    config = load_config(Path(os.environ["RENDIO_STACK_CONFIG"]))
    # Browsers first: Kong's CORS plugin runs before key-auth (see `cors`).
    return KongCors(Gateway(config, build_services(config)))

