"""Configuration: where Supabase is and which keys to use.

Read from the environment or a `.env` file: SUPABASE_URL, SUPABASE_PUBLISHABLE_KEY and
SUPABASE_SECRET_KEY (Supabase's API keys; the legacy SUPABASE_ANON_KEY and
SUPABASE_SERVICE_ROLE_KEY JWTs still work, the new names win when both are set),
SUPABASE_JWT_SECRET (optional, see `tokens.py`), FALAI_*, RUNWAY_*, APPLE_*, ENVIRONMENT. The
environment wins over `.env`. With nothing configured the library targets the local stack
(`rendio dev up` or `supabase start`): http://127.0.0.1:54321 and the Supabase CLI's
well-known local publishable and secret keys. Those keys are also the default for any
other loopback URL (a local stack on another port); for any other host the keys must be
given, so a hosted project is never called with the demo keys.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from .errors import ConfigurationError

__all__ = ["LOCAL_ANON_KEY", "LOCAL_API_URL", "LOCAL_PUBLISHABLE_KEY", "LOCAL_SECRET_KEY",
           "LOCAL_SERVICE_ROLE_KEY", "RendioConfig", "read_settings"]

LOCAL_API_URL = "http://127.0.0.1:54321"
# The Supabase CLI's well-known local API keys, duplicated here so the product never
# imports the local stack; tests check they equal rendio_backend.local.keys' defaults.
LOCAL_PUBLISHABLE_KEY = "sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH"
LOCAL_SECRET_KEY = "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz"
# Its legacy demo keys (iss "supabase-demo", signed with its local JWT secret); tests
# check they equal rendio_backend.local.config.sign_api_key(...).
LOCAL_ANON_KEY = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJl"
    "eHAiOjE5ODM4MTI5OTZ9.CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0"
)
LOCAL_SERVICE_ROLE_KEY = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vf"
    "cm9sZSIsImV4cCI6MTk4MzgxMjk5Nn0.EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU"
)

# Environment variable -> field. Where two name one field, the later one wins: Supabase's
# current key names over the legacy JWT keys.
_ENV_NAMES = {
    "SUPABASE_URL": "supabase_url",
    "SUPABASE_ANON_KEY": "anon_key",
    "SUPABASE_PUBLISHABLE_KEY": "anon_key",
    "SUPABASE_SERVICE_ROLE_KEY": "service_role_key",
    "SUPABASE_SECRET_KEY": "service_role_key",
    "SUPABASE_JWT_SECRET": "jwt_secret",
    "FALAI_API_KEY": "falai_api_key",
    "FALAI_BASE_URL": "falai_base_url",
    "FALAI_WEBHOOK_JWKS_URL": "falai_webhook_jwks_url",
    "RUNWAY_API_KEY": "runway_api_key",
    "RUNWAY_BASE_URL": "runway_base_url",
    "APPLE_BUNDLE_ID": "apple_bundle_id",
    "APPLE_TEAM_ID": "apple_team_id",
    "APPLE_KEY_ID": "apple_key_id",
    "APPLE_ISSUER_ID": "apple_issuer_id",
    "APPLE_PRIVATE_KEY": "apple_private_key",
    "APPLE_DEVICECHECK_KEY_ID": "apple_devicecheck_key_id",
    "APPLE_DEVICECHECK_PRIVATE_KEY": "apple_devicecheck_private_key",
    "APPLE_DEVICECHECK_URL": "apple_devicecheck_url",
    "APPLE_ROOT_CERTIFICATES": "apple_root_certificates",
    "APPLE_APP_APPLE_ID": "apple_app_apple_id",
    "APPLE_STOREKIT_ONLINE_CHECKS": "apple_storekit_online_checks",
    "ENVIRONMENT": "environment",
    "RENDIO_HTTP_TIMEOUT": "timeout",
    "RENDIO_CONNECT_TIMEOUT": "connect_timeout",
}


class _ProjectEnvFile:
    """Default of `env_file`: the `.env` at the project's root (see `project.py`)."""

    def __repr__(self) -> str:
        return "PROJECT_ENV_FILE"


PROJECT_ENV_FILE: Any = _ProjectEnvFile()


