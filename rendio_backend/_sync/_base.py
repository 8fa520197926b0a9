# rendio_backend/_sync/ is generated from rendio_backend/_async/ by scripts/generate_sync.py:
# edit the _async file, then run `python scripts/generate_sync.py`.
"""The HTTP plumbing both facades share: one httpx client, the official Supabase clients."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any, Self

import httpx
from postgrest import SyncPostgrestClient
from storage3 import SyncStorageClient

from .._core import idempotency
from .._errors_map import translating
from ..config import RendioConfig
from ..errors import ConfigurationError


class SyncBase:
    """Owns the HTTP connection pool; builds PostgREST and Storage clients per token."""

    def __init__(
        self,
        config: RendioConfig | None,
        *,
        api_key: str | None,
        http_client: httpx.Client | None,
    ) -> None:
        self._config = config if config is not None else RendioConfig.from_env()
        self._api_key = api_key or self._config.anon_key
        self._owns_http = http_client is None
        self._closed = False
        # Retries of idempotent calls (create_job); 0 turns them off.
        self._max_retries = idempotency.MAX_RETRIES
        # One pool for PostgREST, Auth and Storage. Bounded timeouts: a stopped stack
        # fails at once (connection refused), an unresponsive host within the limits.
        # Redirects are not followed: httpx would resend the apikey and Authorization
        # headers to wherever a redirect points, another origin included.
        self._http = http_client or httpx.Client(
            timeout=httpx.Timeout(self._config.timeout, connect=self._config.connect_timeout),
            follow_redirects=False,
        )

    @property
    def config(self) -> RendioConfig:
        """The settings this instance uses."""
        return self._config

    def _headers(self, token: str) -> dict[str, str]:
        return {"apikey": self._api_key, "Authorization": f"Bearer {token}"}

    def _check_open(self) -> None:
        """ConfigurationError once this instance (or the pool it shares) is closed."""
        if self._closed or self._http.is_closed:
            raise ConfigurationError("the client is closed", code="client_closed")

    def _rest(self, token: str) -> SyncPostgrestClient:
        self._check_open()
        # PostgREST's retry sleeps on connection errors; a stopped stack must fail fast.
        return SyncPostgrestClient(self._config.rest_url, headers=self._headers(token),
                                    http_client=self._http, retry_enabled=False)

    def _storage(self, token: str) -> SyncStorageClient:
        self._check_open()
        return SyncStorageClient(self._config.storage_url, headers=self._headers(token),
                                  http_client=self._http)

    def _rpc(self, token: str, function: str, params: dict[str, Any]) -> Any:
        # Refuse what is not JSON (NaN, lone surrogates, odd objects) before sending.
        for name, value in params.items():
            idempotency.canonical_json(value, name.removeprefix("p_"))
        with translating():
            response = self._rest(token).rpc(function, params).execute()
        return response.data

    # --- retries (the policy is in _core.idempotency; separate so tests can stub them) --
    def _jitter(self, seconds: float) -> float:
        return idempotency.add_jitter(seconds)

    def _pause_before_retry(self, retry: int) -> None:
        time.sleep(self._jitter(idempotency.backoff_seconds(retry)))

    def close(self) -> None:
        """Close the HTTP connections (only those this instance opened).

        Any later call raises ConfigurationError (code `client_closed`).
        """
        self._closed = True
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
