# rendio_backend/_sync/ is generated from rendio_backend/_async/ by scripts/generate_sync.py:
# edit the _async file, then run `python scripts/generate_sync.py`.
"""The user-scoped facade: one app user acting through their own session (RLS applies)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from httpx import QueryParams
from supabase_auth import AsyncGoTrueClient
from supabase_auth.helpers import parse_auth_response
from supabase_auth.types import Session

from .._core import arguments, idempotency, paging, responses, storage, tokens
from .._errors_map import from_api, translating
from ..config import RendioConfig
from ..errors import AuthError, InvalidRequest, NotFound, RendioError
from ..models import (
    CLIENT_JOB_COLUMNS,
    AuthSession,
    Balance,
    CreditRedemption,
    CreditTransaction,
    DeviceCheckResult,
    JobCreated,
    Model,
    Page,
    Theme,
    UploadedObject,
    User,
    VideoJob,
    VideoJobSummary,
    VideoStatus,
)
from ._base import AsyncBase


def _auth_session(session: Session) -> AuthSession:
    return AuthSession(
        user_id=uuid.UUID(str(session.user.id)),
        access_token=session.access_token,
        refresh_token=session.refresh_token,
        expires_at=session.expires_at,
        is_anonymous=bool(getattr(session.user, "is_anonymous", False)),
    )


class AsyncRendioClient(AsyncBase):
    """Acts as one app user through their session: RLS decides what they see and change.

    Sign in first (`sign_in_anonymously`, `sign_in_with_apple` or `set_session`);
    only `list_models` / `featured_models` work signed out. A server handling many
    users keeps one signed-out client and calls `with_access_token(token)` per request.
    Use it as a context manager (or close it when done) to release its connections.
    """

    def __init__(
        self,
        config: RendioConfig | None = None,
        *,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        """A client for `config` (default: RendioConfig.from_env()), signed out."""
        super().__init__(config, api_key=None, http_client=http_client)
        self._auth = AsyncGoTrueClient(
            url=self._config.auth_url,
            headers=self._headers(self._config.anon_key),
            http_client=self._http,
            # No background timers: the session is refreshed on use (_token()).
            auto_refresh_token=False,
            persist_session=False,
            flow_type="implicit",
        )
        self._fixed_token: str | None = None
        self._user_id: uuid.UUID | None = None

    # --- auth ---------------------------------------------------------------------------
    @property
    def user_id(self) -> uuid.UUID:
        """The signed-in user's id; AuthError when signed out."""
        if self._user_id is None:
            raise AuthError("not signed in", code="session_missing")
        return self._user_id

    @property
    def is_signed_in(self) -> bool:
        """True once a session or access token is set."""
        return self._user_id is not None

    async def sign_in_anonymously(self) -> AuthSession:
        """Create a guest user and sign in as it (Supabase anonymous sign-in)."""
        with translating():
            response = await self._gotrue().sign_in_anonymously()
        return self._signed_in(response.session)

    async def sign_in_with_apple(self, id_token: str, nonce: str | None = None) -> AuthSession:
        """Sign in with an Apple id_token; `nonce` is the raw nonce the app generated."""
        with translating():
            response = await self._gotrue().sign_in_with_id_token(
                {"provider": "apple", "token": id_token, "nonce": nonce}  # type: ignore[typeddict-item]
            )
        return self._signed_in(response.session)

    async def link_apple(self, id_token: str, nonce: str | None = None) -> AuthSession:
        """Link an Apple identity to the signed-in (guest) user; the user id stays.

        AuthError with code `identity_already_exists` when the Apple ID belongs to
        another user (sign in with it instead).
        """
        session = await self._current_session()
        body = {"provider": "apple", "id_token": id_token, "nonce": nonce,
                "link_identity": True, "gotrue_meta_security": {"captcha_token": None}}
        # supabase_auth has no public call for native id_token linking (supabase-js has
        # linkIdentity({provider, token})): POST /token?grant_type=id_token with the
        # guest's Bearer token, as GoTrue documents it.
        with translating():
            raw = await self._gotrue()._request("POST", "token", jwt=session.access_token,
                                                body=body,
                                                query=QueryParams(grant_type="id_token"))
            linked = parse_auth_response(raw).session
            if linked is None:
                raise AuthError("linking answered no session", code="no_session")
            response = await self._gotrue().set_session(linked.access_token, linked.refresh_token)
        return self._signed_in(response.session)

    async def set_session(self, access_token: str, refresh_token: str) -> AuthSession:
        """Resume a session saved earlier (refreshed if the access token has expired)."""
        with translating():
            response = await self._gotrue().set_session(access_token, refresh_token)
        return self._signed_in(response.session)

    def with_access_token(self, access_token: str) -> AsyncRendioClient:
        """A new client acting as the token's user (e.g. one an HTTP request carried).

        It shares this client's configuration and connection pool and changes nothing
        here, so one client can serve many users at once. It has no Auth session: it
        never refreshes the token, `session()` is None and `sign_out()` only forgets the
        token. Closing it keeps the pool open; closing this client closes both. The
        token is not verified here; PostgREST and Storage verify it on every call.
        """
        self._check_open()
        subject = tokens.token_subject(access_token)
        if subject is None:
            raise AuthError("the access token has no user (sub) claim", code="invalid_jwt")
        bound = AsyncRendioClient(self._config, http_client=self._http)
        bound._fixed_token = access_token
        bound._user_id = subject
        return bound

    async def session(self) -> AuthSession | None:
        """The current session (refreshed when about to expire), or None when signed out.

        Always None for a client made by `with_access_token` (it has no session).
        """
        self._check_open()
        if self._fixed_token is not None or self._user_id is None:
            return None
        with translating():
            current = await self._gotrue().get_session()
        return _auth_session(current) if current is not None else None

    async def sign_out(self) -> None:
        """Revoke the Auth session on the server (if there is one) and forget it here.

        A client made by `with_access_token` has no session: it just forgets the token.
        """
        self._check_open()
        if self._fixed_token is None:
            # supabase_auth signs out only when it holds a session, then drops it.
            with translating():
                await self._gotrue().sign_out()
        self._fixed_token = None
        self._user_id = None

    def _signed_in(self, session: Session | None) -> AuthSession:
        if session is None:
            raise AuthError("sign-in answered no session", code="no_session")
        self._fixed_token = None
        result = _auth_session(session)
        self._user_id = result.user_id
        return result

    def _gotrue(self) -> AsyncGoTrueClient:
        self._check_open()
        return self._auth

    async def _current_session(self) -> Session:
        if self._fixed_token is not None or self._user_id is None:
            raise AuthError("not signed in with a session", code="session_missing")
        with translating():
            current = await self._gotrue().get_session()
        if current is None:
            raise AuthError("not signed in", code="session_missing")
        return current

    async def _token(self) -> str:
        """The caller's access token; the anon key when signed out."""
        if self._fixed_token is not None:
            return self._fixed_token
        if self._user_id is None:
            return self._config.anon_key
        return (await self._current_session()).access_token

    async def _user_token(self) -> tuple[uuid.UUID, str]:
        user_id = self.user_id
        return user_id, await self._token()

    # --- profile ------------------------------------------------------------------------
    async def get_profile(self) -> User:
        """The signed-in user's row."""
        user_id, token = await self._user_token()
        with translating():
            response = await (self._rest(token).table("users").select("*")
                              .eq("id", str(user_id)).execute())
            return self._profile(response.data)

    async def update_profile(
        self,
        *,
        language: str | None = None,
        theme: Theme | str | None = None,
    ) -> User:
        """Change the language and/or theme (the only columns a user may change)."""
        values: dict[str, Any] = {}
        if language is not None:
            values["language"] = language
        if theme is not None:
            try:
                values["theme_preference"] = Theme(theme).value
            except ValueError:
                raise InvalidRequest(f"theme must be one of {[t.value for t in Theme]}",
                                     details={"field": "theme"}) from None
        if not values:
            return await self.get_profile()
        user_id, token = await self._user_token()
        with translating():
            response = await (self._rest(token).table("users").update(values)
                              .eq("id", str(user_id)).execute())
            return self._profile(response.data)

    @staticmethod
    def _profile(data: Any) -> User:
        """The user row PostgREST answered (call it inside `translating()`)."""
        found = responses.rows(data)
        if not found:
            raise NotFound("no profile for this user", details={"resource": "user"})
        return User.model_validate(found[0])

    # --- models -------------------------------------------------------------------------
    async def list_models(self, *, featured: bool | None = None) -> list[Model]:
        """The available models (featured ones first, then by name)."""
        query = (self._rest(await self._token()).table("models").select("*")
                 .order("is_featured", desc=True).order("name"))
        if featured is not None:
            query = query.eq("is_featured", featured)
        with translating():
            response = await query.execute()
            return [Model.model_validate(row) for row in responses.rows(response.data)]

    async def featured_models(self) -> list[Model]:
        """The available models marked featured."""
        return await self.list_models(featured=True)

    # --- credits ------------------------------------------------------------------------
    async def get_balance(self) -> Balance:
        """The signed-in user's balance."""
        _, token = await self._user_token()
        data = await self._rpc(token, "get_my_credits", {})
        if data is None:
            raise NotFound("no balance for this user", details={"resource": "user"})
        with translating():
            return Balance.model_validate(data)

    async def credit_history(
        self,
        *,
        limit: int = 20,
        cursor: str | None = None,
    ) -> Page[CreditTransaction]:
        """The signed-in user's ledger rows, newest first (keyset pagination).

        `next_cursor` is None only when no older row exists.
        """
        size = paging.page_limit(limit, paging.MAX_HISTORY_PAGE)
        before = paging.cursor_version(cursor) if cursor else None
        _, token = await self._user_token()
        items = await self._history(token, size + 1, before)
        more = len(items) > size
        items = items[:size]
        if len(items) == size and not more:
            # The SQL function may answer fewer rows than asked (it caps its page), so
            # `size` rows for `size + 1` asked does not prove the end: look one further.
            more = bool(await self._history(token, 1, items[-1].version))
        next_cursor = paging.version_cursor(items[-1].version) if more else None
        return Page[CreditTransaction](items=items, next_cursor=next_cursor)

    async def _history(self, token: str, limit: int,
                       before: int | None) -> list[CreditTransaction]:
        data = await self._rpc(token, "get_my_credit_history",
                               {"p_limit": limit, "p_before_version": before})
        with translating():
            return [CreditTransaction.model_validate(row) for row in responses.rows(data)]

    # --- jobs ---------------------------------------------------------------------------
    async def list_jobs(self, *, limit: int = 20, cursor: str | None = None) -> Page[VideoJob]:
        """The signed-in user's jobs, newest first, soft-deleted ones excluded.

        Keyset pagination on (created_at, job_id): pass the page's `next_cursor`.
        """
        size = paging.page_limit(limit, paging.MAX_JOBS_PAGE)
        keyset = paging.job_keyset_filter(cursor) if cursor else None
        user_id, token = await self._user_token()
        query = (self._rest(token).table("video_jobs").select(CLIENT_JOB_COLUMNS)
                 .eq("user_id", str(user_id)).is_("deleted_at", "null")
                 .order("created_at", desc=True).order("job_id", desc=True).limit(size + 1))
        if keyset is not None:
            query = query.or_(keyset)
        with translating():
            response = await query.execute()
            items = [VideoJob.model_validate(row) for row in responses.rows(response.data)]
        return paging.job_page(items, size)

    async def get_job(self, job_id: uuid.UUID | str) -> VideoJob:
        """One of the signed-in user's jobs; NotFound for others' and deleted jobs."""
        job = arguments.as_uuid(job_id, "job_id")
        _, token = await self._user_token()
        with translating():
            response = await (self._rest(token).table("video_jobs").select(CLIENT_JOB_COLUMNS)
                              .eq("job_id", str(job)).is_("deleted_at", "null").execute())
            found = responses.rows(response.data)
            if not found:
                raise NotFound("job not found", details={"resource": "job", "id": str(job)})
            return VideoJob.model_validate(found[0])

    async def delete_job(self, job_id: uuid.UUID | str) -> None:
        """Soft delete one of the signed-in user's jobs; NotFound if there is none."""
        job = arguments.as_uuid(job_id, "job_id")
        _, token = await self._user_token()
        deleted = await self._rpc(token, "soft_delete_video_job", {"p_job_id": str(job)})
        if deleted is not True:
            raise NotFound("job not found", details={"resource": "job", "id": str(job)})

    # --- the HTTP API (/functions/v1), as the app calls it -------------------------------
    async def generate_video(
        self,
        model_id: uuid.UUID | str,
        prompt: str,
        settings: dict[str, Any] | None = None,
        *,
        idempotency_key: uuid.UUID | str | None = None,
    ) -> JobCreated:
        """POST /generate-video: charge and queue a job, idempotently.

        As `RendioAdmin.create_job`: the key is fixed before the first attempt and sent
        on every retry (connection errors, 5xx, a key still in use), so a lost answer is
        replayed (`replayed=True`), never charged twice; the error of a failed call
        carries it in `details["idempotency_key"]`.
        """
        key = idempotency.idempotency_key(idempotency_key)
        body = idempotency.generation_body(arguments.as_uuid(model_id, "model_id"), prompt,
                                           settings)
        try:
            response = await self._api_retried("POST", "/generate-video", body,
                                               headers={"Idempotency-Key": str(key)})
        except RendioError as exc:
            exc.details.setdefault("idempotency_key", str(key))
            raise
        replayed = response.headers.get("Idempotent-Replayed") == "true"
        return responses.job_created({"response": response.json(), "replayed": replayed}, key)

    async def video_status(self, job_id: uuid.UUID | str) -> VideoStatus:
        """GET /get-video-status: one of the user's jobs, with signed URLs once completed."""
        job = arguments.as_uuid(job_id, "job_id")
        response = await self._api("GET", "/get-video-status", params={"job_id": str(job)})
        return VideoStatus.model_validate(response.json())

    async def video_jobs(self, *, limit: int = 20,
                         cursor: str | None = None) -> Page[VideoJobSummary]:
        """GET /get-video-jobs: the user's jobs, newest first (pass `next_cursor`)."""
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        response = await self._api("GET", "/get-video-jobs", params=params)
        return Page[VideoJobSummary].model_validate(response.json())

    async def check_device(self, device_id: str, device_token: str) -> DeviceCheckResult:
        """POST /device/check: verify the device with Apple DeviceCheck and claim the
        initial credits, once per device (`granted` says whether this call did).

        `device_id` is the app's identifierForVendor, `device_token` a fresh
        `DCDevice` token. Safe to repeat: transient failures are retried.
        """
        response = await self._api_retried("POST", "/device/check",
                                           {"device_id": device_id,
                                            "device_token": device_token})
        return DeviceCheckResult.model_validate(response.json())

    async def redeem_transaction(self, signed_transaction: str) -> CreditRedemption:
        """POST /update-credits: credit a StoreKit 2 purchase (its `jwsRepresentation`).

        Once per App Store transaction: a repeat answers `already_processed=True` and
        the current balance, so transient failures are retried.
        """
        response = await self._api_retried("POST", "/update-credits",
                                           {"signed_transaction": signed_transaction})
        return CreditRedemption.model_validate(response.json())

    async def _api_retried(self, method: str, path: str, json: Any,
                           headers: dict[str, str] | None = None) -> httpx.Response:
        """`_api` for calls the server makes idempotent, retried like create_job."""
        retries = 0
        while True:
            try:
                return await self._api(method, path, json=json, headers=headers)
            except RendioError as exc:
                if not idempotency.should_retry(exc, retries, self._max_retries):
                    raise
            retries += 1
            await self._pause_before_retry(retries)

    async def _api(self, method: str, path: str, *, json: Any = None,
                   params: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> httpx.Response:
        """One call of the HTTP API with the user's token; errors as rendio errors."""
        _, token = await self._user_token()
        with translating():
            response = await self._http.request(
                method, f"{self._config.functions_url}{path}", json=json, params=params,
                headers={**self._headers(token), **(headers or {})})
        if response.is_error:
            raise from_api(response)
        return response

    # --- storage ------------------------------------------------------------------------
    async def video_url(self, job: VideoJob | uuid.UUID | str, *,
                        expires_in: int = storage.DEFAULT_SIGNED_URL_SECONDS) -> str:
        """A signed URL of a completed job's video, valid for `expires_in` seconds.

        `job` is its id, or the job already read (no second read of its row).
        """
        return await self._signed(job, storage.VIDEOS_BUCKET, expires_in)

    async def thumbnail_url(self, job: VideoJob | uuid.UUID | str, *,
                            expires_in: int = storage.DEFAULT_SIGNED_URL_SECONDS) -> str:
        """A signed URL of a completed job's thumbnail, valid for `expires_in` seconds
        (`job` as for `video_url`)."""
        return await self._signed(job, storage.THUMBNAILS_BUCKET, expires_in)

    async def download_video(self, job_id: uuid.UUID | str) -> bytes:
        """The bytes of a completed job's video."""
        return await self._download(job_id, storage.VIDEOS_BUCKET)

    async def download_thumbnail(self, job_id: uuid.UUID | str) -> bytes:
        """The bytes of a completed job's thumbnail."""
        return await self._download(job_id, storage.THUMBNAILS_BUCKET)

    async def upload_image(
        self,
        data: bytes,
        *,
        content_type: str,
        name: str | None = None,
        upsert: bool = False,
    ) -> UploadedObject:
        """Upload an image for image-to-video into `user_uploads/{user_id}/...`.

        `name` (without extension) defaults to a random one; the extension follows
        `content_type` (JPEG, PNG, WebP, HEIC/HEIF). Pass the returned path in the
        job's settings.
        """
        user_id, token = await self._user_token()
        path = storage.upload_path(user_id, content_type, name)
        with translating():
            bucket = self._storage(token).from_(storage.UPLOADS_BUCKET)
            await bucket.upload(path, data, {"content-type": content_type,
                                             "upsert": "true" if upsert else "false"})
        return UploadedObject(bucket=storage.UPLOADS_BUCKET, path=path)

    async def download_upload(self, path: str) -> bytes:
        """The bytes of one of the signed-in user's uploaded images."""
        _, token = await self._user_token()
        with translating():
            bucket = self._storage(token).from_(storage.UPLOADS_BUCKET)
            return await bucket.download(storage.object_key(storage.UPLOADS_BUCKET, path))

    async def _object_path(self, job: VideoJob | uuid.UUID | str,
                           bucket: str) -> tuple[str, str]:
        if not isinstance(job, VideoJob):
            job = await self.get_job(job)
        stored = job.video_url if bucket == storage.VIDEOS_BUCKET else job.thumbnail_url
        if not stored:
            raise NotFound(f"the job has no {'video' if bucket == 'videos' else 'thumbnail'}",
                           details={"resource": bucket, "id": str(job.job_id)})
        return storage.object_key(bucket, stored), await self._token()

    async def _signed(self, job: VideoJob | uuid.UUID | str, bucket: str,
                      expires_in: int) -> str:
        if expires_in < 1:
            raise InvalidRequest("expires_in must be at least 1 second",
                                 details={"field": "expires_in"})
        path, token = await self._object_path(job, bucket)
        with translating():
            signed = await self._storage(token).from_(bucket).create_signed_url(path, expires_in)
        return responses.signed_url(signed)

    async def _download(self, job_id: uuid.UUID | str, bucket: str) -> bytes:
        path, token = await self._object_path(job_id, bucket)
        with translating():
            return await self._storage(token).from_(bucket).download(path)
