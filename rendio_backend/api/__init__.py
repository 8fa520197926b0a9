"""The app's HTTP API (the seed's edge functions, `/functions/v1/*`), as one ASGI app.

`create_app(config)` builds it for any Supabase; the local gateway mounts it at
`/functions/v1`. Routes live in `routes/`, one module per resource.
"""

from __future__ import annotations

from .app import create_app, error_response

__all__ = ["create_app", "error_response"]
