"""The pipeline tests' fixtures: `config` (the session stack's settings, its fake
providers and Apple's fakes included) and `admin` (a seeded service-role admin)."""

from tests.generation.conftest import admin, config

__all__ = ["admin", "config"]
