"""The API's routes, one module per resource."""

from __future__ import annotations

from fastapi import APIRouter

from . import device, generate, health, jobs, purchases, webhooks

ROUTERS: tuple[APIRouter, ...] = (health.router, generate.router, jobs.router,
                                  device.router, purchases.router, webhooks.router)
