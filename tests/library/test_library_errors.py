"""Every error type reaches callers as a rendio error, never a raw client exception."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from postgrest.exceptions import APIError
from storage3.exceptions import StorageApiError
from supabase_auth.errors import AuthApiError, AuthRetryableError

from rendio_backend import (
    AuthError,
    ConfigurationError,
    Conflict,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InsufficientCredits,
    InvalidRequest,
    ModelUnavailable,
    NotFound,
    PermissionDenied,
    ProviderError,
    RateLimited,
    RendioAdmin,
    RendioClient,
    RendioConfig,
    RendioConnectionError,
    RendioError,
    ServerError,
    StorageError,
    TransactionAlreadyUsed,
)
from rendio_backend._errors_map import from_auth, from_httpx, from_postgrest, from_storage
from tests.support.stack import RunningStack


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_stack_down_is_a_quick_connection_error() -> None:
    config = RendioConfig(supabase_url=f"http://127.0.0.1:{_closed_port()}")
    started = time.monotonic()
    with RendioClient(config) as client:
        with pytest.raises(RendioConnectionError) as models:
            client.list_models()
        with pytest.raises(RendioConnectionError):
            client.sign_in_anonymously()
    with RendioAdmin(config) as admin:
        with pytest.raises(RendioConnectionError):
            admin.provision_storage()
        with pytest.raises(RendioConnectionError):
            admin.verify_ledger()
    assert time.monotonic() - started < 5
    assert isinstance(models.value.__cause__, httpx.ConnectError)
    assert models.value.http_status == 503 and "running" in models.value.message


def test_unanswering_host_times_out() -> None:
    # A listening socket that never answers: the read timeout ends the wait.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        config = RendioConfig(supabase_url=f"http://127.0.0.1:{port}", timeout=0.5,
                              connect_timeout=0.5)
        started = time.monotonic()
        with RendioClient(config) as client, pytest.raises(RendioConnectionError) as caught:
            client.list_models()
        assert caught.value.code == "timeout"
        assert time.monotonic() - started < 3


def test_wrong_api_key_is_an_auth_error(stack: RunningStack) -> None:
    config = RendioConfig(supabase_url=stack.config.api_url, anon_key="wrong",
                          service_role_key="wrong")
    with RendioClient(config) as client, pytest.raises(AuthError) as caught:
        client.list_models()
    assert caught.value.code == "invalid_api_key"
    with RendioAdmin(config) as admin, pytest.raises(AuthError):
        admin.verify_ledger()


def test_expired_token_is_an_auth_error(stack: RunningStack) -> None:
    config = RendioConfig(supabase_url=stack.config.api_url, anon_key=stack.publishable_key)
    with RendioClient(config) as parent:
        client = parent.with_access_token(stack.user_jwt(str(uuid.uuid4()), expires_in=-120))
        with pytest.raises(AuthError) as caught:
            client.get_balance()
        assert caught.value.http_status == 401


@pytest.mark.parametrize(("error", "expected", "code"), [
    ({"code": "PT402", "message": "insufficient_credits",
      "details": '{"required": 4, "available": 1}'}, InsufficientCredits, "insufficient_credits"),
    ({"code": "PT409", "message": "idempotency_key_in_use"}, IdempotencyKeyInUse,
     "idempotency_key_in_use"),
    ({"code": "PT409", "message": "transaction_already_used"}, TransactionAlreadyUsed,
     "transaction_already_used"),
    ({"code": "PT422", "message": "idempotency_key_reused"}, IdempotencyKeyReused,
     "idempotency_key_reused"),
    ({"code": "PT422", "message": "model_unavailable"}, ModelUnavailable, "model_unavailable"),
    ({"code": "PT404", "message": "not_found"}, NotFound, "not_found"),
    ({"code": "PT400", "message": "invalid_request"}, InvalidRequest, "invalid_request"),
    ({"code": "PT429", "message": "rate_limited"}, RateLimited, "rate_limited"),
    ({"code": "42501", "message": "permission denied for function"}, PermissionDenied,
     "forbidden"),
    ({"code": "PGRST301", "message": "JWT expired"}, AuthError, "invalid_jwt"),
    ({"code": "PGRST202", "message": "Could not find the function"}, ServerError,
     "schema_out_of_date"),
    ({"code": "23505", "message": "duplicate key"}, Conflict, "conflict"),
    ({"code": "22P02", "message": "invalid input syntax for type uuid"}, InvalidRequest,
     "invalid_request"),
    ({"code": None, "message": "No API key found in request"}, AuthError, "invalid_api_key"),
    ({"code": "57P01", "message": "terminating connection"}, ServerError,
     "service_unavailable"),
])
def test_postgrest_errors_map(error: dict[str, str], expected: type[RendioError],
                              code: str) -> None:
    mapped = from_postgrest(APIError(error))
    assert type(mapped) is expected and mapped.code == code
    if isinstance(mapped, InsufficientCredits):
        assert (mapped.required, mapped.available, mapped.http_status) == (4, 1, 402)


def test_auth_storage_and_httpx_errors_map() -> None:
    assert isinstance(from_auth(AuthRetryableError("refused", 0)), RendioConnectionError)
    assert isinstance(from_auth(AuthRetryableError("bad gateway", 502)), ServerError)
    invalid = from_auth(AuthApiError("Invalid login", 400, "invalid_credentials"))
    assert isinstance(invalid, AuthError) and invalid.code == "invalid_credentials"
    assert isinstance(from_auth(AuthApiError("slow down", 429, "over_request_rate_limit")),
                      RateLimited)
    for status, expected in (("404", NotFound), ("403", PermissionDenied), ("409", Conflict),
                             ("413", InvalidRequest), ("415", InvalidRequest),
                             ("500", StorageError)):
        assert type(from_storage(StorageApiError("x", "e", status))) is expected
    assert isinstance(from_storage(StorageApiError("Invalid JWT", "InvalidJWT", "400")),
                      AuthError)
    request = httpx.Request("GET", "http://127.0.0.1:1/rest/v1/models?select=*")
    refused = from_httpx(httpx.ConnectError("refused", request=request))
    assert isinstance(refused, RendioConnectionError) and "select" not in refused.message
    assert from_httpx(httpx.ReadTimeout("slow", request=request)).code == "timeout"
    provider = ProviderError("fal said 503", retryable=True)
    assert provider.retryable and provider.http_status == 502


def test_errors_through_the_real_stack(stack: RunningStack) -> None:
    config = stack.rendio_config()
    with RendioAdmin(config) as admin:
        with pytest.raises(NotFound):
            admin.get_user(uuid.uuid4())
        with pytest.raises(InvalidRequest):
            admin.get_user("not-a-uuid")
        with pytest.raises(NotFound) as storage_missing:
            admin.signed_url("videos", f"{uuid.uuid4()}/missing.mp4")
        assert isinstance(storage_missing.value.__cause__, StorageApiError)
        with pytest.raises(InvalidRequest):
            admin.claim_jobs("", limit=1)


@dataclass
class FakeServer:
    """A real HTTP server on 127.0.0.1 answering every request with one canned reply."""

    url: str = ""
    status: int = 500
    body: bytes = b"<html><body><h1>Bad things</h1></body></html>"
    content_type: str = "text/html"
    headers: dict[str, str] = field(default_factory=dict)
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)


@contextmanager
def fake_server() -> Iterator[FakeServer]:
    state = FakeServer()

    class Handler(BaseHTTPRequestHandler):
        def answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length:
                self.rfile.read(length)
            state.seen.append((self.command, self.path, dict(self.headers)))
            self.send_response(state.status)
            self.send_header("content-type", state.content_type)
            for name, value in state.headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize(("status", "expected", "code"), [
    (429, RateLimited, "rate_limited"), (403, PermissionDenied, "forbidden"),
    (404, NotFound, "not_found"), (500, ServerError, "server_error"),
    (502, ServerError, "service_unavailable"), (503, ServerError, "service_unavailable"),
])
def test_html_error_pages_map_by_status(status: int, expected: type[RendioError],
                                        code: str) -> None:
    # A proxy in front of Supabase answering HTML: only the status says what happened.
    with fake_server() as server:
        server.status = status
        config = RendioConfig(supabase_url=server.url)
        with RendioClient(config) as client:
            with pytest.raises(RendioError) as rest:
                client.list_models()
            assert type(rest.value) is expected and rest.value.code == code
            assert rest.value.http_status == status
            with pytest.raises(RendioError) as auth:
                client.sign_in_anonymously()
            if status in (502, 503):  # supabase_auth's retryable statuses
                assert type(auth.value) is ServerError and auth.value.http_status == status
            else:
                assert type(auth.value) is expected and auth.value.http_status == status
        with RendioAdmin(config) as admin, pytest.raises(RendioError) as storage:
            admin.signed_url("videos", "a/b.mp4")
        assert isinstance(storage.value, expected if status < 500 else (ServerError,
                                                                        StorageError))


def test_gotrue_json_errors_keep_their_status() -> None:
    with fake_server() as server:
        server.status = 422
        server.content_type = "application/json"
        server.headers = {"X-Supabase-Api-Version": "2024-01-01"}
        server.body = b'{"code": "identity_already_exists", "msg": "Identity is already linked"}'
        with RendioClient(RendioConfig(supabase_url=server.url)) as client:
            with pytest.raises(AuthError) as caught:
                client.sign_in_anonymously()
    assert caught.value.code == "identity_already_exists" and caught.value.http_status == 422


def test_redirects_are_not_followed_so_the_api_key_stays_home() -> None:
    with fake_server() as elsewhere, fake_server() as server:
        elsewhere.status, elsewhere.body = 200, b"[]"
        elsewhere.content_type = "application/json"
        server.status = 302
        server.headers = {"Location": f"{elsewhere.url}/rest/v1/models"}
        config = RendioConfig(supabase_url=server.url)
        with RendioClient(config) as client:
            for call in (client.list_models, client.sign_in_anonymously):
                with pytest.raises(ServerError) as caught:
                    call()
                assert caught.value.code == "unexpected_redirect"
        with RendioAdmin(config) as admin:
            for admin_call in (admin.verify_ledger,
                               lambda: admin.signed_url("videos", "a/b.mp4")):
                with pytest.raises(ServerError) as caught:
                    admin_call()
                assert caught.value.code == "unexpected_redirect"
        assert len(server.seen) == 4
        assert elsewhere.seen == []  # neither the apikey nor the bearer token left


def test_unexpected_answers_are_server_errors() -> None:
    with fake_server() as server:
        server.status, server.content_type = 200, "application/json"
        config = RendioConfig(supabase_url=server.url)
        with RendioAdmin(config) as admin:
            for body in (b"null", b'"three"', b"<html>ok</html>"):
                server.body = body
                with pytest.raises(ServerError) as caught:
                    admin.purge_expired_idempotency_keys()
                assert caught.value.code == "invalid_response"
            server.seen.clear()
            server.body = b'{"replayed": false}'
            with pytest.raises(ServerError) as created:
                admin.create_job(uuid.uuid4(), uuid.uuid4(), "a cat")
            assert created.value.code == "invalid_response"
            assert len(server.seen) == 1  # not retried: a retry cannot fix the shape
            assert "idempotency_key" in created.value.details
            server.body = b'{"job_id": "not-a-uuid"}'
            with pytest.raises(ServerError):
                admin.create_job(uuid.uuid4(), uuid.uuid4(), "a cat")


def test_calls_after_close_are_configuration_errors() -> None:
    with fake_server() as server:
        config = RendioConfig(supabase_url=server.url)
        client = RendioClient(config)
        client.close()
        for call in (client.list_models, client.sign_in_anonymously, client.session):
            with pytest.raises(ConfigurationError):
                call()
        assert server.seen == []
