"""The HTTP API end to end: through the gateway at /functions/v1, with real tokens from
the local Auth, the official client for the setup, and httpx for the wire."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest

from rendio_backend import RendioAdmin, RendioClient
from tests.support.stack import RunningStack

VEO = "8b87c271-f01c-550b-9e12-36cf851aae46"  # Veo 3.1 in the catalog, 4 credits
PROMPT = "A paper boat drifting down a rainy street"
# Every route the API serves and the test that covers it; the OpenAPI test keeps the
# two in step, so a new route cannot land untested.
COVERED = {
    ("get", "/health"): "test_health_and_unknown_routes",
    ("post", "/generate-video"): "test_generate_replay_reuse_and_concurrency",
    ("get", "/get-video-status"): "test_status_of_own_completed_and_failed_jobs",
    ("get", "/get-video-jobs"): "test_jobs_are_paged_newest_first",
    ("post", "/device/check"): "test_apple.py::test_guest_onboarding_then_reinstall_gets_nothing",
    ("post", "/update-credits"): "test_apple.py::test_purchase_replay_and_unknown_product",
    ("post", "/apple/notifications"):
        "test_apple.py::test_refund_takes_credits_back_once_never_below_zero",
    ("post", "/webhooks/fal"):
        "generation/test_webhooks.py::test_unsigned_or_forged_webhooks_are_refused",
}


@dataclass
class Guest:
    client: RendioClient
    user_id: str
    token: str

    def headers(self, key: uuid.UUID | str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"}
        if key is not None:
            headers["Idempotency-Key"] = str(key)
        return headers


@pytest.fixture(scope="module")
def admin(stack: RunningStack) -> Iterator[RendioAdmin]:
    with RendioAdmin(stack.config.rendio_config()) as admin:
        admin.provision_storage()
        admin.seed_models()
        yield admin


@pytest.fixture
def api(stack: RunningStack) -> Iterator[httpx.Client]:
    headers = {"apikey": stack.config.anon_key}
    with httpx.Client(base_url=f"{stack.config.api_url}/functions/v1", headers=headers,
                      timeout=30) as client:
        yield client


@pytest.fixture
def new_guest(stack: RunningStack, admin: RendioAdmin) -> Iterator[Callable[[int], Guest]]:
    """`new_guest(credits)`: an anonymous user with that balance; the ledger is checked
    after the test, whatever it did."""
    clients: list[RendioClient] = []

    def new(credits: int) -> Guest:
        client = RendioClient(stack.config.rendio_config())
        clients.append(client)
        session = client.sign_in_anonymously()
        if credits:
            admin.add_credits(session.user_id, credits)
        return Guest(client, str(session.user_id), session.access_token)

    yield new
    for client in clients:
        client.close()
    assert admin.verify_ledger() == []


@pytest.fixture
def guest(new_guest: Callable[[int], Guest]) -> Guest:
    return new_guest(10)


def _generate(api: httpx.Client, guest: Guest, key: uuid.UUID | str | None = None,
              **body: Any) -> httpx.Response:
    payload = {"model_id": VEO, "prompt": PROMPT, "settings": {"duration": "8s"}, **body}
    return api.post("/generate-video", json=payload,
                    headers=guest.headers(key if key is not None else uuid.uuid4()))


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["message"]
    return dict(body["error"])


def test_health_and_unknown_routes(api: httpx.Client) -> None:
    assert api.get("/health").json() == {"status": "ok"}
    missing = api.get("/no-such-function")
    assert missing.status_code == 404 and _error(missing)["code"] == "not_found"


def test_openapi_is_valid_and_every_route_is_tested(api: httpx.Client) -> None:
    from openapi_spec_validator import validate

    document = api.get("/openapi.json").json()
    validate(document)
    served = {(method, path) for path, item in document["paths"].items() for method in item}
    assert served == set(COVERED), "add a test for each new route to COVERED"
    from tests.api import test_apple
    from tests.generation import test_webhooks

    modules = {"": sys.modules[__name__], "test_apple.py": test_apple,
               "generation/test_webhooks.py": test_webhooks}
    for test in COVERED.values():  # each named test exists
        module, _, name = test.rpartition("::")
        assert callable(getattr(modules[module], name, None)), test
    assert api.get("/docs").status_code == 200


def test_openapi_documents_the_answers_sent(api: httpx.Client, guest: Guest) -> None:
    document = api.get("/openapi.json").json()
    # A request FastAPI cannot read is answered 400 in the envelope, never its 422.
    assert "HTTPValidationError" not in json.dumps(document)
    status = api.get("/get-video-status", params={"job_id": "not-a-uuid"},
                     headers=guest.headers())
    assert status.status_code == 400, status.text
    assert status.json()["error"]["code"] == "invalid_request"
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if operation.get("parameters") or operation.get("requestBody"):
                assert "400" in operation["responses"], (method, path)


def test_generate_replay_reuse_and_concurrency(
    api: httpx.Client, guest: Guest, stack: RunningStack
) -> None:
    key = uuid.uuid4()
    first = _generate(api, guest, key)
    assert first.status_code == 202, first.text
    body = first.json()
    assert body["status"] == "pending" and body["credits_used"] == 4
    assert body["credits_remaining"] == 6 and "Idempotent-Replayed" not in first.headers

    replay = _generate(api, guest, key)
    assert replay.status_code == 202 and replay.content == first.content
    assert replay.headers["Idempotent-Replayed"] == "true"

    reused = _generate(api, guest, key, prompt="another prompt")
    assert reused.status_code == 422 and _error(reused)["code"] == "idempotency_key_reused"

    # 20 concurrent requests with one key: one job, one charge.
    async def burst(key: uuid.UUID) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=str(api.base_url), timeout=30,
                                     headers=dict(api.headers)) as client:
            payload = {"model_id": VEO, "prompt": PROMPT, "settings": {"duration": "8s"}}
            return await asyncio.gather(*(
                client.post("/generate-video", json=payload, headers=guest.headers(key))
                for _ in range(20)))

    concurrent = asyncio.run(burst(uuid.uuid4()))
    statuses = sorted({r.status_code for r in concurrent})
    assert set(statuses) <= {202, 409}, [r.text for r in concurrent]
    accepted = [r for r in concurrent if r.status_code == 202]
    assert accepted and len({r.json()["job_id"] for r in accepted}) == 1
    for refused in (r for r in concurrent if r.status_code == 409):
        assert _error(refused)["code"] == "idempotency_key_in_use"
    assert guest.client.get_balance().credits_remaining == 2  # two jobs, 8 credits


def test_payment_and_limits_charge_nothing_when_refused(
    api: httpx.Client, new_guest: Callable[[int], Guest], admin: RendioAdmin
) -> None:
    short = _generate(api, new_guest(3))
    assert short.status_code == 402
    assert {"code": "insufficient_credits", "required": 4,
            "available": 3}.items() <= _error(short).items()
    rich = new_guest(40)
    for _ in range(3):  # the default limit: three jobs in flight
        assert _generate(api, rich).status_code == 202
    over = _generate(api, rich)
    assert over.status_code == 429 and _error(over)["code"] == "rate_limited"
    assert over.headers["Retry-After"] == "30"
    assert rich.client.get_balance().credits_remaining == 28  # the fourth charged nothing
    unavailable = next(m for m in admin.list_models() if not m.is_available)
    gone = _generate(api, rich, model_id=str(unavailable.id), settings={})
    assert gone.status_code == 422 and _error(gone)["code"] == "model_unavailable"


@pytest.mark.parametrize(("change", "status", "field"), [
    ({"model_id": str(uuid.uuid4())}, 404, None),
    ({"prompt": ""}, 400, "prompt"),
    ({"prompt": "x" * 2001}, 400, "prompt"),
    ({"prompt": "a\x00b"}, 400, "prompt"),  # PostgreSQL text cannot hold NUL (was a 500)
    ({"settings": {"duration": "9s"}}, 400, "settings.duration"),
    ({"settings": {"fps": 60}}, 400, "settings.fps"),
    ({"extra": 1}, 400, "extra"),
    ({"model_id": "not-a-uuid"}, 400, "model_id"),
])
def test_bad_requests_are_4xx_envelopes_and_charge_nothing(
    api: httpx.Client, guest: Guest, change: dict[str, Any], status: int, field: str | None
) -> None:
    response = _generate(api, guest, **change)
    assert response.status_code == status, response.text
    error = _error(response)
    if field is not None:
        assert error["field"] == field and error["code"] == "invalid_request"
    assert guest.client.get_balance().credits_remaining == 10


def test_malformed_bodies_and_headers(api: httpx.Client, guest: Guest) -> None:
    bad_json = api.post("/generate-video", content=b"{not json",
                        headers={**guest.headers(uuid.uuid4()),
                                 "Content-Type": "application/json"})
    assert bad_json.status_code == 400 and _error(bad_json)["code"] == "invalid_request"
    big = api.post("/generate-video", content=b" " * (65 * 1024),
                   headers={**guest.headers(uuid.uuid4()), "Content-Type": "application/json"})
    assert big.status_code == 413 and _error(big)["code"] == "payload_too_large"
    # Without a Content-Length (chunked), the limit holds while the body streams in.
    streamed = api.post("/generate-video", content=iter([b" " * 16384] * 5),
                        headers={**guest.headers(uuid.uuid4()),
                                 "Content-Type": "application/json"})
    assert "content-length" not in streamed.request.headers
    assert streamed.status_code == 413 and _error(streamed)["code"] == "payload_too_large"
    # Not UTF-8: FastAPI's own 400 "error parsing the body", answered with our code.
    binary = api.post("/generate-video", content=b"[h\xb4\xbb\x8a",
                      headers={**guest.headers(uuid.uuid4()), "Content-Type": "application/json"})
    assert binary.status_code == 400
    assert {"code": "invalid_request", "field": "body"}.items() <= _error(binary).items()
    payload = {"model_id": VEO, "prompt": PROMPT}
    for headers in (guest.headers(), guest.headers("not-a-uuid")):
        response = api.post("/generate-video", json=payload, headers=headers)
        assert response.status_code == 400 and _error(response)["field"] == "Idempotency-Key"
    assert guest.client.get_balance().credits_remaining == 10


def _forged_tokens(stack: RunningStack, guest: Guest) -> dict[str, str]:
    claims = jwt.decode(guest.token, options={"verify_signature": False})
    now = int(time.time())
    header = {"alg": "none", "typ": "JWT"}
    unsigned = ".".join(
        jwt.utils.base64url_encode(json.dumps(part).encode()).decode()
        for part in (header, claims)) + "."
    return {
        "wrong secret": jwt.encode(claims, "not-the-secret-" * 4, algorithm="HS256"),
        "expired": stack.user_jwt(guest.user_id, expires_in=-60),
        "alg none": unsigned,
        "wrong audience": stack.user_jwt(guest.user_id, aud="somebody-else"),
        "anon role": stack.config.anon_key,
        "service role": stack.config.service_role_key,
        "not a jwt": "garbage",
        "no sub": jwt.encode({"role": "authenticated", "aud": "authenticated",
                              "exp": now + 60}, stack.config.jwt_secret, algorithm="HS256"),
    }


def test_bad_tokens_get_401_on_every_route(
    api: httpx.Client, guest: Guest, stack: RunningStack
) -> None:
    calls = [("post", "/generate-video"), ("get", f"/get-video-status?job_id={uuid.uuid4()}"),
             ("get", "/get-video-jobs")]
    for name, token in [*_forged_tokens(stack, guest).items(), ("missing", "")]:
        for method, path in calls:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = api.request(method, path, headers={**headers,
                                                          "Idempotency-Key": str(uuid.uuid4())},
                                   json={"model_id": VEO, "prompt": PROMPT})
            assert response.status_code == 401, (name, path, response.text)
            assert _error(response)["code"] == "unauthorized"
    assert guest.client.get_balance().credits_remaining == 10


def test_status_of_own_completed_and_failed_jobs(
    api: httpx.Client, guest: Guest, admin: RendioAdmin, new_guest: Callable[[int], Guest]
) -> None:
    done = _generate(api, guest).json()["job_id"]
    video = admin.upload_video(guest.user_id, done, b"\x00\x00\x00\x18ftypmp42 fake video")
    thumb = admin.upload_thumbnail(guest.user_id, done, b"\xff\xd8\xff fake jpeg")
    assert admin.complete_job(done, video_path=video.path, thumbnail_path=thumb.path)
    status = api.get("/get-video-status", params={"job_id": done}, headers=guest.headers())
    assert status.status_code == 200, status.text
    body = status.json()
    assert body["status"] == "completed" and body["failure"] is None
    assert httpx.get(body["video_url"]).content.endswith(b"fake video")
    assert httpx.get(body["thumbnail_url"]).content.endswith(b"fake jpeg")

    failed = _generate(api, guest).json()["job_id"]
    admin.fail_job(failed, "fal: upstream said 'secret provider detail' (req-123)")
    body = api.get("/get-video-status", params={"job_id": failed},
                   headers=guest.headers()).json()
    assert body["status"] == "failed" and body["failure"]["code"] == "generation_failed"
    assert "secret provider detail" not in json.dumps(body) and body["video_url"] is None

    # Another user's job, an unknown job: 404, never 403.
    stranger = new_guest(0)
    for job in (done, str(uuid.uuid4())):
        response = api.get("/get-video-status", params={"job_id": job},
                           headers=stranger.headers())
        assert response.status_code == 404 and _error(response)["code"] == "not_found"
    bad = api.get("/get-video-status", params={"job_id": "x"}, headers=guest.headers())
    assert bad.status_code == 400 and _error(bad)["field"] == "job_id"


def test_jobs_are_paged_newest_first(
    api: httpx.Client, new_guest: Callable[[int], Guest], admin: RendioAdmin
) -> None:
    guest = new_guest(40)
    created = []
    for _ in range(3):
        job = _generate(api, guest).json()["job_id"]
        admin.fail_job(job, "done")  # frees its slot in flight
        created.append(job)
    guest.client.delete_job(created[0])  # soft-deleted jobs are left out
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/get-video-jobs", params=params, headers=guest.headers()).json()
        seen += [item["job_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == created[:0:-1]
    for limit in (0, 51):
        response = api.get("/get-video-jobs", params={"limit": limit}, headers=guest.headers())
        assert response.status_code == 400 and _error(response)["field"] == "limit"


def test_the_library_calls_the_api_as_the_app_does(guest: Guest) -> None:
    key = uuid.uuid4()
    job = guest.client.generate_video(VEO, PROMPT, {"duration": "4s"}, idempotency_key=key)
    again = guest.client.generate_video(VEO, PROMPT, {"duration": "4s"}, idempotency_key=key)
    assert again.replayed and again.job_id == job.job_id and not job.replayed
    status = guest.client.video_status(job.job_id)
    assert status.status.value == "pending" and status.prompt == PROMPT
    page = guest.client.video_jobs(limit=5)
    assert [item.job_id for item in page.items] == [job.job_id]
    from rendio_backend import IdempotencyKeyReused, InsufficientCredits

    with pytest.raises(IdempotencyKeyReused):
        guest.client.generate_video(VEO, "other", idempotency_key=key)
    guest.client.generate_video(VEO, PROMPT)
    with pytest.raises(InsufficientCredits) as short:
        guest.client.generate_video(VEO, PROMPT)
    assert (short.value.required, short.value.available) == (4, 2)
