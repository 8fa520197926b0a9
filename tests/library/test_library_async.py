"""The async facades (generated into the sync ones) through the real local stack."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from rendio_backend import (
    AsyncRendioAdmin,
    AsyncRendioClient,
    ChangeAction,
    JobStatus,
    NotFound,
    RendioConfig,
    RendioConnectionError,
)
from rendio_backend.local.fake_apple import FakeAppleIssuer
from tests.support.stack import RunningStack

VEO_FAST = uuid.UUID("ca57e12e-93af-5489-bd20-93d510bf15e9")


def _config(stack: RunningStack) -> RendioConfig:
    return stack.rendio_config()


def test_async_guest_flow(stack: RunningStack) -> None:
    async def flow() -> None:
        config = _config(stack)
        async with AsyncRendioAdmin(config) as admin, AsyncRendioClient(config) as alice, \
                AsyncRendioClient(config) as bob:
            await admin.provision_storage()
            assert (await admin.seed_models()).count(ChangeAction.CREATED) in (0, 5)
            session = await alice.sign_in_anonymously()
            await bob.sign_in_anonymously()
            assert await admin.grant_initial_credits(session.user_id, f"d-{uuid.uuid4()}")
            created = await admin.create_job(session.user_id, VEO_FAST, "async cat")
            assert [m.id for m in await alice.featured_models()]
            assert (await alice.get_balance()).credits_remaining == 8
            page = await alice.list_jobs()
            assert [job.job_id for job in page.items] == [created.job_id]
            assert (await alice.get_job(created.job_id)).status is JobStatus.PENDING
            with pytest.raises(NotFound):
                await bob.get_job(created.job_id)
            history = await alice.credit_history(limit=1)
            assert history.next_cursor is not None
            profile = await alice.update_profile(language="es")
            assert profile.language == "es"
            uploaded = await alice.upload_image(b"\xff\xd8 jpeg", content_type="image/jpeg")
            assert await alice.download_upload(uploaded.path) == b"\xff\xd8 jpeg"
            video = await admin.upload_video(session.user_id, created.job_id, b"mp4")
            await admin.complete_job(created.job_id, video_path=video.path)
            assert await alice.download_video(created.job_id) == b"mp4"
            assert "token=" in await alice.video_url(created.job_id)
            await alice.delete_job(created.job_id)
            assert (await alice.list_jobs()).items == []
            assert await admin.verify_ledger() == []
            current = await alice.session()
            assert current is not None
            async with AsyncRendioClient(config) as resumed:
                await resumed.set_session(current.access_token, current.refresh_token)
                assert (await resumed.get_profile()).id == session.user_id
            issuer = FakeAppleIssuer(stack.config)
            apple = await bob.link_apple(issuer.mint_id_token(sub=f"a.{uuid.uuid4().hex}",
                                                              nonce="n"), nonce="n")
            assert not apple.is_anonymous
            await alice.sign_out()
            assert not alice.is_signed_in

    asyncio.run(flow())


def test_async_stack_down_is_a_connection_error() -> None:
    async def flow() -> None:
        config = RendioConfig(supabase_url="http://127.0.0.1:9")
        async with AsyncRendioClient(config) as client:
            with pytest.raises(RendioConnectionError):
                await client.list_models()

    asyncio.run(flow())


def test_one_shared_client_serves_concurrent_users(stack: RunningStack) -> None:
    # An HTTP API keeps one client and binds each request's token: handlers running at
    # the same time must each see only their own user's rows.
    async def flow() -> None:
        config = _config(stack)
        async with AsyncRendioAdmin(config) as admin, AsyncRendioClient(config) as shared:
            await admin.seed_models()
            users: dict[uuid.UUID, tuple[str, set[uuid.UUID]]] = {}
            for jobs in (1, 3):
                async with AsyncRendioClient(config) as app:
                    session = await app.sign_in_anonymously()
                await admin.add_credits(session.user_id, 10)
                created = {(await admin.create_job(session.user_id, VEO_FAST, f"job {n}")).job_id
                           for n in range(jobs)}
                users[session.user_id] = (session.access_token, created)

            async def handler(user_id: uuid.UUID) -> None:
                token, jobs = users[user_id]
                client = shared.with_access_token(token)
                for _ in range(3):
                    await asyncio.sleep(0)  # let the other handlers bind their tokens
                    assert client.user_id == user_id
                    assert (await client.get_profile()).id == user_id
                    page = await client.list_jobs()
                    assert {job.job_id for job in page.items} == jobs
                    balance = await client.get_balance()
                    assert balance.credits_remaining == 10 - 2 * len(jobs)
                await client.aclose()

            await asyncio.gather(*(handler(user_id) for user_id in users for _ in range(2)))
            assert not shared.is_signed_in and await shared.session() is None
            assert await shared.list_models()  # the shared pool is still open

    asyncio.run(flow())
