"""The library's pure parts: exports, config, cursors, fingerprints, the sync generation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import rendio_backend
from rendio_backend import BUCKETS, ConfigurationError, InvalidRequest, RendioConfig, request_hash
from rendio_backend._core import arguments, idempotency, paging, responses, storage
from rendio_backend._core.catalog import load_catalog, seed_item
from rendio_backend.config import (
    LOCAL_ANON_KEY,
    LOCAL_API_URL,
    LOCAL_PUBLISHABLE_KEY,
    LOCAL_SECRET_KEY,
    LOCAL_SERVICE_ROLE_KEY,
)

REPO = Path(__file__).resolve().parents[2]


def test_all_lists_exactly_the_public_names() -> None:
    import types

    for name in rendio_backend.__all__:  # each resolves (they load lazily)
        getattr(rendio_backend, name)
    public = {name for name, value in vars(rendio_backend).items()
              if not name.startswith("_") and not isinstance(value, types.ModuleType)
              and name not in ("annotations", "TYPE_CHECKING", "Any")}
    assert set(rendio_backend.__all__) == public
    assert rendio_backend.__all__ == sorted(rendio_backend.__all__)


def test_the_local_stack_does_not_load_the_library() -> None:
    import subprocess
    import sys

    code = ("import sys, rendio_backend.local.gateway; "
            "print(sorted(m for m in ('supabase', 'postgrest', 'storage3', 'pydantic', "
            "'rendio_backend.models') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=REPO).stdout.strip()
    assert loaded == "[]"


def test_every_public_method_has_a_docstring() -> None:
    for cls in (rendio_backend.RendioClient, rendio_backend.AsyncRendioClient,
                rendio_backend.RendioAdmin, rendio_backend.AsyncRendioAdmin):
        for name in dir(cls):
            if not name.startswith("_"):
                assert getattr(cls, name).__doc__, f"{cls.__name__}.{name} has no docstring"


def _generate_sync() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("generate_sync",
                                                  REPO / "scripts" / "generate_sync.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sync_code_is_generated_from_async() -> None:
    stale = _generate_sync().stale_files(REPO / "rendio_backend")
    assert stale == [], f"run `python scripts/generate_sync.py`; stale: {stale}"


def test_code_async_by_nature_is_refused_under_async(tmp_path: Path) -> None:
    module = _generate_sync()
    (tmp_path / "_async").mkdir()
    (tmp_path / "_async" / "ok.py").write_text("import asyncio\nawait asyncio.sleep(1)\n")
    assert module.generate(tmp_path) == [tmp_path / "_async" / "ok.py"]
    (tmp_path / "_async" / "worker.py").write_text("results = asyncio.gather(a(), b())\n")
    with pytest.raises(module.AsyncByNature, match=r"worker.py:1: asyncio.gather"):
        module.generate(tmp_path)


def test_local_keys_are_the_stacks_defaults() -> None:
    from rendio_backend.local.config import DEFAULT_API_PORT, DEFAULT_JWT_SECRET, sign_api_key
    from rendio_backend.local.keys import DEFAULT_PUBLISHABLE_KEY, DEFAULT_SECRET_KEY

    assert (LOCAL_PUBLISHABLE_KEY, LOCAL_SECRET_KEY) == (DEFAULT_PUBLISHABLE_KEY,
                                                         DEFAULT_SECRET_KEY)
    assert LOCAL_ANON_KEY == sign_api_key(DEFAULT_JWT_SECRET, "anon")
    assert LOCAL_SERVICE_ROLE_KEY == sign_api_key(DEFAULT_JWT_SECRET, "service_role")
    assert LOCAL_API_URL.endswith(f":{DEFAULT_API_PORT}")


def test_config_defaults_env_and_dotenv(tmp_path: Path) -> None:
    empty = RendioConfig.from_env(env_file=None, environ={})
    assert empty.supabase_url == LOCAL_API_URL and empty.anon_key == LOCAL_PUBLISHABLE_KEY
    assert empty.service_role_key == LOCAL_SECRET_KEY and empty.is_local
    assert empty.jwt_secret is None

    dotenv = tmp_path / ".env"
    dotenv.write_text("SUPABASE_URL=https://abc.supabase.co\nSUPABASE_ANON_KEY=from-file\n"
                      "FALAI_API_KEY=fal-secret\nRENDIO_HTTP_TIMEOUT=12.5\n")
    hosted = RendioConfig.from_env(env_file=dotenv, environ={"SUPABASE_ANON_KEY": "from-env"})
    assert hosted.supabase_url == "https://abc.supabase.co"
    assert hosted.anon_key == "from-env"  # the environment wins over .env
    assert hosted.service_role_key is None  # never the demo key for a hosted project
    assert hosted.falai_api_key == "fal-secret" and hosted.timeout == 12.5
    assert "fal-secret" not in repr(hosted) and "from-env" not in repr(hosted)
    assert hosted.rest_url == "https://abc.supabase.co/rest/v1"
    assert hosted.storage_url == "https://abc.supabase.co/storage/v1/"
    with pytest.raises(ConfigurationError):
        hosted.require_service_role_key()
    with pytest.raises(ConfigurationError):
        RendioConfig.from_env(env_file=None, environ={"SUPABASE_URL": "https://x.supabase.co"})
    with pytest.raises(ConfigurationError):
        RendioConfig.from_env(env_file=None, environ={"RENDIO_HTTP_TIMEOUT": "-1"})
    other_port = RendioConfig.from_env(env_file=None,
                                       environ={"SUPABASE_URL": "http://localhost:9999/"})
    assert other_port.anon_key == LOCAL_PUBLISHABLE_KEY
    assert other_port.base_url.endswith(":9999")
    with pytest.raises(ConfigurationError):
        rendio_backend.RendioAdmin(hosted)


def test_config_prefers_the_new_key_names(tmp_path: Path) -> None:
    hosted = {"SUPABASE_URL": "https://abc.supabase.co"}
    legacy = RendioConfig.from_env(env_file=None, environ={
        **hosted, "SUPABASE_ANON_KEY": "anon-jwt", "SUPABASE_SERVICE_ROLE_KEY": "service-jwt"})
    assert (legacy.anon_key, legacy.service_role_key) == ("anon-jwt", "service-jwt")
    both = RendioConfig.from_env(env_file=None, environ={
        **hosted, "SUPABASE_ANON_KEY": "anon-jwt", "SUPABASE_PUBLISHABLE_KEY": "sb_publishable_x",
        "SUPABASE_SERVICE_ROLE_KEY": "service-jwt", "SUPABASE_SECRET_KEY": "sb_secret_y",
        "SUPABASE_JWT_SECRET": "a-secret"})
    assert (both.anon_key, both.service_role_key) == ("sb_publishable_x", "sb_secret_y")
    assert both.jwt_secret == "a-secret" and "a-secret" not in repr(both)
    # A new name in .env beats a legacy one in the environment: it is the project's choice.
    dotenv = tmp_path / ".env"
    dotenv.write_text("SUPABASE_PUBLISHABLE_KEY=sb_publishable_file\n")
    mixed = RendioConfig.from_env(env_file=dotenv,
                                  environ={**hosted, "SUPABASE_ANON_KEY": "anon-jwt"})
    assert mixed.anon_key == "sb_publishable_file"
    with pytest.raises(ConfigurationError, match="SUPABASE_PUBLISHABLE_KEY"):
        RendioConfig.from_env(env_file=None, environ=hosted)


def test_request_hash_is_canonical() -> None:
    a = request_hash("post", "/p", {"b": 1, "a": {"y": 2, "x": 1}})
    b = request_hash("POST", "/p", {"a": {"x": 1, "y": 2}, "b": 1})
    assert a == b and len(a) == 64
    assert request_hash("POST", "/p", {"b": 2}) != request_hash("POST", "/p", {"b": 1})
    assert request_hash("POST", "/q", {"b": 1}) != request_hash("POST", "/p", {"b": 1})


def test_cursors_round_trip_and_reject_garbage() -> None:
    when = datetime(2026, 11, 27, 8, 0, 0, 123456, tzinfo=UTC)
    job = uuid.uuid4()
    keyset = paging.job_keyset_filter(paging.job_cursor(when, job))
    assert keyset == (f'created_at.lt."{when.isoformat()}",'
                      f'and(created_at.eq."{when.isoformat()}",job_id.lt.{job})')
    assert paging.cursor_version(paging.version_cursor(7)) == 7
    for garbage in ("", "!!!", paging.encode_cursor({"x": 1}),
                    paging.encode_cursor({"c": "yesterday", "i": "nope"})):
        with pytest.raises(InvalidRequest):
            paging.job_keyset_filter(garbage)
    with pytest.raises(InvalidRequest):
        paging.cursor_version(paging.encode_cursor({"v": "1; drop table"}))


def test_idempotency_keys_and_paths() -> None:
    key = uuid.uuid4()
    assert idempotency.idempotency_key(key) == key
    assert idempotency.idempotency_key(str(key)) == key
    assert isinstance(idempotency.idempotency_key(None), uuid.UUID)
    with pytest.raises(InvalidRequest):
        idempotency.idempotency_key("not-a-uuid")
    user = uuid.uuid4()
    assert storage.object_key("videos", f"videos/{user}/j.mp4") == f"{user}/j.mp4"
    assert storage.object_key("videos", f"{user}/j.mp4") == f"{user}/j.mp4"
    assert storage.upload_path(user, "image/jpeg", "face") == f"{user}/face.jpg"
    with pytest.raises(InvalidRequest):
        storage.upload_path(user, "image/jpeg", "../escape")
    assert arguments.interval(90, "lease") == "90.000000 seconds"


def test_bucket_and_catalog_diffs() -> None:
    spec = BUCKETS[0]
    same = {"public": False, "file_size_limit": spec.file_size_limit,
            "allowed_mime_types": list(reversed(spec.allowed_mime_types))}
    assert storage.bucket_item(spec, same).action.value == "unchanged"
    assert storage.bucket_item(spec, None).action.value == "created"
    assert storage.bucket_item(spec, {**same, "public": True}).changes == {
        "public": [True, False]}
    catalog = load_catalog()
    veo = catalog.models[0]
    assert veo.provider_model_id == "fal-ai/veo3.1"
    assert seed_item(veo, veo.row()).action.value == "unchanged"
    assert seed_item(veo, {**veo.row(), "name": "x"}).changed_fields == ["name"]
    assert {m.provider_model_id for m in catalog.models if not m.is_available} == {
        "fal-ai/sora-2/text-to-video", "fal-ai/sora-2/image-to-video"}


def test_request_hash_hashes_exactly_the_json_and_rejects_the_rest() -> None:
    import hashlib
    import json

    body = {"model_id": str(uuid.UUID(int=7)), "prompt": "çay ☕", "settings": {"b": 1, "a": 2.5}}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    expected = hashlib.sha256(f"POST\n/p\n{canonical}\n".encode()).hexdigest()
    assert request_hash("post", "/p", body) == expected  # the stored format is unchanged
    assert idempotency.canonical_json(body) == canonical.encode("utf-8")
    # default=str used to hash a datetime and its ISO string alike; now neither collides.
    when = datetime(2026, 1, 1, tzinfo=UTC)
    for bad in ({"x": when}, {"x": float("nan")}, {"x": float("inf")}, {"x": "\ud800"},
                {"x": {1, 2}}, {"x": b"bytes"}):
        with pytest.raises(InvalidRequest):
            request_hash("POST", "/p", bad)
    body = idempotency.generation_body(uuid.UUID("8B87C271-F01C-550B-9E12-36CF851AAE46"), "a", None)
    assert body == {"model_id": "8b87c271-f01c-550b-9e12-36cf851aae46", "prompt": "a",
                    "settings": {}}
    for prompt, settings in (("\udfff", None), ("ok", {"fps": float("nan")}),
                             ("ok", {"when": when})):
        with pytest.raises(InvalidRequest) as caught:
            idempotency.generation_body(uuid.uuid4(), prompt, settings)
        assert caught.value.details["field"] in ("prompt", "settings")


def test_retry_policy() -> None:
    from rendio_backend import (
        IdempotencyKeyInUse,
        IdempotencyKeyReused,
        InsufficientCredits,
        RendioConnectionError,
        ServerError,
    )

    retryable = [RendioConnectionError("down"), RendioConnectionError("slow", code="timeout"),
                 IdempotencyKeyInUse("busy"), ServerError("boom", http_status=503),
                 ServerError("boom")]
    for error in retryable:
        assert idempotency.should_retry(error, 0) and idempotency.should_retry(error, 1)
        assert not idempotency.should_retry(error, 2)  # at most 2 retries
        assert not idempotency.should_retry(error, 0, max_retries=0)
    permanent = [InvalidRequest("bad"), IdempotencyKeyReused("other"),
                 InsufficientCredits(required=4, available=1),
                 ServerError("old schema", code="schema_out_of_date"),
                 ServerError("odd", code="invalid_response"),
                 ServerError("redirect", code="unexpected_redirect", http_status=502)]
    for error in permanent:
        assert not idempotency.should_retry(error, 0), error
    assert [idempotency.backoff_seconds(n) for n in (1, 2, 3, 4, 5, 10)] == [
        0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    for _ in range(200):
        assert 1.0 <= idempotency.add_jitter(2.0) <= 2.0


def test_storage_paths_storage3_would_refuse_are_validation_errors() -> None:
    user = uuid.uuid4()
    for bad in ("../etc/passwd", f"{user}/../x.mp4", f"{user}/./x.mp4", f"{user}/%2e%2e/x",
                f"{user}/%ff.mp4", "", "videos/"):
        with pytest.raises(InvalidRequest):
            storage.object_key("videos", bad)
    assert storage.object_key("videos", f"/{user}/a%20b.mp4") == f"{user}/a%20b.mp4"


def test_response_shape_checks() -> None:
    from rendio_backend import ServerError

    key = uuid.uuid4()
    good = {"response": {"job_id": str(uuid.uuid4()), "status": "pending", "credits_used": 2,
                         "credits_remaining": 8}, "replayed": True, "status_code": 202}
    created = responses.job_created(good, key)
    assert created.idempotency_key == key and created.replayed
    answers: list[object] = [None, [], "text", {"response": None}, {"response": {"job_id": "x"}}]
    for bad in answers:
        with pytest.raises(ServerError) as caught:
            responses.job_created(bad, key)
        assert caught.value.code == "invalid_response"
    assert responses.count(3, "f") == 3
    for answer in (None, "3", True, 2.5, [1]):
        with pytest.raises(ServerError):
            responses.count(answer, "f")
    with pytest.raises(ServerError):
        responses.signed_url({"error": "x"})


def test_only_loopback_hosts_are_local() -> None:
    from rendio_backend.config import is_loopback_url

    for url in ("http://127.0.0.1:1", "http://127.1.2.3", "http://localhost:8000",
                "http://LOCALHOST.", "http://[::1]:54321"):
        assert is_loopback_url(url), url
    for url in ("http://127.example.com", "https://localhost.example.com",
                "http://128.0.0.1", "https://abc.supabase.co", "http://[::2]", "not a url"):
        assert not is_loopback_url(url), url
    with pytest.raises(ConfigurationError):  # no demo keys for a look-alike host
        RendioConfig(supabase_url="http://127.example.com:54321")


def test_errors_without_a_usable_body_map_by_status() -> None:
    from postgrest.exceptions import APIError

    from rendio_backend import (
        AuthError,
        NotFound,
        PermissionDenied,
        RateLimited,
        ServerError,
    )
    from rendio_backend._errors_map import from_postgrest

    for code, expected, status in (("429", RateLimited, 429), ("403", PermissionDenied, 403),
                                   ("404", NotFound, 404), ("500", ServerError, 500),
                                   ("502", ServerError, 502), ("418", InvalidRequest, 418),
                                   ("401", AuthError, 401), ("302", ServerError, 502)):
        mapped = from_postgrest(APIError({"code": code, "message": "Whatever",
                                          "details": "<html>...</html>"}))
        assert type(mapped) is expected and mapped.http_status == status, code
    redirect = from_postgrest(APIError({"code": "302", "message": "Found"}))
    assert redirect.code == "unexpected_redirect"
