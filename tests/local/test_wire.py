"""The local stack on the wire, point by point against the real servers (issue 11).

Each test pins what supabase/auth, supabase/storage and the Supabase CLI's Kong send
(status, body, headers), through the official clients and raw httpx, so the local stack
cannot drift from them unnoticed: first what it did differently (two security holes,
browsers, limits, list-v2, ...), then what already matched.

The session stack raises the rate limits and keeps email confirmations off (see
tests/support/stack.py); tests about the defaults of a new hosted project run against
`hosted`, a second gateway on the same database with those defaults.
"""

from __future__ import annotations

import base64
import email.utils
import json
import os
import re
import secrets
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from storage3.exceptions import StorageApiError
from supabase import Client
from supabase_auth.errors import AuthApiError

from rendio_backend.local.auth_settings import AuthSettings, RateLimits
from rendio_backend.local.fake_apple import FakeAppleIssuer
from tests.local.test_auth import _client as _auth_client
from tests.local.test_auth import _email, _link_apple
from tests.local.test_js_client import JS_DIR, _install_node_deps, _tool
from tests.local.test_storage import _client as _storage_client
from tests.local.test_storage import _new_user
from tests.support.gateways import ServedGateway, serve_gateways
from tests.support.stack import own_folder_policies

V2024 = {"X-Supabase-Api-Version": "2024-01-01"}
ORIGIN = "http://localhost:3000"

# --- helpers ----------------------------------------------------------------------------


def _service_headers(config: Any) -> dict[str, str]:
    return {"apikey": config.service_role_key,
            "Authorization": f"Bearer {config.service_role_key}"}


def _auth_headers(config: Any, token: str | None = None, *,
                  address: str | None = None) -> dict[str, str]:
    """What supabase-js sends to Auth (API version 2024-01-01); `address` is the client's
    address as the proxy in front of hosted Auth reports it."""
    headers = {"apikey": config.anon_key, **V2024}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if address:
        headers["X-Forwarded-For"] = address
    return headers


def _address() -> str:
    """A client address of its own, so a test's rate-limit buckets are its own."""
    return "10." + ".".join(str(secrets.randbelow(250) + 1) for _ in range(3))


def _claims(token: str) -> dict[str, Any]:
    # The claims as a client reads them: which key signs them is issue 10's concern.
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _anonymous_session(config: Any) -> dict[str, Any]:
    response = httpx.post(f"{config.auth_url}/signup", json={}, headers=_auth_headers(config))
    assert response.status_code == 200, response.text
    session: dict[str, Any] = response.json()
    return session


