"""The local, GoTrue-compatible Auth service of the Docker-free Supabase stack.

`create_auth_service(config)` returns a `LocalService`: mount its `.app` at `/auth/v1`
and call `startup()` / `shutdown()` around serving.
"""

from __future__ import annotations

from ._service import AuthService, create_auth_service

__all__ = ["AuthService", "create_auth_service"]
