"""schemathesis against the OpenAPI document the API serves, through the gateway.

Every operation, positive and negative examples, as a signed-in user and with no token:
no 5xx, every 4xx in the error envelope, status codes, content types, headers and bodies
as the document declares them. The example count is `RENDIO_FUZZ_EXAMPLES`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.test_api import COVERED, VEO
from tests.fuzz.conftest import User, fuzz_settings
from tests.support.stack import RunningStack

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def schema(stack: RunningStack) -> Iterator[Any]:
    base = f"{stack.config.api_url}/functions/v1"
    loaded = schemathesis.openapi.from_url(f"{base}/openapi.json",
                                           headers={"apikey": stack.config.anon_key})
    loaded.config.update(base_url=base)
    yield loaded


def assert_envelope(status: int, body: Any) -> None:
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error, dict), body
    assert isinstance(error.get("code"), str) and error["code"], body
    assert isinstance(error.get("message"), str) and error["message"], body


# Operations that declare no input: nothing about them can be made invalid (fal's
# webhook reads its raw body, signed; tests/generation/test_webhooks.py forges those).
NO_INPUT = {"/health", "/webhooks/fal"}
OPERATIONS = [(method, path, mode) for method, path in sorted(COVERED)
              for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
              if path not in NO_INPUT or mode is GenerationMode.POSITIVE]


@pytest.mark.parametrize("auth", ["user", "none"])
@pytest.mark.parametrize(("method", "path", "mode"), OPERATIONS)
def test_every_operation_answers_as_documented(
    schema: Any, stack: RunningStack, user: User, method: str, path: str, auth: str,
    mode: GenerationMode
) -> None:
    operation = schema[path][method.upper()]
    # "none": only the apikey, which the gateway turns into the anon JWT (no user).
    headers = {"apikey": stack.config.anon_key}
    if auth == "user":
        headers["Authorization"] = f"Bearer {user.token}"

    @fuzz_settings()
    @given(case=operation.as_strategy(generation_mode=mode), real=st.booleans())
    def run(case: Any, real: bool) -> None:
        # The variant decides who calls, not the generated example.
        sent = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
        if real and path == "/generate-video" and mode is GenerationMode.POSITIVE:
            # Half the valid examples get past the key and the model, so they charge.
            sent["Idempotency-Key"] = str(uuid.uuid4())
            if isinstance(case.body, dict):
                case.body = {**case.body, "model_id": VEO}
        case.headers = {**sent, **headers}
        response = case.call(timeout=30)
        case.validate_response(response, checks=CHECKS)
        if 400 <= response.status_code < 500:
            assert_envelope(response.status_code, response.json())

    run()
