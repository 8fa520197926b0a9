"""Fixtures of the fuzz tests: a seeded catalog, a real user with credits, and how many
examples each property tries (`RENDIO_FUZZ_EXAMPLES`; `make test-long` raises it)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, settings

from rendio_backend import RendioAdmin, RendioClient
from tests.support.stack import RunningStack

# Small by default: the default run must stay well under ten minutes on CI.
EXAMPLES = int(os.environ.get("RENDIO_FUZZ_EXAMPLES", "8"))


def fuzz_settings(scale: float = 1.0) -> settings:
    """Hypothesis settings for a test that calls the stack: no deadline, no database
    (the examples are random each run; a failure prints its reproduction)."""
    return settings(max_examples=max(1, int(EXAMPLES * scale)), deadline=None,
                    database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])


@dataclass(frozen=True)
class User:
    client: RendioClient
    user_id: str
    token: str


@pytest.fixture(scope="module")
def admin(stack: RunningStack) -> Iterator[RendioAdmin]:
    with RendioAdmin(stack.config.rendio_config()) as admin:
        admin.provision_storage()
        admin.seed_models()
        yield admin


@pytest.fixture(scope="module")
def user(stack: RunningStack, admin: RendioAdmin) -> Iterator[User]:
    """A signed-in anonymous user with 40 credits; the ledger is checked afterwards."""
    client = RendioClient(stack.config.rendio_config())
    session = client.sign_in_anonymously()
    admin.add_credits(session.user_id, 40)
    yield User(client, str(session.user_id), session.access_token)
    client.close()
    assert admin.verify_ledger() == []
