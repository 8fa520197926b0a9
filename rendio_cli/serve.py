"""`rendio serve`: the HTTP API alone, against any Supabase (hosted, `supabase start` or
`rendio dev up`), configured like the library (SUPABASE_* from the environment/.env)."""

from __future__ import annotations

from typing import Annotated

import typer


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Run the app's HTTP API (the /functions/v1 endpoints) with uvicorn.

    \b
    Example:
      SUPABASE_URL=https://PROJECT.supabase.co rendio serve --host 0.0.0.0 --port 8000 --workers 2
    """
    import uvicorn

    from rendio_backend.config import RendioConfig

    config = RendioConfig.from_env()  # fail here, in one line, when misconfigured
    typer.echo(f"serving the Rendio API for {config.base_url} on http://{host}:{port}",
               err=True)
    uvicorn.run("rendio_backend.api:create_app", factory=True, host=host, port=port,
                workers=workers, log_level="info", server_header=False)