def _verify(config: Any, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{config.auth_url}/verify", json=body, headers=_auth_headers(config))


@pytest.fixture(scope="module")
def config(stack: Any) -> Any:
    return stack.config


@pytest.fixture(scope="module")
def service(config: Any) -> Client:
    return _storage_client(config.api_url, config.service_role_key)


@pytest.fixture(scope="module")
def open_bucket(service: Client) -> Iterator[str]:
    """A public bucket without a MIME allow-list (anything may be stored in it)."""
    name = f"wire-{uuid.uuid4().hex[:8]}"
    service.storage.create_bucket(name, options={"public": True})
    yield name
    service.storage.empty_bucket(name)
    service.storage.delete_bucket(name)


@pytest.fixture(scope="module")
def gateways(stack: Any) -> Iterator[dict[str, ServedGateway]]:
    """`hosted`: a new hosted project's Auth settings, untouched; `guests`: the same with
    anonymous sign-ins on, as Rendio's config.toml asks; `closed`: sign-ups off, and the
    rate limits too (as for a load test)."""
    closed = AuthSettings(enable_signup=False, enable_anonymous_sign_ins=True,
                          rate_limits=RateLimits(enabled=False))
    with serve_gateways(stack, hosted={"auth": AuthSettings()}, guests={
            "auth": AuthSettings(enable_anonymous_sign_ins=True)},
            closed={"auth": closed}) as served:
        yield served


@pytest.fixture(scope="module")
def hosted(gateways: dict[str, ServedGateway]) -> ServedGateway:
    return gateways["hosted"]


@pytest.fixture(scope="module")
def hosted_guests(gateways: dict[str, ServedGateway]) -> ServedGateway:
    return gateways["guests"]


# --- Storage: the two security holes ---------------------------------------------------


def _served(config: Any, bucket: str, key: str) -> list[httpx.Response]:
    """The object through every download route: authenticated, public and signed."""
    base = f"{config.api_url}/storage/v1"
    headers = _service_headers(config)
    signed = httpx.post(f"{base}/object/sign/{bucket}/{key}", json={"expiresIn": 60},
                        headers=headers)
    assert signed.status_code == 200, signed.text
    return [httpx.get(f"{base}/object/authenticated/{bucket}/{key}", headers=headers),
            httpx.get(f"{base}/object/public/{bucket}/{key}"),
            httpx.get(f"{base}{signed.json()['signedURL']}"),
            httpx.head(f"{base}/object/{bucket}/{key}", headers=headers)]


@pytest.mark.parametrize("stored_type", [
    "text/html", "text/html; charset=utf-8", "Text/HTML", "application/xhtml+text/html"])
def test_stored_html_is_served_as_plain_text(config: Any, open_bucket: str,
                                             stored_type: str) -> None:
    """Storage's renderer serves any type containing `text/html` as `text/plain`: HTML
    uploaded to a bucket never runs as a page of the API's origin."""
    key = f"page-{uuid.uuid4().hex[:6]}.html"
    page = b"<script>alert(document.domain)</script>"
    uploaded = httpx.post(f"{config.api_url}/storage/v1/object/{open_bucket}/{key}",
                          content=page, headers={**_service_headers(config),
                                                 "content-type": stored_type})
    assert uploaded.status_code == 200, uploaded.text
    for response in _served(config, open_bucket, key):
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/plain"
        assert response.headers["x-content-type-options"] == "nosniff"
    info = httpx.get(f"{config.api_url}/storage/v1/object/info/{open_bucket}/{key}",
                     headers=_service_headers(config)).json()
    assert info["content_type"] == stored_type  # stored as given, only served safely


def test_mime_allow_list_loophole_is_served_safely(config: Any, service: Client) -> None:
    """`image/png/text/html` passes an `image/png` allow-list (Storage compares only the
    first two parts, and so do we), but is then served as text, never as HTML."""
    name = f"png-{uuid.uuid4().hex[:8]}"
    service.storage.create_bucket(name, options={"public": True,
                                                 "allowed_mime_types": ["image/png"]})
    try:
        url = f"{config.api_url}/storage/v1/object/{name}/x.png"
        sneaky = httpx.post(url, content=b"<script>1</script>",
                            headers={**_service_headers(config),
                                     "content-type": "image/png/text/html"})
        assert sneaky.status_code == 200, sneaky.text
        refused = httpx.post(url.replace("x.png", "y.html"), content=b"<p>",
                             headers={**_service_headers(config), "content-type": "text/html"})
        assert refused.status_code == 400 and refused.json()["statusCode"] == "415"
        for response in _served(config, name, "x.png"):
            assert response.headers["content-type"] == "text/plain"
            assert response.headers["x-content-type-options"] == "nosniff"
        png = httpx.post(url.replace("x.png", "ok.png"), content=b"\x89PNG",
                         headers={**_service_headers(config), "content-type": "image/png"})
        assert png.status_code == 200
        for response in _served(config, name, "ok.png"):
            assert response.headers["content-type"] == "image/png"
            assert response.headers["x-content-type-options"] == "nosniff"
    finally:
        service.storage.empty_bucket(name)
        service.storage.delete_bucket(name)


# --- Gateway: browsers (Kong's cors plugin) ----------------------------------------------


@pytest.mark.parametrize("path", ["/rest/v1/users?select=id", "/auth/v1/token?grant_type=password",
                                  "/auth/v1/user", "/storage/v1/object/any/thing.png",
                                  "/storage/v1/object/list-v2/any", "/functions/v1/anything"])
def test_preflights_are_answered_at_the_gateway(config: Any, path: str) -> None:
    """A browser's preflight carries no apikey; the CLI's Kong answers it before key-auth
    and before any service (so Storage never sees an OPTIONS it has no route for)."""
    asked = "apikey, authorization, content-type, x-client-info, x-supabase-api-version"
    response = httpx.options(f"{config.api_url}{path}", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": asked})
    assert (response.status_code, response.content) == (200, b"")
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-allow-headers"] == asked
    assert response.headers["access-control-allow-methods"] == (
        "GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT")


def test_every_service_answer_allows_any_origin(config: Any) -> None:
    headers = {"Origin": ORIGIN}
    answers = {
        "rest": httpx.get(f"{config.api_url}/rest/v1/",
                          headers={**headers, **_service_headers(config)}),
        "rest without key": httpx.get(f"{config.api_url}/rest/v1/users", headers=headers),
        "auth error": httpx.post(f"{config.auth_url}/token?grant_type=password",
                                 json={"email": _email(), "password": "not this one"},
                                 headers={**headers, **_auth_headers(config)}),
        "storage": httpx.get(f"{config.api_url}/storage/v1/bucket",
                             headers={**headers, **_service_headers(config)}),
        "no origin": httpx.get(f"{config.auth_url}/health", headers=_auth_headers(config)),
    }
    for name, response in answers.items():
        assert response.headers.get("access-control-allow-origin") == "*", name
    # GoTrue's own headers: supabase-js in a browser reads the API version (which error
    # format to parse) and the admin listing's paging headers only when exposed.
    auth = answers["auth error"]
    assert auth.headers["access-control-expose-headers"] == (
        "X-Total-Count, Link, X-Supabase-Api-Version")
    assert auth.headers["access-control-allow-credentials"] == "true"
    assert "Origin" in auth.headers["vary"]
    # Nothing answers outside the services' routes, as Kong's "no Route matched".
    stray = httpx.get(f"{config.api_url}/nowhere", headers=headers)
    assert stray.status_code == 404 and "access-control-allow-origin" not in stray.headers


# --- Auth: a new hosted project's defaults -----------------------------------------------


def test_settings_say_what_is_allowed(config: Any, hosted: ServedGateway,
                                      hosted_guests: ServedGateway) -> None:
    def settings(of: Any) -> dict[str, Any]:
        answer: dict[str, Any] = httpx.get(f"{of.auth_url}/settings",
                                           headers=_auth_headers(of)).json()
        return answer

    fresh = settings(hosted.config)
    assert (fresh["disable_signup"], fresh["mailer_autoconfirm"]) == (False, False)
    assert fresh["external"]["anonymous_users"] is False
    assert fresh["external"]["email"] and fresh["external"]["apple"]
    assert not fresh["external"]["phone"]
    assert settings(hosted_guests.config)["external"]["anonymous_users"] is True
    # The suite's stack: the CLI's config.toml (no confirmations) and guests allowed.
    suite = settings(config)
    assert suite["mailer_autoconfirm"] is True and suite["external"]["anonymous_users"]
    refused = httpx.post(f"{hosted.config.auth_url}/signup", json={},
                         headers=_auth_headers(hosted.config))
    assert (refused.status_code, refused.json()) == (422, {
        "code": "anonymous_provider_disabled", "message": "Anonymous sign-ins are disabled"})


def test_sign_up_waits_for_its_confirmation(hosted: ServedGateway, sql: Any) -> None:
    email, password = _email(), "the first password"
    signed_up = _auth_client(hosted).auth.sign_up({"email": email, "password": password})
    assert signed_up.session is None and signed_up.user is not None
    user = signed_up.user
    assert user.email == email and user.email_confirmed_at is None
    assert user.confirmation_sent_at is not None
    assert [i.provider for i in user.identities or []] == ["email"]
    with pytest.raises(AuthApiError) as unconfirmed:
        _auth_client(hosted).auth.sign_in_with_password({"email": email, "password": password})
    assert (unconfirmed.value.status, unconfirmed.value.code) == (400, "email_not_confirmed")

    # Signing up again never signs anyone in, whatever the password: within a minute it
    # is a second confirmation email, which GoTrue refuses.
    with pytest.raises(AuthApiError) as again:
        _auth_client(hosted).auth.sign_up({"email": email, "password": "someone else's"})
    assert (again.value.status, again.value.code) == (429, "over_email_send_rate_limit")
    assert re.fullmatch(r"For security purposes, you can only request this after \d+ "
                        r"seconds\.", again.value.message)

    # The link's token hash (as the email would carry it) confirms and signs in.
    ((hashed,),) = sql("select confirmation_token from auth.users where id = %s", user.id)
    confirmed = _verify(hosted.config, {"type": "signup", "token_hash": hashed})
    assert confirmed.status_code == 200, confirmed.text
    session = confirmed.json()
    assert session["user"]["id"] == user.id and session["user"]["email_confirmed_at"]
    assert session["user"]["identities"][0]["identity_data"]["email_verified"] is True
    assert [entry["method"] for entry in _claims(session["access_token"])["amr"]] == ["otp"]
    reused = _verify(hosted.config, {"type": "signup", "token_hash": hashed})
    assert (reused.status_code, reused.json()) == (403, {
        "code": "otp_expired", "message": "Email link is invalid or has expired"})
    signed_in = _auth_client(hosted).auth.sign_in_with_password(
        {"email": email, "password": password})
    assert signed_in.user is not None and signed_in.user.id == user.id

    # A registered address is not revealed: a made-up user, and no session.
    fake = _auth_client(hosted).auth.sign_up({"email": email, "password": "a guess at it"})
    assert fake.session is None and fake.user is not None
    assert fake.user.id != user.id and fake.user.identities == []


def test_the_code_in_the_log_confirms_too(hosted: ServedGateway) -> None:
    """No mailer: the gateway's log has the email's code, which `verify_otp` takes."""
    email = _email()
    client = _auth_client(hosted)
    assert client.auth.sign_up({"email": email, "password": "a fine password"}).session is None
    found = re.search(rf"confirmation email to {re.escape(email)} \(no mailer here\): "
                      r"code (\d{6}), token_hash ([0-9a-f]{56})", hosted.log_text())
    assert found is not None
    wrong = _verify(hosted.config, {"type": "email", "email": email, "token": "000000"
                                    if found.group(1) != "000000" else "111111"})
    assert (wrong.status_code, wrong.json()["code"]) == (403, "otp_expired")
    assert wrong.json()["message"] == "Token has expired or is invalid"
    verified = client.auth.verify_otp({"type": "email", "email": email,
                                       "token": found.group(1)})
    assert verified.session is not None and verified.user is not None
    assert verified.user.email_confirmed_at is not None


def test_email_change_stays_pending_until_confirmed(stack: Any, hosted: ServedGateway,
                                                   sql: Any) -> None:
    """A permanent user keeps `email` and gets `new_email` until the change is confirmed:
    from both addresses on a hosted project, from the new one without confirmations."""
    for served, double in ((hosted, True), (stack, False)):
        where = served.config
        old, new, password = _email(), _email(), "an email changer"
        admin = _auth_client(served, where.service_role_key)
        created = admin.auth.admin.create_user(
            {"email": old, "password": password, "email_confirm": True}).user
        client = _auth_client(served)
        client.auth.sign_in_with_password({"email": old, "password": password})
        changed = client.auth.update_user({"email": new}).user
        assert (changed.email, changed.new_email) == (old, new)
        assert changed.email_change_sent_at is not None
        seen = client.auth.get_user()
        assert seen is not None and (seen.user.email, seen.user.new_email) == (old, new)
        ((current, upcoming),) = sql("select email_change_token_current, "
                                     "email_change_token_new from auth.users where id = %s",
                                     created.id)
        if double:  # a hosted project confirms the change from both addresses
            first = _verify(where, {"type": "email_change", "token_hash": current})
            assert (first.status_code, first.json()) == (200, {
                "msg": "Confirmation link accepted. Please proceed to confirm link sent to "
                       "the other email", "code": "200"})
        done = _verify(where, {"type": "email_change", "token_hash": upcoming})
        assert done.status_code == 200, done.text
        user = done.json()["user"]
        assert user["email"] == new and "new_email" not in user
        again = _auth_client(served).auth.sign_in_with_password({"email": new,
                                                               "password": password})
        assert again.user is not None and again.user.id == created.id


# --- Auth: rate limits (GoTrue's defaults, per client address) --------------------------


def _spend(url: str, body: dict[str, Any], headers: dict[str, str], times: int) -> list[int]:
    with httpx.Client(headers=headers) as client:
        return [client.post(url, json=body).status_code for _ in range(times)]


def test_token_grants_are_rate_limited(hosted: ServedGateway) -> None:
    where, address = hosted.config, _address()
    headers = _auth_headers(where, address=address)
    url = f"{where.auth_url}/token?grant_type=password"
    body = {"email": _email(), "password": "not the password"}
    assert _spend(url, body, headers, 30) == [400] * 30  # a burst of 30 ...
    limited = httpx.post(url, json=body, headers=headers)  # ... then 150 per 5 minutes
    assert (limited.status_code, limited.json()) == (429, {
        "code": "over_request_rate_limit", "message": "Request rate limit reached"})
    assert limited.headers["x-sb-error-code"] == "over_request_rate_limit"
    # Every grant shares the bucket; another address has its own.
    refresh = httpx.post(f"{where.auth_url}/token?grant_type=refresh_token",
                         json={"refresh_token": "abcdefghijkl"}, headers=headers)
    assert refresh.status_code == 429
    elsewhere = httpx.post(url, json=body, headers=_auth_headers(where, address=_address()))
    assert elsewhere.status_code == 400


def test_sign_ups_and_user_updates_are_rate_limited(config: Any,
                                                    hosted: ServedGateway) -> None:
    where, address = hosted.config, _address()
    headers = _auth_headers(where, address=address)
    body = {"email": _email(), "password": ""}
    assert _spend(f"{where.auth_url}/signup", body, headers, 30) == [400] * 30
    assert httpx.post(f"{where.auth_url}/signup", json=body,
                      headers=headers).json()["code"] == "over_request_rate_limit"
    # PUT /user spends from the same bucket (GoTrue's OTP limiter).
    token = _anonymous_session(config)["access_token"]
    update = httpx.put(f"{where.auth_url}/user", json={"data": {"a": 1}},
                       headers=_auth_headers(where, token, address=address))
    assert update.status_code == 429


def test_verifications_are_rate_limited(hosted: ServedGateway) -> None:
    where, address = hosted.config, _address()
    headers = _auth_headers(where, address=address)
    body = {"type": "signup", "token_hash": "0" * 56}
    assert _spend(f"{where.auth_url}/verify", body, headers, 30) == [403] * 30
    assert httpx.post(f"{where.auth_url}/verify", json=body,
                      headers=headers).status_code == 429


def test_sign_ups_and_limits_switched_off(gateways: dict[str, ServedGateway]) -> None:
    closed = gateways["closed"]
    where = closed.config
    for body in ({}, {"email": _email(), "password": "a fine password"}):
        refused = httpx.post(f"{where.auth_url}/signup", json=body,
                             headers=_auth_headers(where))
        assert (refused.status_code, refused.json()) == (422, {
            "code": "signup_disabled", "message": "Signups not allowed for this instance"})
    settings = httpx.get(f"{where.auth_url}/settings", headers=_auth_headers(where)).json()
    assert settings["disable_signup"] is True
    # Off for a load test, and the log says so.
    assert "RATE LIMITS ARE OFF" in closed.log_text()
    assert _spend(f"{where.auth_url}/token?grant_type=password",
                  {"email": _email(), "password": "not the password"},
                  _auth_headers(where, address=_address()), 40) == [400] * 40


def test_anonymous_sign_ins_are_rate_limited(hosted_guests: ServedGateway) -> None:
    where = hosted_guests.config
    headers = _auth_headers(where, address=_address())
    assert _spend(f"{where.auth_url}/signup", {}, headers, 30) == [200] * 30  # 30 an hour
    assert httpx.post(f"{where.auth_url}/signup", json={},
                      headers=headers).json()["code"] == "over_request_rate_limit"


# --- Auth: bodies, passwords, headers ---------------------------------------------------


def test_bodies_over_one_mebibyte_are_refused(config: Any) -> None:
    url = f"{config.auth_url}/token?grant_type=password"
    headers = {**_auth_headers(config), "content-type": "application/json"}
    too_big = httpx.post(url, content=b'{"email":"' + b"a" * (1 << 20) + b'"}',
                         headers=headers)
    assert (too_big.status_code, too_big.json()) == (413, {
        "code": "request_entity_too_large",
        "message": "Request body too large (max 1048576 bytes)"})
    just_fits = httpx.post(url, content=b"{}" + b" " * ((1 << 20) - 2), headers=headers)
    assert just_fits.status_code == 400 and just_fits.json()["code"] == "validation_failed"


def test_a_null_body_is_an_empty_one(config: Any) -> None:
    """Go unmarshals `null` into the params as a no-op: the endpoint's own validation
    answers (an empty sign-up is an anonymous one)."""
    headers = {**_auth_headers(config), "content-type": "application/json"}
    token = httpx.post(f"{config.auth_url}/token?grant_type=password", content=b"null",
                       headers=headers)
    assert (token.status_code, token.json()) == (400, {
        "code": "validation_failed", "message": "missing email or phone"})
    signed_up = httpx.post(f"{config.auth_url}/signup", content=b"null", headers=headers)
    assert signed_up.status_code == 200 and signed_up.json()["user"]["is_anonymous"]
    listed = httpx.post(f"{config.auth_url}/token?grant_type=password", content=b"[]",
                        headers=headers)
    assert (listed.status_code, listed.json()["code"]) == (400, "bad_json")


def test_passwords_are_measured_in_bytes(stack: Any) -> None:
    """GoTrue counts bytes (Go's len): 40 two-byte characters are over bcrypt's 72."""
    with pytest.raises(AuthApiError) as too_long:
        _auth_client(stack).auth.sign_up({"email": _email(), "password": "é" * 40})
    assert (too_long.value.status, too_long.value.code) == (400, "validation_failed")
    assert too_long.value.message == "Password cannot be longer than 72 characters"
    fits = _auth_client(stack).auth.sign_up({"email": _email(), "password": "é" * 36})
    assert fits.session is not None


def test_admin_listing_links_sort_their_query(stack: Any, config: Any) -> None:
    """GoTrue writes the Link header's query with Go's `url.Values.Encode`: keys sorted."""
    marker = uuid.uuid4().hex[:10]
    admin = _auth_client(stack, config.service_role_key)
    for _ in range(2):
        admin.auth.admin.create_user({"email": f"{marker}-{uuid.uuid4().hex[:6]}@example.com",
                                      "password": "listed user"})
    listed = httpx.get(f"{config.auth_url}/admin/users?per_page=1&page=1&filter={marker}",
                       headers=_service_headers(config))
    assert listed.status_code == 200 and len(listed.json()["users"]) == 1
    assert listed.headers["x-total-count"] == "2"
    assert listed.headers["link"] == (
        f'</admin/users?filter={marker}&page=2&per_page=1>; rel="next", '
        f'</admin/users?filter={marker}&page=2&per_page=1>; rel="last"')


def test_bearer_needs_exactly_one_space(config: Any) -> None:
    token = _anonymous_session(config)["access_token"]
    response = httpx.get(f"{config.auth_url}/user", headers={
        **_auth_headers(config), "Authorization": f"Bearer  {token}"})
    assert (response.status_code, response.json()["code"]) == (401, "no_authorization")


# --- Storage: downloads, listings, keys, routes -----------------------------------------


def test_signed_downloads_carry_only_their_expiry(config: Any, open_bucket: str) -> None:
    """Storage's renderer: a signed URL's answer has `Expires` and no `Cache-Control`;
    every download says `X-Robots-Tag: none`."""
    base, key = f"{config.api_url}/storage/v1", f"cached-{uuid.uuid4().hex[:6]}.txt"
    headers = _service_headers(config)
    httpx.post(f"{base}/object/{open_bucket}/{key}", content=b"cache me",
               headers={**headers, "content-type": "text/plain", "cache-control": "max-age=60"})
    signed = httpx.post(f"{base}/object/sign/{open_bucket}/{key}", json={"expiresIn": 60},
                        headers=headers).json()["signedURL"]
    fetched = httpx.get(f"{base}{signed}")
    assert fetched.status_code == 200 and "cache-control" not in fetched.headers
    expires = email.utils.parsedate_to_datetime(fetched.headers["expires"]).timestamp()
    assert abs(expires - (time.time() + 60)) < 5
    assert fetched.headers["x-robots-tag"] == "none"
    direct = httpx.get(f"{base}/object/authenticated/{open_bucket}/{key}", headers=headers)
    assert direct.headers["cache-control"] == "max-age=60" and "expires" not in direct.headers
    assert direct.headers["x-robots-tag"] == "none"
    stale = httpx.get(f"{base}/object/authenticated/{open_bucket}/{key}",
                      headers={**headers, "If-None-Match": '"an older etag"'})
    assert stale.headers["cache-control"] == "max-age=60, stale-while-revalidate=30"
    same = httpx.get(f"{base}/object/authenticated/{open_bucket}/{key}",
                     headers={**headers, "If-None-Match": direct.headers["etag"]})
    assert same.status_code == 304


@pytest.fixture(scope="module")
def listed_bucket(config: Any, service: Client) -> Iterator[str]:
    """A private bucket holding a small tree, written in this order."""
    name = f"list-{uuid.uuid4().hex[:8]}"
    service.storage.create_bucket(name)
    for key in ("a.txt", "dir/b.txt", "dir/sub/c.txt", "dir2/d.txt", "dir-x.txt"):
        service.storage.from_(name).upload(key, key.encode(), {"content-type": "text/plain"})
    yield name
    service.storage.empty_bucket(name)
    service.storage.delete_bucket(name)


def test_list_v2_folders_objects_and_cursors(config: Any, service: Client,
                                             listed_bucket: str) -> None:
    files = service.storage.from_(listed_bucket)
    top = files.list_v2({"with_delimiter": True})
    # A folder takes the place of its first object by name (`dir/` after `dir-x.txt`).
    assert [f.name for f in top.folders] == ["dir/", "dir2/"]
    assert [o.name for o in top.objects] == ["a.txt", "dir-x.txt"]
    assert not top.hasNext and top.nextCursor is None
    inside = files.list_v2({"with_delimiter": True, "prefix": "dir/"})
    assert [(f.key, f.name) for f in inside.folders] == [("sub", "dir/sub/")]
    assert [(o.key, o.name) for o in inside.objects] == [("b.txt", "dir/b.txt")]
    flat = files.list_v2({})
    assert [o.name for o in flat.objects] == [
        "a.txt", "dir-x.txt", "dir/b.txt", "dir/sub/c.txt", "dir2/d.txt"]
    assert flat.folders == [] and (flat.objects[0].metadata or {})["mimetype"] == "text/plain"

    first = files.list_v2({"with_delimiter": True, "limit": 3})
    assert [o.name for o in first.objects] + [f.name for f in first.folders] == [
        "a.txt", "dir-x.txt", "dir/"]
    assert first.hasNext and first.nextCursor is not None
    assert base64.b64decode(first.nextCursor) == b"l:dir"
    rest = files.list_v2({"with_delimiter": True, "limit": 3, "cursor": first.nextCursor})
    assert [f.name for f in rest.folders] == ["dir2/"] and rest.objects == []
    assert not rest.hasNext

    newest = files.list_v2({"sortBy": {"column": "created_at", "order": "desc"}, "limit": 2})
    assert [o.name for o in newest.objects] == ["dir-x.txt", "dir2/d.txt"]
    older = files.list_v2({"limit": 2, "cursor": newest.nextCursor or ""})
    assert [o.name for o in older.objects] == ["dir/sub/c.txt", "dir/b.txt"]

    raw = httpx.post(f"{config.api_url}/storage/v1/object/list-v2/{listed_bucket}",
                     json={"prefix": "dir/", "with_delimiter": True},
                     headers=_service_headers(config)).json()
    assert list(raw) == ["hasNext", "folders", "objects"]
    assert raw["folders"] == [{"key": "sub", "name": "dir/sub/", "id": None,
                               "updated_at": None, "created_at": None,
                               "last_accessed_at": None, "metadata": None}]
    assert list(raw["objects"][0]) == ["key", "name", "id", "updated_at", "created_at",
                                       "last_accessed_at", "metadata"]


def test_list_v2_refusals_and_rls(config: Any, listed_bucket: str) -> None:
    url = f"{config.api_url}/storage/v1/object/list-v2/{listed_bucket}"
    for body, message in (({"limit": 0}, "body/limit must be >= 1"),
                          ({"sortBy": {"order": "asc"}},
                           "body/sortBy must have required property 'column'"),
                          ({"cursor": "bm9wZQ=="}, "Invalid Parameter continuation token")):
        refused = httpx.post(url, json=body, headers=_service_headers(config))
        assert refused.status_code == 400 and refused.json()["message"] == message
    # Listed as the caller: without a policy the anon role sees nothing.
    anonymous = _storage_client(config.api_url, config.anon_key)
    nothing = anonymous.storage.from_(listed_bucket).list_v2({"with_delimiter": True})
    assert (nothing.folders, nothing.objects) == ([], [])


def test_list_limit_zero_is_refused(service: Client, listed_bucket: str) -> None:
    with pytest.raises(StorageApiError) as refused:
        service.storage.from_(listed_bucket).list("", {"limit": 0})
    assert (str(refused.value.status), refused.value.message) == (
        "400", "body/limit must be >= 1")


def test_keys_of_s3_length_are_accepted(config: Any, service: Client,
                                        open_bucket: str) -> None:
    """Segments longer than a file name (255 bytes), as S3 keys may have them, also when
    only their encoding on disk is (`(a b)` takes 11 bytes there)."""
    files = service.storage.from_(open_bucket)
    key = f"{'k' * 300}/{'(a b)' * 60}.txt"
    files.upload(key, b"long", {"content-type": "text/plain"})
    assert files.download(key) == b"long"
    assert [entry["name"] for entry in files.list("k" * 300)] == [f"{'(a b)' * 60}.txt"]
    before = {p for p in config.storage_dir.rglob("*") if p.is_file()}
    files.remove([key])
    assert {p for p in config.storage_dir.rglob("*") if p.is_file()} <= before
    assert not files.exists(key)


def test_unknown_routes_are_invalid_requests(config: Any) -> None:
    base = f"{config.api_url}/storage/v1"
    for method, path, seen in (("GET", "/objects?x=1", "GET:/objects?x=1"),
                               ("PATCH", "/bucket", "PATCH:/bucket")):
        response = httpx.request(method, f"{base}{path}", headers=_service_headers(config))
        assert (response.status_code, response.json()) == (404, {
            "statusCode": "404", "code": "InvalidRequest", "error": "Not Found",
            "message": f"Route {seen} not found"})


def test_an_apikey_alone_is_enough_for_storage(config: Any) -> None:
    response = httpx.get(f"{config.api_url}/storage/v1/bucket",
                         headers={"apikey": config.service_role_key})
    assert response.status_code == 200


# --- What already matched: Auth ---------------------------------------------------------


def test_sessions_and_token_claims(config: Any) -> None:
    session = _anonymous_session(config)
    assert set(session) == {"access_token", "token_type", "expires_in", "expires_at",
                            "refresh_token", "user"}
    assert session["token_type"] == "bearer" and session["expires_in"] == config.jwt_expiry
    claims = _claims(session["access_token"])
    assert set(claims) == {"iss", "sub", "aud", "exp", "iat", "email", "phone",
                           "app_metadata", "user_metadata", "role", "aal", "amr",
                           "session_id", "is_anonymous"}
    assert (claims["iss"], claims["aud"], claims["role"]) == (
        config.auth_url, "authenticated", "authenticated")
    assert (claims["email"], claims["phone"], claims["aal"], claims["is_anonymous"]) == (
        "", "", "aal1", True)
    assert claims["exp"] - claims["iat"] == config.jwt_expiry
    assert session["expires_at"] == claims["exp"]


def test_gotrue_error_bodies(config: Any) -> None:
    url = f"{config.auth_url}/signup"
    weak = {"email": _email(), "password": "abc"}
    current = httpx.post(url, json=weak, headers=_auth_headers(config))
    assert (current.status_code, current.json()) == (422, {
        "code": "weak_password", "message": "Password should be at least 6 characters.",
        "weak_password": {"reasons": ["length"]}})
    assert current.headers["x-supabase-api-version"] == "2024-01-01"
    legacy = httpx.post(url, json=weak, headers={"apikey": config.anon_key})
    assert legacy.json() == {"code": 422, "error_code": "weak_password",
                             "msg": "Password should be at least 6 characters.",
                             "weak_password": {"reasons": ["length"]}}
    assert legacy.headers["x-sb-error-code"] == "weak_password"
    assert "x-supabase-api-version" not in legacy.headers
    oauth = httpx.post(f"{config.auth_url}/token?grant_type=id_token",
                       json={"provider": "apple"}, headers=_auth_headers(config))
    assert (oauth.status_code, oauth.json()) == (400, {
        "error": "invalid request", "error_description": "id_token required"})
    unknown = httpx.get(f"{config.auth_url}/nowhere", headers=_auth_headers(config))
    assert (unknown.status_code, unknown.text) == (404, "404 page not found\n")


def test_refresh_tokens_rotate_and_reuse_is_caught(config: Any, sql: Any) -> None:
    url = f"{config.auth_url}/token?grant_type=refresh_token"
    headers = _auth_headers(config)
    first = _anonymous_session(config)
    second = httpx.post(url, json={"refresh_token": first["refresh_token"]},
                        headers=headers).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (_claims(second["access_token"])["session_id"]
            == _claims(first["access_token"])["session_id"])
    # The parent again, within the reuse interval: the current child, not a new one.
    retried = httpx.post(url, json={"refresh_token": first["refresh_token"]},
                         headers=headers).json()
    assert retried["refresh_token"] == second["refresh_token"]
    sql("update auth.refresh_tokens set updated_at = now() - interval '1 minute' "
        "where token = %s", first["refresh_token"])
    third = httpx.post(url, json={"refresh_token": second["refresh_token"]}, headers=headers)
    assert third.status_code == 200
    sql("update auth.refresh_tokens set updated_at = now() - interval '1 minute' "
        "where token = %s", second["refresh_token"])
    reused = httpx.post(url, json={"refresh_token": first["refresh_token"]}, headers=headers)
    assert (reused.status_code, reused.json()) == (400, {
        "code": "refresh_token_already_used",
        "message": "Invalid Refresh Token: Already Used"})
    # The whole family is revoked, the newest token too.
    session_id = _claims(third.json()["access_token"])["session_id"]
    assert sql("select count(*) from auth.refresh_tokens where session_id = %s "
               "and not revoked", session_id) == [(0,)]


def test_logout_scopes(stack: Any, config: Any) -> None:
    email, password = _email(), "three sessions"
    admin = _auth_client(stack, config.service_role_key)
    admin.auth.admin.create_user({"email": email, "password": password, "email_confirm": True})

    def sign_in() -> dict[str, Any]:
        answer: dict[str, Any] = httpx.post(
            f"{config.auth_url}/token?grant_type=password",
            json={"email": email, "password": password}, headers=_auth_headers(config)).json()
        return answer

    def alive(session: dict[str, Any]) -> bool:
        return httpx.get(f"{config.auth_url}/user", headers=_auth_headers(
            config, session["access_token"])).status_code == 200

    def logout(session: dict[str, Any], scope: str) -> httpx.Response:
        return httpx.post(f"{config.auth_url}/logout?scope={scope}",
                          headers=_auth_headers(config, session["access_token"]))

    a, b, c = sign_in(), sign_in(), sign_in()
    assert logout(a, "others").status_code == 204
    assert (alive(a), alive(b), alive(c)) == (True, False, False)
    d = sign_in()
    assert logout(a, "local").status_code == 204
    assert (alive(a), alive(d)) == (False, True)
    e = sign_in()
    assert logout(d, "global").status_code == 204
    assert (alive(d), alive(e)) == (False, False)
    odd = logout(sign_in(), "everyone")
    assert (odd.status_code, odd.json()) == (400, {
        "code": "validation_failed", "message": 'Unsupported logout scope "everyone"'})


def test_admin_endpoints_on_the_wire(config: Any) -> None:
    base = f"{config.auth_url}/admin/users"
    user_token = _anonymous_session(config)["access_token"]
    outsider = httpx.get(base, headers=_auth_headers(config, user_token))
    assert (outsider.status_code, outsider.json()) == (403, {
        "code": "not_admin", "message": "User not allowed"})
    # The apikey alone stands for the anon role, as behind the CLI's Kong.
    anon = httpx.get(base, headers=_auth_headers(config))
    assert (anon.status_code, anon.json()["code"]) == (403, "not_admin")
    headers = {**_service_headers(config), **V2024}
    created = httpx.post(base, json={"email": _email(), "password": "made by admin",
                                     "email_confirm": True}, headers=headers)
    assert created.status_code == 200 and created.json()["email_confirmed_at"]
    user_id = created.json()["id"]
    assert httpx.get(f"{base}/{user_id}", headers=headers).json()["id"] == user_id
    not_uuid = httpx.get(f"{base}/not-a-uuid", headers=headers)
    assert (not_uuid.status_code, not_uuid.json()) == (404, {
        "code": "validation_failed", "message": "user_id must be an UUID"})
    assert httpx.request("DELETE", f"{base}/{user_id}", headers=headers).json() == {}
    gone = httpx.get(f"{base}/{user_id}", headers=headers)
    assert (gone.status_code, gone.json()["code"]) == (404, "user_not_found")


def test_apple_linking_keeps_the_guest(stack: Any, config: Any) -> None:
    apple = FakeAppleIssuer(config)
    guest = _anonymous_session(config)
    sub, nonce = f"001234.{uuid.uuid4().hex}.0009", secrets.token_hex(16)
    linked = _link_apple(stack, guest["access_token"],
                         apple.mint_id_token(sub=sub, nonce=nonce, email=_email()), nonce)
    assert linked.status_code == 200, linked.text
    user = linked.json()["user"]
    assert (user["id"], user["is_anonymous"]) == (guest["user"]["id"], False)
    assert [i["provider"] for i in user["identities"]] == ["apple"]
    thief = _anonymous_session(config)
    nonce = secrets.token_hex(16)
    taken = _link_apple(stack, thief["access_token"],
                        apple.mint_id_token(sub=sub, nonce=nonce), nonce)
    assert (taken.status_code, taken.json()) == (422, {
        "code": "identity_already_exists",
        "message": "Identity is already linked to another user"})


# --- What already matched: Storage ------------------------------------------------------


def test_storage_error_bodies_and_upsert(config: Any, open_bucket: str) -> None:
    base, headers = f"{config.api_url}/storage/v1", _service_headers(config)
    missing_bucket = httpx.get(f"{base}/bucket/no-such-bucket", headers=headers)
    assert (missing_bucket.status_code, missing_bucket.json()) == (400, {
        "statusCode": "404", "code": "NoSuchBucket", "error": "Bucket not found",
        "message": "Bucket not found"})
    missing_key = httpx.get(f"{base}/object/authenticated/{open_bucket}/nope.txt",
                            headers=headers)
    assert missing_key.json() == {"statusCode": "404", "code": "NoSuchKey",
                                  "error": "not_found", "message": "Object not found"}
    bad_jwt = httpx.get(f"{base}/bucket", headers={"Authorization": "Bearer nope"})
    assert bad_jwt.json() == {"statusCode": "403", "code": "AccessDenied",
                              "error": "Unauthorized", "message": "Invalid Compact JWS"}
    url = f"{base}/object/{open_bucket}/upsert-{uuid.uuid4().hex[:6]}.txt"
    plain = {**headers, "content-type": "text/plain"}
    assert httpx.post(url, content=b"v1", headers=plain).status_code == 200
    duplicate = httpx.post(url, content=b"v2", headers={**plain, "x-upsert": "TRUE"})
    assert (duplicate.status_code, duplicate.json()) == (400, {
        "statusCode": "409", "code": "KeyAlreadyExists", "error": "Duplicate",
        "message": "The resource already exists"})
    assert httpx.post(url, content=b"v2", headers={**plain, "x-upsert": "true"}).json()[
        "Key"] == url.split("/object/")[1]
    assert httpx.put(url, content=b"v3", headers=plain).status_code == 200
    assert httpx.get(url, headers=headers).content == b"v3"


def test_signed_urls_and_ranges(config: Any, open_bucket: str) -> None:
    base, headers = f"{config.api_url}/storage/v1", _service_headers(config)
    key = f"signed-{uuid.uuid4().hex[:6]}.txt"
    httpx.post(f"{base}/object/{open_bucket}/{key}", content=b"0123456789",
               headers={**headers, "content-type": "text/plain"})
    signed = httpx.post(f"{base}/object/sign/{open_bucket}/{key}", json={"expiresIn": "60"},
                        headers=headers).json()["signedURL"]
    assert signed.startswith(f"/object/sign/{open_bucket}/{key}?token=")
    payload = _claims(signed.split("token=")[1])
    assert payload["url"] == f"{open_bucket}/{key}" and payload["exp"] - payload["iat"] == 60
    part = httpx.get(f"{base}{signed}", headers={"Range": "bytes=2-5"})
    assert (part.status_code, part.content, part.headers["content-range"]) == (
        206, b"2345", "bytes 2-5/10")
    beyond = httpx.get(f"{base}{signed}", headers={"Range": "bytes=10-"})
    assert (beyond.status_code, beyond.headers["content-range"]) == (416, "bytes */10")
    elsewhere = httpx.get(f"{base}{signed.replace(key, 'other.txt')}")
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (400, "InvalidSignature")


def test_objects_are_guarded_by_rls_and_keys_stay_opaque(config: Any,
                                                         service: Client) -> None:
    bucket = f"own-{uuid.uuid4().hex[:8]}"
    service.storage.create_bucket(bucket)
    try:
        with own_folder_policies(config, bucket):
            (uid_a, token_a), (_, token_b) = _new_user(config, service), _new_user(config,
                                                                                   service)
            base = f"{config.api_url}/storage/v1/object"
            a = {"Authorization": f"Bearer {token_a}", "apikey": config.anon_key}
            b = {"Authorization": f"Bearer {token_b}", "apikey": config.anon_key}
            mine = f"{base}/{bucket}/{uid_a}/note.txt"
            assert httpx.post(mine, content=b"a's", headers={
                **a, "content-type": "text/plain"}).status_code == 200
            read = httpx.get(mine.replace("/object/", "/object/authenticated/"), headers=b)
            assert read.json()["statusCode"] == "404"
            write = httpx.post(mine, content=b"b's", headers={
                **b, "content-type": "text/plain", "x-upsert": "true"})
            assert write.json() == {"statusCode": "403", "code": "AccessDenied",
                                    "error": "Unauthorized",
                                    "message": "new row violates row-level security policy"}
            # `..` is part of a key, never a way out of the caller's folder.
            dotted = httpx.post(f"{base}/{bucket}/{uid_a}/%2E%2E/escape.txt", content=b"..",
                                headers={**a, "content-type": "text/plain"})
            assert dotted.json()["Key"] == f"{bucket}/{uid_a}/../escape.txt"
            outside = httpx.get(f"{base}/authenticated/{bucket}/escape.txt", headers=a)
            assert outside.json()["statusCode"] == "404"
            inside = httpx.get(f"{base}/authenticated/{bucket}/{uid_a}/%2E%2E/escape.txt",
                               headers=a)
            assert inside.content == b".."
    finally:
        service.storage.empty_bucket(bucket)
        service.storage.delete_bucket(bucket)


# --- supabase-js as a web page ------------------------------------------------------------


@pytest.fixture(scope="module")
def browser_bucket(config: Any, service: Client) -> Iterator[str]:
    name = f"browser-{uuid.uuid4().hex[:8]}"
    service.storage.create_bucket(name)
    with own_folder_policies(config, name):
        yield name
    service.storage.empty_bucket(name)
    service.storage.delete_bucket(name)


def test_supabase_js_runs_as_a_browser_page(stack: Any, config: Any, service: Client,
                                            browser_bucket: str) -> None:
    """tests/js/browser_flows.mjs holds supabase-js to a browser's CORS rules (preflights,
    Origin, allowed and exposed headers): any refusal fails the flow."""
    node = _tool("node")
    _install_node_deps()
    uid, token = _new_user(config, service)
    given = {"url": config.api_url, "key": stack.publishable_key,
             "serviceKey": stack.secret_key, "origin": ORIGIN, "bucket": browser_bucket,
             "userId": uid, "userToken": token}
    done = subprocess.run([node, "browser_flows.mjs"], cwd=JS_DIR, capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "RENDIO_JS_INPUT": json.dumps(given)})
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["seen"]["blocked"] == [] and seen["seen"]["preflights"] >= 10
    auth = seen["auth"]
    assert auth["anonymous"]["same"] and auth["anonymous"]["refreshed"]
    wrong = auth["wrongPassword"]
    assert (wrong["name"], wrong["status"], wrong["code"]) == (
        "AuthApiError", 400, "invalid_credentials")
    assert auth["signUp"]["hasSession"] and auth["signOutError"] is None
    assert auth["paged"]["total"] >= 2 and auth["paged"]["nextPage"] == 2
    assert seen["rest"]["status"] == 200 and seen["rest"]["error"] is None
    assert seen["rest"]["ids"] == [seen["rest"]["mine"]]
    files = seen["storage"]
    assert files["text"] == "hello browser"
    assert files["page"] == {"type": "text/plain", "text": "<script>1</script>"}
    assert files["listed"] == ["hello.txt", "page.html"]
    assert files["listedV2"] == [f"{uid}/hello.txt", f"{uid}/page.html"]
    assert files["signed"] == {"status": 200, "type": "text/plain", "text": "hello browser"}
    assert files["outsider"]["statusCode"] == "404"
