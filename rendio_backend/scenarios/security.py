"""`security`: what a tampered app could try, straight at PostgREST, Storage and the API
with its own token: raise its credits, insert jobs, call the service role's functions,
read another user's rows and files, use forged or expired tokens. All refused.

An expired token needs the project's JWT secret to sign (`SUPABASE_JWT_SECRET`; the
local stack's config has it); without it that step says so and is not checked.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Awaitable
from typing import Any

import jwt
from postgrest import AsyncPostgrestClient
from storage3 import AsyncStorageClient

from .._errors_map import translating
from ..client import AsyncRendioClient
from ..errors import AuthError, NotFound, PermissionDenied, RendioError, StorageError
from ._context import Context
from ._report import Recorder

NAME = "security"
SUMMARY = "a tampered client: own credits, jobs, privileged functions, others' data, bad tokens"

# A 1x1 PNG: the smallest upload the user_uploads bucket accepts.
_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")
_REFUSED: tuple[str | type[RendioError], ...] = (PermissionDenied, AuthError, NotFound)
REFUSED = "refused (401, 403 or 404)"
_FILE_REFUSED: tuple[str | type[RendioError], ...] = (*_REFUSED, StorageError)


class _Raw:
    """The official PostgREST and Storage clients with a user's token and nothing else."""

    def __init__(self, ctx: Context, token: str) -> None:
        headers = {"apikey": ctx.config.anon_key, "Authorization": f"Bearer {token}"}
        self.rest = AsyncPostgrestClient(ctx.config.rest_url, headers=headers,
                                         http_client=ctx.http, retry_enabled=False)
        self.storage = AsyncStorageClient(ctx.config.storage_url, headers=headers,
                                          http_client=ctx.http)

    async def rows(self, table: str, column: str, value: str) -> list[Any]:
        with translating():
            response = await self.rest.table(table).select(column).eq(column, value).execute()
        return list(response.data)

    async def call(self, make: Any) -> Any:
        """Await a request builder's execute(), errors as rendio errors."""
        with translating():
            return (await make.execute()).data


async def _token(client: AsyncRendioClient) -> str:
    session = await client.session()
    assert session is not None  # a guest made by Context.guest
    return session.access_token


async def _expect_none(rec: Recorder, name: str, rows: Awaitable[list[Any]]) -> None:
    """Rows hidden by RLS come back as none; an error is a refusal too."""
    try:
        found = await rows
    except RendioError as exc:
        rec.check(name, "nothing", f"refused: {exc.code}", True)
        return
    rec.equal(name, "nothing", "nothing" if not found else f"{len(found)} row(s)")


def _forged(claims: dict[str, Any]) -> dict[str, str]:
    return {
        "signed with another secret": jwt.encode(claims, secrets.token_hex(32),
                                                 algorithm="HS256"),
        "unsigned (alg none)": jwt.encode(claims, "", algorithm="none"),
    }


async def run(ctx: Context, rec: Recorder) -> None:
    model = await ctx.model()
    victim = await ctx.guest(credits=model.cost_per_generation)
    job = await victim.generate_video(model.id, ctx.options.prompt)
    upload = await victim.upload_image(_PNG, content_type="image/png")
    attacker = await ctx.guest()
    me = _Raw(ctx, await _token(attacker))
    mine = str(attacker.user_id)

    # --- its own credits and jobs ---------------------------------------------------
    await rec.refused("update own credits_remaining", _REFUSED, expected=REFUSED, call=me.call(
        me.rest.table("users").update({"credits_remaining": 1000}).eq("id", mine)))
    await rec.refused("insert a completed job", _REFUSED, expected=REFUSED, call=me.call(
        me.rest.table("video_jobs").insert({
            "user_id": mine, "model_id": str(model.id), "prompt": "free video",
            "status": "completed", "credits_used": 0})))
    await rec.refused("insert a ledger row", _REFUSED, expected=REFUSED, call=me.call(
        me.rest.table("quota_log").insert({"user_id": mine, "change": 1000,
                                           "reason": "admin_adjustment"})))
    privileged: tuple[tuple[str, dict[str, Any]], ...] = (
        ("add_credits", {"p_user_id": mine, "p_amount": 1000, "p_reason": "admin_adjustment"}),
        ("grant_initial_credits", {"p_user_id": mine, "p_device_id": "forged"}),
        ("complete_video_job", {"p_job_id": str(job.job_id), "p_video_path": "x",
                                "p_thumbnail_path": "x"}))
    for function, params in privileged:
        await rec.refused(f"call {function}()", _REFUSED,
                          me.call(me.rest.rpc(function, params)), expected=REFUSED)
    rec.equal("its balance after all that", 0, (await attacker.get_balance()).credits_remaining)

    # --- another user's rows and files ----------------------------------------------
    theirs = str(victim.user_id)
    await _expect_none(rec, "read another user's profile", me.rows("users", "id", theirs))
    await _expect_none(rec, "read another user's jobs", me.rows("video_jobs", "user_id", theirs))
    await _expect_none(rec, "read another user's ledger",
                       me.rows("quota_log", "user_id", theirs))
    await rec.refused("get-video-status of another user's job", "not_found",
                      attacker.video_status(job.job_id))
    bucket = me.storage.from_(upload.bucket)
    path = upload.path.removeprefix(f"{upload.bucket}/")
    with_storage: tuple[tuple[str, Awaitable[Any]], ...] = (
        ("download another user's upload", bucket.download(path)),
        ("sign a URL to another user's upload", bucket.create_signed_url(path, 60)),
        ("upload into another user's folder",
         bucket.upload(f"{theirs}/{uuid.uuid4().hex}.png", _PNG, {"content-type": "image/png"})),
        ("download another user's video",
         me.storage.from_("videos").download(f"{theirs}/{job.job_id}.mp4")),
    )
    for name, call in with_storage:
        await rec.refused(name, _FILE_REFUSED, _translated(call), expected=REFUSED)
    rec.equal("the owner still reads the upload", len(_PNG),
              len(await victim.download_upload(upload.path)))

    # --- tokens -----------------------------------------------------------------------
    now = int(time.time())
    claims = {"sub": mine, "role": "authenticated", "aud": "authenticated",
              "iss": ctx.config.auth_url, "iat": now, "exp": now + 600}
    tokens = _forged(claims)
    if ctx.config.jwt_secret:
        tokens["expired (validly signed)"] = jwt.encode(
            {**claims, "iat": now - 7200, "exp": now - 3600},
            ctx.config.jwt_secret, algorithm="HS256")
    else:
        rec.check("an expired token", "refused", "not checked: no SUPABASE_JWT_SECRET", True)
    for name, token in tokens.items():
        forged = attacker.with_access_token(token)
        await rec.refused(f"API with a token {name}", "unauthorized", forged.video_jobs())
        await rec.refused(f"PostgREST with a token {name}", _REFUSED, forged.get_balance(),
                          expected=REFUSED)
    response = await ctx.http.get(f"{ctx.config.functions_url}/get-video-jobs",
                                  headers={"apikey": ctx.config.anon_key,
                                           "Authorization": f"Bearer {ctx.config.anon_key}"})
    rec.equal("API with the anon key as the token", 401, response.status_code)


async def _translated(call: Awaitable[Any]) -> Any:
    with translating():
        return await call
