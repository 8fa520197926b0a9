"""The app's HTTP API (the seed's edge functions, `/functions/v1/*`), as one ASGI app.

`create_app(config)` builds it for any Supabase (FastAPI; the OpenAPI document is
generated from the pydantic models); the local gateway mounts it at `/functions/v1`,
`rendio serve` runs it alone. Routes live in `routes/`, one module per resource.
"""

from __future__ import annotations

from .app import create_app
from .errors import ApiError, error_response

__all__ = ["ApiError", "create_app", "error_response"]
