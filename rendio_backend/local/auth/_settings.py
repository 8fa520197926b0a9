"""GoTrue's open, static endpoints: `/health`, `/settings` and the JWKS."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from .._http import Handler, json_response
from ..auth_settings import AuthSettings
from ..keys import JwtKeys

_PROVIDERS = ("anonymous_users", "apple", "azure", "bitbucket", "discord", "facebook",
              "snapchat", "figma", "fly", "github", "gitlab", "google", "keycloak", "kakao",
              "linkedin", "linkedin_oidc", "notion", "spotify", "slack", "slack_oidc", "workos",
              "twitch", "twitter", "email", "phone", "zoom")
# Phone stays off: the local stack has no SMS provider.
_ENABLED = {"apple", "email"}


async def health(request: Request) -> Response:
    return json_response({"version": "rendio-local", "name": "GoTrue",
                          "description": "GoTrue is a user registration and authentication API"})


def settings_endpoint(auth: AuthSettings) -> Handler:
    """`GET /settings`: what this Auth allows (see `auth_settings`)."""
    enabled = _ENABLED | ({"anonymous_users"} if auth.enable_anonymous_sign_ins else set())
    body = {
        "external": {name: name in enabled for name in _PROVIDERS},
        "disable_signup": not auth.enable_signup,
        "mailer_autoconfirm": not auth.enable_confirmations,
        "phone_autoconfirm": False,
        "sms_provider": "",
        "saml_enabled": False,
        "saml_private_key_next_configured": False,
        "passkeys_enabled": False,
    }

    async def settings(request: Request) -> Response:
        return json_response(body)

    return settings


def jwks_endpoint(keys: JwtKeys) -> Handler:
    """`GET /.well-known/jwks.json`: the public signing keys, never the HS256 secret
    (GoTrue's `WellKnownJwks`; so the list is empty in legacy mode)."""
    body = keys.public_jwks()

    async def jwks(request: Request) -> Response:
        return json_response(body, headers={"Cache-Control": "public, max-age=600"})

    return jwks
