"""The local Auth service: the subset of GoTrue (supabase/auth) that Supabase clients call.

Routes, request and response JSON, JWT claims, status codes and error bodies follow
supabase/auth `internal/api/*.go`. What it allows follows `config.auth` (a new hosted
project's settings unless configured: email confirmations on, anonymous sign-ins off,
GoTrue's rate limits; see `auth_settings`). Sign in with Apple verifies tokens of
`config.apple_issuer`; phone sign-up is disabled (there is no SMS provider), and the
emails GoTrue would send are logged (`_confirm`). All writes go through PostgreSQL as
`supabase_auth_admin`, so triggers on `auth.users` run with the same rights as on hosted
Supabase.

The endpoints live by resource: `_tokens` (sign-up, `/token`, logout), `_user` (`/user`),
`_confirm` (`/verify`), `_admin` (`/admin/*`) and `_settings`; what they share is
`_context.AuthContext`, and `_limits` holds the rate limits.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from .._http import Handler, endpoint
from ..config import StackConfig
from ..cors import GoTrueCors
from . import _settings
from ._admin import AdminEndpoints
from ._confirm import VerifyEndpoints
from ._context import DEFAULT_REUSE_INTERVAL, AuthContext
from ._errors import error_response
from ._tokens import TokenEndpoints
from ._user import UserEndpoints


class AuthService:
    """GoTrue-compatible Auth as an ASGI app plus start/stop hooks (a `LocalService`)."""

    def __init__(self, config: StackConfig, *,
                 refresh_token_reuse_interval: int = DEFAULT_REUSE_INTERVAL) -> None:
        self.config = config
        self.context = AuthContext(config,
                                   refresh_token_reuse_interval=refresh_token_reuse_interval)
        tokens = TokenEndpoints(self.context)
        user = UserEndpoints(self.context)
        admin = AdminEndpoints(self.context)
        verify = VerifyEndpoints(self.context, tokens)

        def route(path: str, handler: Handler, method: str) -> Route:
            # Every failure leaves as GoTrue's JSON error, never a traceback.
            return Route(path, endpoint(handler, error_response), methods=[method])

        routes = [
            route("/health", _settings.health, "GET"),
            route("/settings", _settings.settings_endpoint(self.context.settings), "GET"),
            route("/.well-known/jwks.json", _settings.jwks_endpoint(self.context.keys), "GET"),
            route("/signup", tokens.signup, "POST"),
            route("/token", tokens.token, "POST"),
            route("/logout", tokens.logout, "POST"),
            route("/verify", verify.verify, "POST"),
            route("/user", user.get_user, "GET"),
            route("/user", user.update_user, "PUT"),
            route("/admin/users", admin.list_users, "GET"),
            route("/admin/users", admin.create_user, "POST"),
            route("/admin/users/{user_id}", admin.get_user, "GET"),
            route("/admin/users/{user_id}", admin.update_user, "PUT"),
            route("/admin/users/{user_id}", admin.delete_user, "DELETE"),
        ]
        # GoTrue's own CORS headers (rs/cors); the gateway adds Kong's on top.
        self.app = GoTrueCors(Starlette(routes=routes, exception_handlers={
            HTTPException: _unrouted,
        }))

    async def startup(self) -> None:
        """Open the connection pool (as `supabase_auth_admin`) and the JWKS client."""
        await self.context.open()

    async def shutdown(self) -> None:
        """Close the pool and the JWKS client."""
        await self.context.close()


async def _unrouted(request: Request, exc: Exception) -> Response:
    # chi's answers for unknown routes and methods.
    if isinstance(exc, HTTPException) and exc.status_code == 405:
        return Response(status_code=405)
    return PlainTextResponse("404 page not found\n", status_code=404)


def create_auth_service(config: StackConfig) -> AuthService:
    """The local Auth service for `config`; mount `.app` at `/auth/v1`."""
    return AuthService(config)
