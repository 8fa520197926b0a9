"""The API's routes, one module per resource."""

from __future__ import annotations

from starlette.routing import Route

from .health import health

ROUTES: tuple[Route, ...] = (Route("/health", health),)