def read_settings(
    *,
    env_file: str | os.PathLike[str] | None = PROJECT_ENV_FILE,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Every setting, `SUPABASE_*` and `RENDIO_*` alike: the environment over `.env`.

    The one loader of the library and the local stack. `env_file` defaults to the
    project's `.env` (a missing file is fine); None reads no file. Empty values count
    as unset, so `RENDIO_DB_URL=` in `.env` means "not set".
    """
    if env_file is PROJECT_ENV_FILE:
        from .project import find_project

        env_file = find_project().env_file
    values: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v})
    source = os.environ if environ is None else environ
    values.update({k: v for k, v in source.items() if v})
    return values


def is_loopback_host(host: str) -> bool:
    """True for `localhost` and loopback IP literals (127.0.0.0/8, ::1), nothing else.

    A name such as `127.example.com` is not local: it resolves wherever DNS says.
    """
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """True when an http(s) URL names this machine (see `is_loopback_host`)."""
    return is_loopback_host(urlsplit(url).hostname or "")


class RendioConfig(BaseModel):
    """Settings of a Rendio client or admin. Immutable; secrets are hidden from repr."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    supabase_url: str = LOCAL_API_URL
    # The key an app may ship: publishable (`sb_publishable_…`) or the legacy anon JWT.
    anon_key: str = Field(default="", repr=False)  # "" = the local key, for a local URL
    # The server-only key: secret (`sb_secret_…`) or the legacy service_role JWT.
    service_role_key: str | None = Field(default=None, repr=False)
    # The project's legacy HS256 secret: lets TokenVerifier check HS256 tokens itself.
    jwt_secret: str | None = Field(default=None, repr=False)
    falai_api_key: str | None = Field(default=None, repr=False)
    # fal's queue host and the JWKS its webhook signatures verify against; the
    # local stack points both at its fake fal (rendio_backend.local.fakes.providers).
    falai_base_url: str = "https://queue.fal.run"
    falai_webhook_jwks_url: str = "https://rest.alpha.fal.ai/.well-known/jwks.json"
    runway_api_key: str | None = Field(default=None, repr=False)
    runway_base_url: str = "https://api.dev.runwayml.com"
    apple_bundle_id: str | None = None
    apple_team_id: str | None = None
    apple_key_id: str | None = None
    apple_issuer_id: str | None = None
    apple_private_key: str | None = Field(default=None, repr=False)
    apple_devicecheck_key_id: str | None = None
    apple_devicecheck_private_key: str | None = Field(default=None, repr=False)
    # None: Apple's host for `environment` (see rendio_backend.apple.devicecheck).
    apple_devicecheck_url: str | None = None
    # Files (DER or PEM) of the roots StoreKit's signed data must chain to: Apple Root
    # CA - G3 in production, the local stack's own root locally. A comma-separated list.
    apple_root_certificates: tuple[str, ...] = ()
    # The app's App Store id; Apple's verifier requires it for Production data.
    apple_app_apple_id: int | None = None
    # OCSP revocation checks of the signing chain (a network call to Apple per new chain).
    apple_storekit_online_checks: bool = False
    environment: str = "development"
    # Seconds. A stopped stack refuses connections at once; connect_timeout bounds a
    # host that does not answer, timeout bounds every read/write (videos included).
    timeout: float = Field(default=60.0, gt=0)
    connect_timeout: float = Field(default=5.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _local_defaults(cls, data: Any) -> Any:
        # The demo keys are filled in only for a local URL, never for a hosted project.
        if not isinstance(data, dict):
            return data
        values = {k: v for k, v in data.items() if v is not None}
        url = str(values.get("supabase_url") or LOCAL_API_URL)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(f"SUPABASE_URL must be an http(s) URL, not {url!r}",
                                     code="invalid_supabase_url")
        values["supabase_url"] = url
        if is_loopback_url(url):
            values["anon_key"] = values.get("anon_key") or LOCAL_PUBLISHABLE_KEY
            values.setdefault("service_role_key", LOCAL_SECRET_KEY)
        elif not values.get("anon_key"):
            raise ConfigurationError(
                f"SUPABASE_PUBLISHABLE_KEY (or the legacy SUPABASE_ANON_KEY) must be set "
                f"for {url}", code="missing_anon_key")
        return values

    @field_validator("apple_root_certificates", mode="before")
    @classmethod
    def _split_paths(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @property
    def rest_url(self) -> str:
        """PostgREST's base URL (`<supabase_url>/rest/v1`)."""
        return f"{self.base_url}/rest/v1"

    @property
    def auth_url(self) -> str:
        """Auth's base URL (`<supabase_url>/auth/v1`)."""
        return f"{self.base_url}/auth/v1"

    @property
    def storage_url(self) -> str:
        """Storage's base URL with the trailing slash storage3 wants."""
        return f"{self.base_url}/storage/v1/"

    @property
    def functions_url(self) -> str:
        """The edge functions' base URL (`<supabase_url>/functions/v1`)."""
        return f"{self.base_url}/functions/v1"

    @property
    def base_url(self) -> str:
        """`supabase_url` without a trailing slash."""
        return self.supabase_url.rstrip("/")

    @property
    def is_local(self) -> bool:
        """True when the URL points at this machine (a local stack)."""
        return is_loopback_url(self.supabase_url)

    def as_env(self) -> dict[str, str]:
        """These settings as the environment variables `from_env` reads back: for
        starting another process (a worker, say) against the same project."""
        names = {field: name for name, field in _ENV_NAMES.items()}  # the current name wins
        env = {}
        for field, name in names.items():
            value = getattr(self, field)
            if value is None:
                continue
            if isinstance(value, tuple):
                value = ",".join(value)
            elif isinstance(value, bool):
                value = "true" if value else "false"
            env[name] = str(value)
        return env

    def require_service_role_key(self) -> str:
        """The service role key, or ConfigurationError when it is not set."""
        if not self.service_role_key:
            raise ConfigurationError(
                "SUPABASE_SECRET_KEY (or the legacy SUPABASE_SERVICE_ROLE_KEY) is not set; "
                "admin operations need it",
                code="missing_service_role_key")
        return self.service_role_key

    @classmethod
    def from_env(
        cls,
        *,
        env_file: str | os.PathLike[str] | None = PROJECT_ENV_FILE,
        environ: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> RendioConfig:
        """Settings from `environ` (default: os.environ), then `env_file`, then defaults.

        Keyword overrides win over both; see `read_settings` for `env_file`. Raises
        ConfigurationError for invalid values, and when SUPABASE_URL names a non-local
        host but neither SUPABASE_PUBLISHABLE_KEY nor SUPABASE_ANON_KEY is set.
        """
        settings = read_settings(env_file=env_file, environ=environ)
        values: dict[str, Any] = {field: settings[name] for name, field in _ENV_NAMES.items()
                                  if name in settings}
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**values)
        except PydanticValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ConfigurationError(f"invalid configuration: {where}: {first['msg']}",
                                     code="invalid_configuration") from exc
