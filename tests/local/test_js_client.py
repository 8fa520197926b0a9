"""Wire compatibility with the official JavaScript client, `@supabase/supabase-js`.

`tests/js/flows.mjs` runs the app's flows (anonymous and password auth, Sign in with
Apple and linking it to a guest, the admin API, Storage under "own folder" RLS, PostgREST
under RLS) through supabase-js against the session stack and prints what it saw as JSON;
the tests here assert on it. The Node dependencies are installed from
`tests/js/package-lock.json` with `npm ci` when missing or older than the lock file.
Node.js and npm are required: without them these tests fail, they do not skip.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rendio_backend.local.fake_apple import FakeAppleIssuer
from tests.support.stack import own_folder_policies

JS_DIR = Path(__file__).resolve().parents[1] / "js"
INSTALLED = JS_DIR / "node_modules" / ".package-lock.json"  # written by every npm install


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` is not on PATH: Node.js 20+ and npm are required to check "
                    "wire compatibility with supabase-js", pytrace=False)
    return path


def _install_node_deps() -> None:
    """`npm ci` unless node_modules is newer than package.json and the lock file."""
    npm = _tool("npm")
    sources = max((JS_DIR / name).stat().st_mtime
                  for name in ("package.json", "package-lock.json"))
    # Parallel pytest workers (or checkouts sharing /tmp) must not install at once.
    digest = hashlib.sha256(str(JS_DIR).encode()).hexdigest()[:12]
    lock_path = Path(tempfile.gettempdir()) / f"rendio-npm-{digest}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if INSTALLED.exists() and INSTALLED.stat().st_mtime >= sources:
            return
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS_DIR,
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            pytest.fail(f"npm ci failed in {JS_DIR}:\n{done.stdout}\n{done.stderr}",
                        pytrace=False)


def _apple_tokens(config: Any) -> dict[str, dict[str, str]]:
    """The id_tokens the script sends: a fresh nonce each, as the app makes them."""
    issuer = FakeAppleIssuer(config)
    signed_in, linked = (f"001234.{uuid.uuid4().hex}.{n}" for n in ("0101", "0102"))
    tokens: dict[str, dict[str, str]] = {}
    for name, sub, email in (("signIn", signed_in, f"{uuid.uuid4().hex[:10]}@privaterelay"
                                                   ".appleid.com"),
                             ("signInAgain", signed_in, None),
                             ("link", linked, f"js-{uuid.uuid4().hex[:10]}@example.com"),
                             ("linkLater", linked, None), ("thief", linked, None)):
        nonce = secrets.token_hex(16)
        tokens[name] = {"sub": sub, "nonce": nonce,
                        "token": issuer.mint_id_token(sub=sub, nonce=nonce, email=email)}
    tokens["wrongNonce"] = {"sub": signed_in, "nonce": secrets.token_hex(16),
                            "token": issuer.mint_id_token(sub=signed_in,
                                                          nonce="another nonce")}
    return tokens


@pytest.fixture(scope="module")
def own_folder_bucket(stack: Any) -> Iterator[str]:
    """A bucket name with "own folder" policies; the script creates and deletes it."""
    name = f"js-{uuid.uuid4().hex[:8]}"
    with own_folder_policies(stack.config, name):
        yield name


@pytest.fixture(scope="module")
def js(stack: Any, own_folder_bucket: str) -> dict[str, Any]:
    """What flows.mjs saw, plus the inputs it was given (under "input")."""
    node = _tool("node")
    _install_node_deps()
    config = stack.config
    # The keys of the mode under test (sb_publishable_/sb_secret_, or the legacy JWTs).
    given = {"url": config.api_url, "anonKey": stack.publishable_key,
             "serviceKey": stack.secret_key, "legacyAnonKey": config.anon_key,
             "unknownKey": "sb_publishable_notTheStacksKeyAtAll_0000000",
             "bucket": own_folder_bucket, "apple": _apple_tokens(config)}
    done = subprocess.run([node, "flows.mjs"], cwd=JS_DIR, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "RENDIO_JS_INPUT": json.dumps(given)})
    if done.returncode != 0:
        pytest.fail(f"flows.mjs exited {done.returncode}:\n{done.stderr}", pytrace=False)
    results: dict[str, Any] = json.loads(done.stdout)
    results["input"] = given
    return results


def test_anonymous_sign_in_refresh_and_sign_out(stack: Any, js: dict[str, Any]) -> None:
    seen = js["anonymous"]
    assert seen["user"]["is_anonymous"] is True and seen["user"]["role"] == "authenticated"
    assert seen["user"]["identities"] == []
    assert seen["session"] == {"token_type": "bearer",
                               "expires_in": stack.config.jwt_expiry, "has_expires_at": True}
    claims = seen["claims"]
    assert claims["sub"] == seen["user"]["id"] and claims["iss"] == stack.config.auth_url
    assert claims["is_anonymous"] is True and claims["aal"] == "aal1"
    assert [entry["method"] for entry in claims["amr"]] == ["anonymous"]
    assert seen["getUser"] == {"id": seen["user"]["id"], "is_anonymous": True}
    assert seen["refreshed"] == {"user_id": seen["user"]["id"], "new_refresh_token": True,
                                 "same_session": True}
    assert seen["signOutError"] is None
    refused = seen["refreshAfterSignOut"]
    assert (refused["name"], refused["status"], refused["code"]) == (
        "AuthApiError", 400, "refresh_token_not_found")
    # supabase-js turns the server's 403 `session_not_found` into AuthSessionMissingError.
    assert seen["getUserAfterSignOut"]["name"] == "AuthSessionMissingError"


def test_password_sign_up_and_sign_in(js: dict[str, Any]) -> None:
    seen = js["password"]
    user = seen["user"]
    assert (user["email"], user["confirmed"], user["name"]) == (seen["email"], True, "Ada")
    assert user["app_metadata"] == {"provider": "email", "providers": ["email"]}
    assert user["providers"] == ["email"] and seen["hasSession"]
    assert seen["signIn"]["id"] == user["id"]
    assert [entry["method"] for entry in seen["signIn"]["amr"]] == ["password"]
    wrong = seen["wrongPassword"]
    assert (wrong["name"], wrong["status"], wrong["code"], wrong["message"]) == (
        "AuthApiError", 400, "invalid_credentials", "Invalid login credentials")
    assert (seen["duplicate"]["status"], seen["duplicate"]["code"]) == (
        422, "user_already_exists")
    weak = seen["weak"]
    assert (weak["name"], weak["status"], weak["code"], weak["reasons"]) == (
        "AuthWeakPasswordError", 422, "weak_password", ["length"])


def test_apple_sign_in(js: dict[str, Any]) -> None:
    seen, token = js["appleSignIn"], js["input"]["apple"]["signIn"]
    user = seen["user"]
    assert user["is_anonymous"] is False and user["email"].endswith("@privaterelay.appleid.com")
    assert user["app_metadata"] == {"provider": "apple", "providers": ["apple"]}
    assert user["identities"] == [{"provider": "apple", "id": token["sub"]}]
    assert [entry["method"] for entry in seen["amr"]] == ["oauth"]
    assert seen["againId"] == user["id"]
    wrong = seen["wrongNonce"]
    assert (wrong["name"], wrong["status"], wrong["message"]) == (
        "AuthApiError", 400, "Nonces mismatch")
    assert seen["sessionAfterWrongNonce"] is None


def test_guest_links_apple_with_link_identity(js: dict[str, Any]) -> None:
    seen, token = js["appleLink"], js["input"]["apple"]["link"]
    guest = seen["anonymousId"]
    assert seen["before"] == {"credits_remaining": 0, "credits_total": 0, "tier": "free",
                              "is_guest": True}
    assert seen["linked"] == {"id": guest, "is_anonymous": False, "providers": ["apple"],
                              "claims_is_anonymous": False}
    assert seen["getUser"] == {"id": guest, "is_anonymous": False}
    # PostgREST sees the new session's auth.uid(); the identity trigger filled the row.
    assert seen["row"] == {"id": guest, "is_guest": False, "apple_sub": token["sub"]}
    assert seen["laterId"] == guest
    thief = seen["thief"]
    assert (thief["status"], thief["code"], thief["message"]) == (
        422, "identity_already_exists", "Identity is already linked to another user")


def test_admin_api(js: dict[str, Any]) -> None:
    seen = js["admin"]
    user = seen["user"]
    assert (user["confirmed"], user["name"]) == (True, "Grace")
    assert user["app_metadata"] == {"provider": "email", "providers": ["email"],
                                    "tier": "gold"}
    assert seen["listed"] and seen["signInId"] == user["id"]
    total = seen["paged"]["total"]
    assert total >= 2 and seen["defaults"] == {"count": min(total, 50), "total": total}
    assert (seen["paged"]["count"], seen["paged"]["nextPage"]) == (1, 2)
    assert seen["paged"]["lastPage"] >= 1
    assert (seen["outsider"]["status"], seen["outsider"]["code"]) == (403, "not_admin")
    assert (seen["afterDelete"]["status"], seen["afterDelete"]["code"]) == (
        404, "user_not_found")


def test_storage_owner(js: dict[str, Any], own_folder_bucket: str) -> None:
    seen, uid = js["storage"], js["users"]["a"]
    assert seen["uploaded"]["path"] == f"{uid}/hello.txt"
    assert seen["uploaded"]["fullPath"] == f"{own_folder_bucket}/{uid}/hello.txt"
    assert seen["blob"]["path"] == f"{uid}/pixel.png"
    uuid.UUID(seen["uploaded"]["id"])
    assert seen["listed"] == [
        {"name": "hello.txt", "size": 12, "mimetype": "text/plain",
         "cacheControl": "max-age=60"},
        {"name": "pixel.png", "size": 10, "mimetype": "image/png",
         "cacheControl": "max-age=3600"}]
    assert seen["downloaded"] == {"text": "hello rendio", "type": "text/plain"}
    assert seen["png"] == {"same": True, "type": "image/png"}
    assert seen["signed"] == {"status": 200, "type": "text/plain", "text": "hello rendio"}


def test_storage_other_user_is_kept_out(js: dict[str, Any]) -> None:
    other = js["storage"]["other"]
    # Storage answers HTTP 400 with the real status in the body's statusCode.
    assert other["read"]["name"] == "StorageApiError"
    assert (other["read"]["status"], other["read"]["statusCode"]) == (400, "404")
    assert other["list"] == [] and other["listRoot"] == []
    assert (other["upsert"]["status"], other["upsert"]["statusCode"]) == (400, "403")
    assert other["upsert"]["message"] == "new row violates row-level security policy"
    assert other["remove"] == {"data": [], "error": None}
    assert other["stillThere"] == "hello rendio"


def test_storage_limits_and_service_role(js: dict[str, Any]) -> None:
    seen, uid = js["storage"], js["users"]["a"]
    for refused in (seen["limits"]["tooBig"], seen["limits"]["tooBigBlob"]):
        assert (refused["status"], refused["statusCode"]) == (400, "413")
        assert refused["message"] == "The object exceeded the maximum allowed size"
    bad_type = seen["limits"]["badType"]
    assert (bad_type["status"], bad_type["statusCode"]) == (400, "415")
    assert bad_type["message"] == "mime type application/pdf is not supported"
    service = seen["service"]
    assert service["removed"] == sorted([f"{uid}/hello.txt", f"{uid}/pixel.png"])
    assert service["afterRemove"]["statusCode"] == "404"
    # Storage's answer since emptying became a background job (ours empties at once).
    assert service["empty"] == {
        "message": "Empty bucket has been queued. Completion may take up to an hour."}
    assert service["deleted"] == {"message": "Successfully deleted"}


def test_postgrest_accepts_our_jwts_under_rls(js: dict[str, Any]) -> None:
    seen, uid = js["postgrest"], js["users"]["a"]
    assert seen["rows"] == {"status": 200, "error": None,
                            "data": [{"id": uid, "is_guest": False, "credits_remaining": 0}]}
    assert seen["credits"]["status"] == 200 and seen["credits"]["error"] is None
    assert seen["credits"]["data"]["is_guest"] is False
    # The anon key alone: anon has no privilege on public.users.
    anonymous = seen["anonymous"]
    assert anonymous["status"] == 401 and anonymous["data"] is None
    assert anonymous["error"]["code"] == "42501"


def test_legacy_anon_key_still_works_and_unknown_keys_do_not(js: dict[str, Any]) -> None:
    seen, uid = js["keys"], js["keys"]["legacyUser"]
    assert seen["legacyRow"] == {"status": 200, "data": [{"id": uid, "is_guest": True}]}
    assert seen["unknown"]["status"] == 401
    assert seen["unknown"]["message"] == "Invalid authentication credentials"
