"""RendioClient (user-scoped, RLS) through the real local stack, with two users."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from rendio_backend import (
    AuthError,
    Balance,
    ConfigurationError,
    CreditReason,
    InvalidRequest,
    JobStatus,
    NotFound,
    PermissionDenied,
    RendioAdmin,
    RendioClient,
    RendioConfig,
    Theme,
    Tier,
)
from rendio_backend.local.fake_apple import FakeAppleIssuer
from tests.support.stack import REPO, RunningStack, SqlRunner

VEO = uuid.UUID("8b87c271-f01c-550b-9e12-36cf851aae46")
VEO_FAST = uuid.UUID("ca57e12e-93af-5489-bd20-93d510bf15e9")
SORA = uuid.UUID("e2afac70-e651-52d3-9e78-c8a39ba0a55f")


@dataclass
class Player:
    client: RendioClient
    user_id: uuid.UUID
    job_ids: list[uuid.UUID]


@pytest.fixture(scope="module")
def config(stack: RunningStack) -> RendioConfig:
    return stack.rendio_config()


@pytest.fixture(scope="module")
def admin(config: RendioConfig) -> Iterator[RendioAdmin]:
    with RendioAdmin(config) as admin:
        admin.provision_storage()
        admin.seed_models()
        yield admin


def _player(config: RendioConfig, admin: RendioAdmin, jobs: int) -> Player:
    client = RendioClient(config)
    session = client.sign_in_anonymously()
    admin.grant_initial_credits(session.user_id, f"device-{uuid.uuid4()}")
    job_ids = []
    for number in range(jobs):
        created = admin.create_job(session.user_id, VEO_FAST, f"a cat, take {number}")
        job_ids.append(created.job_id)
    return Player(client, session.user_id, job_ids)


@pytest.fixture(scope="module")
def alice(config: RendioConfig, admin: RendioAdmin) -> Iterator[Player]:
    player = _player(config, admin, jobs=3)
    yield player
    player.client.close()


@pytest.fixture(scope="module")
def bob(config: RendioConfig, admin: RendioAdmin) -> Iterator[Player]:
    player = _player(config, admin, jobs=1)
    yield player
    player.client.close()


def test_signed_out_lists_available_models_only(config: RendioConfig,
                                                admin: RendioAdmin) -> None:
    with RendioClient(config) as client:
        models = client.list_models()
        ids = {model.id for model in models}
        assert VEO in ids and VEO_FAST in ids
        assert SORA not in ids  # shipped unavailable: RLS hides it
        assert all(model.is_available for model in models)
        featured = client.featured_models()
        assert featured and all(model.is_featured for model in featured)
        assert VEO in {model.id for model in featured}
        with pytest.raises(AuthError):
            client.get_balance()
        assert not client.is_signed_in


def test_guest_session_profile_and_balance(alice: Player) -> None:
    client = alice.client
    assert client.is_signed_in and client.user_id == alice.user_id
    session = client.session()
    assert session is not None and session.is_anonymous and session.user_id == alice.user_id
    profile = client.get_profile()
    assert profile.id == alice.user_id and profile.is_guest
    assert profile.credits_remaining == 10 - 3 * 2
    balance = client.get_balance()
    assert balance == Balance(credits_remaining=4, credits_total=10, tier=Tier.FREE,
                              is_guest=True)


def test_update_profile_language_and_theme(alice: Player) -> None:
    updated = alice.client.update_profile(language="tr", theme=Theme.DARK)
    assert updated.language == "tr" and updated.theme_preference is Theme.DARK
    assert alice.client.get_profile().language == "tr"
    assert alice.client.update_profile().language == "tr"  # nothing to change
    with pytest.raises(InvalidRequest):
        alice.client.update_profile(theme="neon")
    with pytest.raises(InvalidRequest):  # the CHECK constraint on language
        alice.client.update_profile(language="not a language")


def test_credit_history_pages(alice: Player) -> None:
    first = alice.client.credit_history(limit=2)
    assert [row.version for row in first.items] == [4, 3]
    assert first.next_cursor is not None
    second = alice.client.credit_history(limit=2, cursor=first.next_cursor)
    assert [row.version for row in second.items] == [2, 1]
    assert second.items[-1].reason is CreditReason.INITIAL_GRANT
    assert second.next_cursor is None
    assert all(row.user_id == alice.user_id for row in first.items + second.items)
    with pytest.raises(InvalidRequest):
        alice.client.credit_history(cursor="not-a-cursor")
    with pytest.raises(InvalidRequest):
        alice.client.credit_history(limit=0)


def test_jobs_keyset_pagination_newest_first(alice: Player) -> None:
    seen: list[uuid.UUID] = []
    cursor = None
    while True:
        page = alice.client.list_jobs(limit=2, cursor=cursor)
        seen.extend(job.job_id for job in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == list(reversed(alice.job_ids))
    job = alice.client.get_job(alice.job_ids[0])
    assert job.status is JobStatus.PENDING and job.user_id == alice.user_id


def test_soft_delete_hides_the_job(config: RendioConfig, admin: RendioAdmin) -> None:
    player = _player(config, admin, jobs=2)
    with player.client as client:
        client.delete_job(player.job_ids[0])
        assert [job.job_id for job in client.list_jobs().items] == [player.job_ids[1]]
        with pytest.raises(NotFound):
            client.get_job(player.job_ids[0])
        with pytest.raises(NotFound):  # already deleted
            client.delete_job(player.job_ids[0])
        assert admin.get_job(player.job_ids[0]).deleted_at is not None


def test_videos_thumbnails_signed_urls_and_downloads(alice: Player, bob: Player,
                                                     admin: RendioAdmin) -> None:
    job_id = alice.job_ids[1]
    with pytest.raises(NotFound):  # not completed yet: no video
        alice.client.video_url(job_id)
    video = admin.upload_video(alice.user_id, job_id, b"\x00\x00\x00\x18ftypmp42 fake")
    thumb = admin.upload_thumbnail(alice.user_id, job_id, b"\xff\xd8\xff fake jpeg")
    assert admin.complete_job(job_id, video_path=video.path, thumbnail_path=thumb.path)

    assert alice.client.download_video(job_id) == b"\x00\x00\x00\x18ftypmp42 fake"
    assert alice.client.download_thumbnail(job_id) == b"\xff\xd8\xff fake jpeg"
    url = alice.client.video_url(job_id, expires_in=60)
    assert "/storage/v1/object/sign/videos/" in url
    assert httpx.get(url).content == b"\x00\x00\x00\x18ftypmp42 fake"
    thumb_url = alice.client.thumbnail_url(job_id)
    assert httpx.get(thumb_url).content == b"\xff\xd8\xff fake jpeg"
    with pytest.raises(InvalidRequest):
        alice.client.video_url(job_id, expires_in=0)

    # Bob reaches none of it: not the job, not the files.
    for call in (bob.client.get_job, bob.client.video_url, bob.client.thumbnail_url,
                 bob.client.download_video, bob.client.download_thumbnail,
                 bob.client.delete_job):
        with pytest.raises(NotFound):
            call(job_id)


def test_upload_image_into_own_folder(alice: Player, bob: Player, admin: RendioAdmin) -> None:
    uploaded = alice.client.upload_image(b"\x89PNG fake", content_type="image/png")
    assert uploaded.bucket == "user_uploads"
    assert uploaded.path.startswith(f"{alice.user_id}/") and uploaded.path.endswith(".png")
    assert alice.client.download_upload(uploaded.path) == b"\x89PNG fake"
    with pytest.raises(NotFound):
        bob.client.download_upload(uploaded.path)
    with pytest.raises(InvalidRequest):
        alice.client.upload_image(b"GIF89a", content_type="image/gif")
    # The server's limits: a type the bucket refuses and a file above 20 MB.
    with pytest.raises(InvalidRequest):
        alice.client.upload_image(b"x" * (20 * 1024 * 1024 + 1), content_type="image/jpeg")
    signed = admin.signed_url("user_uploads", uploaded.path, expires_in=60)
    assert httpx.get(signed).content == b"\x89PNG fake"


def test_users_cannot_reach_each_other(alice: Player, bob: Player, config: RendioConfig) -> None:
    assert {job.job_id for job in bob.client.list_jobs().items} == set(bob.job_ids)
    assert all(row.user_id == bob.user_id for row in bob.client.credit_history().items)
    assert bob.client.get_profile().id == bob.user_id
    with pytest.raises(NotFound):
        bob.client.get_job(alice.job_ids[0])
    with pytest.raises(NotFound):
        bob.client.delete_job(alice.job_ids[0])
    # Alice's job is untouched by Bob's attempt.
    assert alice.client.get_job(alice.job_ids[0]).deleted_at is None
    # Bob acting with a token claiming Alice's id but his signature cannot exist; a
    # token without a valid signature is refused.
    header, _, signature = bob.client.session().access_token.split(".")  # type: ignore[union-attr]
    import base64
    import json

    claims = {"sub": str(alice.user_id), "role": "authenticated", "aud": "authenticated",
              "exp": int(time.time()) + 60}
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with RendioClient(config) as parent:
        forged = parent.with_access_token(f"{header}.{body}.{signature}")
        with pytest.raises(AuthError):
            forged.get_balance()


def test_with_access_token_acts_as_that_user(alice: Player, config: RendioConfig) -> None:
    session = alice.client.session()
    assert session is not None
    with RendioClient(config) as api_side:
        bound = api_side.with_access_token(session.access_token)
        assert bound.user_id == alice.user_id
        assert bound.get_balance().credits_total == 10
        assert bound.session() is None
        assert not api_side.is_signed_in  # the parent is unchanged
        bound.close()  # the shared pool stays open for the parent
        assert api_side.list_models()
        with pytest.raises(AuthError):
            api_side.with_access_token("not-a-jwt")


def test_set_session_resumes_and_sign_out(config: RendioConfig, admin: RendioAdmin) -> None:
    with RendioClient(config) as first:
        session = first.sign_in_anonymously()
        with RendioClient(config) as second:
            resumed = second.set_session(session.access_token, session.refresh_token)
            assert resumed.user_id == session.user_id
            assert second.get_profile().id == session.user_id
        first.sign_out()
        assert not first.is_signed_in
        with pytest.raises(AuthError):
            first.get_profile()


def test_apple_sign_in_and_linking_keep_the_guest(stack: RunningStack, config: RendioConfig,
                                                  admin: RendioAdmin) -> None:
    issuer = FakeAppleIssuer(stack.config)
    apple_sub = f"001234.{uuid.uuid4().hex}"
    with RendioClient(config) as guest:
        session = guest.sign_in_anonymously()
        admin.grant_initial_credits(session.user_id, f"device-{uuid.uuid4()}")
        token = issuer.mint_id_token(sub=apple_sub, nonce="raw-nonce",
                                     email=f"{uuid.uuid4().hex}@privaterelay.appleid.com")
        linked = guest.link_apple(token, nonce="raw-nonce")
        assert linked.user_id == session.user_id and not linked.is_anonymous
        assert not guest.get_profile().is_guest
        assert guest.get_balance().credits_remaining == 10  # credits kept

    # A second device signing in with the same Apple ID sees the same account.
    with RendioClient(config) as device_two:
        again = device_two.sign_in_with_apple(
            issuer.mint_id_token(sub=apple_sub, nonce="n2"), nonce="n2")
        assert again.user_id == session.user_id
        assert device_two.get_balance().credits_remaining == 10

    # Linking an Apple ID that belongs to someone else is refused.
    with RendioClient(config) as other:
        other.sign_in_anonymously()
        with pytest.raises(AuthError) as caught:
            other.link_apple(issuer.mint_id_token(sub=apple_sub, nonce="n3"), nonce="n3")
        assert caught.value.code == "identity_already_exists"
        assert caught.value.http_status == 422  # GoTrue's status, not always 401
        # A wrong nonce is an authentication failure, not a crash.
        with pytest.raises(AuthError):
            other.sign_in_with_apple(issuer.mint_id_token(sub=apple_sub, nonce="a"), nonce="b")


def test_user_client_cannot_call_admin_functions(alice: Player, config: RendioConfig) -> None:
    # The service-role functions are not executable with a user's token.
    token = alice.client.session().access_token  # type: ignore[union-attr]
    with RendioClient(config) as parent:
        client = parent.with_access_token(token)
        with pytest.raises(PermissionDenied):
            client._rpc(token, "add_credits", {"p_user_id": str(alice.user_id),
                                               "p_amount": 1000,
                                               "p_reason": "admin_adjustment",
                                               "p_transaction_id": None})
    assert alice.client.get_balance().credits_remaining == 4


def test_linked_apple_sub_is_recorded(stack: RunningStack, config: RendioConfig,
                                      admin: RendioAdmin) -> None:
    issuer = FakeAppleIssuer(stack.config)
    apple_sub = f"001234.{uuid.uuid4().hex}"
    with RendioClient(config) as guest:
        session = guest.sign_in_anonymously()
        guest.link_apple(issuer.mint_id_token(sub=apple_sub, nonce="n"), nonce="n")
        assert guest.get_profile().apple_sub == apple_sub
        assert admin.get_user_by_apple_sub(apple_sub).id == session.user_id


def test_apple_sign_in_records_apple_sub(stack: RunningStack, config: RendioConfig,
                                         admin: RendioAdmin) -> None:
    issuer = FakeAppleIssuer(stack.config)
    apple_sub = f"001234.{uuid.uuid4().hex}"
    with RendioClient(config) as client:
        session = client.sign_in_with_apple(issuer.mint_id_token(sub=apple_sub, nonce="n"),
                                            nonce="n")
        assert not session.is_anonymous
        profile = client.get_profile()
        assert profile.apple_sub == apple_sub and not profile.is_guest
    assert admin.get_user_by_apple_sub(apple_sub).id == session.user_id


def _readme_snippet() -> str:
    """The Python example under README.md's "The library" heading, as a user copies it."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## The library", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_readme_snippet_runs(stack: RunningStack, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "SUPABASE_URL": stack.config.api_url}
    for name in ("SUPABASE_ANON_KEY", "SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_PUBLISHABLE_KEY",
                 "SUPABASE_SECRET_KEY"):
        env.pop(name, None)
    result = subprocess.run([sys.executable, "-c", _readme_snippet()], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "Veo 3.1" in result.stdout and "balance: 0" in result.stdout


def test_credit_history_pages_cover_every_row(config: RendioConfig, admin: RendioAdmin,
                                              sql: SqlRunner) -> None:
    # 105 ledger rows: more than the SQL function answers in one call.
    with RendioClient(config) as client:
        user_id = client.sign_in_anonymously().user_id
        sql("select public.add_credits(%s, 1, 'admin_adjustment', null) "
            "from generate_series(1, 105)", user_id)
        for limit in (100, 99, 35, 1):
            seen: list[int] = []
            cursor = None
            pages = 0
            while True:
                page = client.credit_history(limit=limit, cursor=cursor)
                pages += 1
                assert len(page.items) <= limit
                seen.extend(row.version for row in page.items)
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            assert seen == list(range(105, 0, -1)), limit  # no gap, no duplicate
            assert pages == -(-105 // limit)  # and no empty trailing page
        first = client.credit_history(limit=100)
        assert len(first.items) == 100 and first.next_cursor is not None
        assert admin.credit_history(user_id, limit=100).next_cursor is not None


def test_sign_out_revokes_the_session_and_bound_clients_have_none(
        stack: RunningStack, config: RendioConfig, sql: SqlRunner) -> None:
    def sessions(user_id: uuid.UUID) -> int:
        return int(sql("select count(*) from auth.sessions where user_id = %s", user_id)[0][0])

    with RendioClient(config) as client:
        assert client.session() is None
        with pytest.raises(AuthError):
            client._current_session()
        user_id = client.sign_in_anonymously().user_id
        assert sessions(user_id) == 1
        other = client.with_access_token(stack.user_jwt(str(uuid.uuid4())))
        assert other.session() is None and other.is_signed_in
        with pytest.raises(AuthError):
            other._current_session()
        other.sign_out()  # forgets its token; touches neither the parent nor the server
        assert not other.is_signed_in
        assert client.is_signed_in and client.user_id == user_id and sessions(user_id) == 1
        client.sign_out()
        assert sessions(user_id) == 0  # revoked on the server
        assert client.session() is None and not client.is_signed_in
        with pytest.raises(AuthError):
            client._current_session()


def test_closed_client_and_its_bound_clients_refuse_calls(alice: Player,
                                                          config: RendioConfig) -> None:
    token = alice.client.session().access_token  # type: ignore[union-attr]
    parent = RendioClient(config)
    bound = parent.with_access_token(token)
    parent.close()
    calls = (parent.list_models, parent.sign_in_anonymously, parent.sign_out,
             bound.get_balance, bound.list_jobs, lambda: parent.with_access_token(token),
             lambda: bound.download_upload(f"{alice.user_id}/x.png"))
    for call in calls:
        with pytest.raises(ConfigurationError) as caught:
            call()
        assert caught.value.code == "client_closed"


def test_bad_input_is_a_validation_error(alice: Player) -> None:
    with pytest.raises(InvalidRequest):
        alice.client.update_profile(language="tr\ud800")
    for path in (f"{alice.user_id}/../x.png", f"{alice.user_id}/%ff.png"):
        with pytest.raises(InvalidRequest):
            alice.client.download_upload(path)
