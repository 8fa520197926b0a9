"""GoTrue's open, static endpoints: `/health`, `/settings` and the JWKS."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from .._http import json_response

_PROVIDERS = ("anonymous_users", "apple", "azure", "bitbucket", "discord", "facebook",
              "snapchat", "figma", "fly", "github", "gitlab", "google", "keycloak", "kakao",
              "linkedin", "linkedin_oidc", "notion", "spotify", "slack", "slack_oidc", "workos",
              "twitch", "twitter", "email", "phone", "zoom")
# Phone stays off: the local stack has no SMS provider.
_ENABLED = {"anonymous_users", "apple", "email"}


async def health(request: Request) -> Response:
    return json_response({"version": "rendio-local", "name": "GoTrue",
                          "description": "GoTrue is a user registration and authentication API"})


async def settings(request: Request) -> Response:
    return json_response({
        "external": {name: name in _ENABLED for name in _PROVIDERS},
        "disable_signup": False,
        "mailer_autoconfirm": True,
        "phone_autoconfirm": False,
        "sms_provider": "",
        "saml_enabled": False,
        "saml_private_key_next_configured": False,
        "passkeys_enabled": False,
    })


async def jwks(request: Request) -> Response:
    # HS256 secrets are never published, so GoTrue lists no keys.
    return json_response({"keys": []}, headers={"Cache-Control": "public, max-age=600"})
