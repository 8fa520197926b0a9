# rendio_backend/_sync/ is generated from rendio_backend/_async/ by scripts/generate_sync.py:
# edit the _async file, then run `python scripts/generate_sync.py`.
"""The service-role facade: users, credits, jobs, maintenance, Storage and the catalog."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from .._core import arguments, catalog, idempotency, paging, responses, storage
from .._errors_map import translating
from ..config import RendioConfig
from ..errors import InvalidRequest, NotFound, RendioError
from ..models import (
    AppStoreNotificationResult,
    ArchiveReport,
    BucketSpec,
    ChangeAction,
    CreditGrant,
    CreditReason,
    CreditTransaction,
    Deduction,
    DeviceClaim,
    IapProduct,
    IapRefund,
    JobCreated,
    JobFailure,
    JobStatus,
    LedgerViolation,
    Model,
    Page,
    ProvisionReport,
    SeedReport,
    StrayFilesReport,
    UploadedObject,
    User,
    VideoJob,
    WorkerHeartbeat,
)
from ._base import SyncBase

_Id = uuid.UUID | str


class RendioAdmin(SyncBase):
    """Service-role access (bypasses RLS): for workers, the HTTP API, scripts and the CLI.

    Never ship the service role key to an app. Use it as a context manager (or close
    it when done) to release its connections.
    """

    def __init__(
        self,
        config: RendioConfig | None = None,
        *,
        http_client: httpx.Client | None = None,
        max_retries: int = idempotency.MAX_RETRIES,
    ) -> None:
        """An admin for `config` (default: RendioConfig.from_env()); needs the service key.

        `max_retries` bounds the retries of idempotent calls (create_job); 0 sends each
        once, for a caller that answers a client who retries itself (the HTTP API).
        """
        config = config if config is not None else RendioConfig.from_env()
        super().__init__(config, api_key=config.require_service_role_key(),
                         http_client=http_client)
        self._key = config.require_service_role_key()
        self._max_retries = max_retries

    def _call(self, function: str, params: dict[str, Any]) -> Any:
        return self._rpc(self._key, function, params)

    # --- users --------------------------------------------------------------------------
    def get_user(self, user_id: _Id) -> User:
        """A user by id; NotFound if there is none."""
        return self._user_where("id", str(arguments.as_uuid(user_id, "user_id")))

    def get_user_by_device_id(self, device_id: str) -> User:
        """The user a device is bound to; NotFound if none."""
        return self._user_where("device_id", device_id)

    def get_user_by_apple_sub(self, apple_sub: str) -> User:
        """The user with this Apple subject; NotFound if none."""
        return self._user_where("apple_sub", apple_sub)

    def get_device_claim(self, device_id: str) -> DeviceClaim:
        """Which user's initial grant a device claimed; NotFound if it never claimed."""
        row = self._one("device_claims", "device_id", device_id, "device_claim")
        with translating():
            return DeviceClaim.model_validate(row)

    def _user_where(self, column: str, value: str) -> User:
        row = self._one("users", column, value, "user")
        with translating():
            return User.model_validate(row)

    def _one(self, table: str, column: str, value: str,
                   resource: str) -> dict[str, Any]:
        """The row of `table` whose `column` is `value`; NotFound naming `resource`."""
        with translating():
            response = (self._rest(self._key).table(table).select("*")
                              .eq(column, value).execute())
            found = responses.rows(response.data)
        if not found:
            raise NotFound(f"{resource.replace('_', ' ')} not found",
                           details={"resource": resource, column: value})
        return found[0]

    # --- credits ------------------------------------------------------------------------
    def grant_initial_credits(self, user_id: _Id, device_id: str) -> bool:
        """Grant the initial credits once per user and device; binds the device.

        True when credits were granted, False when the user or device had claimed.
        """
        granted = self._call("grant_initial_credits", {
            "p_user_id": str(arguments.as_uuid(user_id, "user_id")), "p_device_id": device_id})
        return bool(granted)

    def add_credits(
        self,
        user_id: _Id,
        amount: int,
        *,
        reason: CreditReason | str = CreditReason.ADMIN_ADJUSTMENT,
        transaction_id: str | None = None,
    ) -> CreditGrant:
        """Add credits: an IAP purchase (needs `transaction_id`) or an admin adjustment.

        Idempotent per transaction id: a replay changes nothing and answers
        `already_processed=True`; TransactionAlreadyUsed if another user got it.
        """
        data = self._call("add_credits", {
            "p_user_id": str(arguments.as_uuid(user_id, "user_id")), "p_amount": amount,
            "p_reason": arguments.credit_reason(reason), "p_transaction_id": transaction_id})
        with translating():
            return CreditGrant.model_validate(data)

    def deduct_credits(
        self,
        user_id: _Id,
        amount: int,
        *,
        reason: CreditReason | str = CreditReason.ADMIN_ADJUSTMENT,
        job_id: _Id | None = None,
    ) -> Deduction:
        """Remove credits, never below 0 (InsufficientCredits with required/available).

        With `job_id`: NotFound unless it is the user's job, Conflict
        (`job_already_charged`) when a `video_generation` charge exists for it.
        """
        data = self._call("deduct_credits", {
            "p_user_id": str(arguments.as_uuid(user_id, "user_id")), "p_amount": amount,
            "p_reason": arguments.credit_reason(reason),
            "p_job_id": str(arguments.as_uuid(job_id, "job_id")) if job_id else None})
        with translating():
            return Deduction.model_validate(data)

    def apply_iap_refund(self, user_id: _Id, transaction_id: str) -> IapRefund:
        """Take back an App Store purchase (never below 0; the shortfall is logged). Once."""
        data = self._call("apply_iap_refund", {
            "p_user_id": str(arguments.as_uuid(user_id, "user_id")),
            "p_transaction_id": transaction_id})
        with translating():
            return IapRefund.model_validate(data)

    def get_iap_product(self, product_id: str) -> IapProduct:
        """A product of the App Store catalog (active or not); NotFound if unknown."""
        row = self._one("iap_products", "product_id", product_id, "product")
        with translating():
            return IapProduct.model_validate(row)

    def apply_app_store_notification(
        self,
        notification_uuid: _Id,
        notification_type: str,
        *,
        subtype: str | None = None,
        transaction_id: str | None = None,
        signed_at: datetime | None = None,
    ) -> AppStoreNotificationResult:
        """Handle a verified App Store Server Notification once per notificationUUID.

        REFUND / REVOKE take back the purchase `transaction_id` (never below 0; the
        shortfall is logged); other types are recorded only. A repeated UUID changes
        nothing (`already_processed=True`, the first outcome).
        """
        data = self._call("apply_app_store_notification", {
            "p_notification_uuid": str(arguments.as_uuid(notification_uuid,
                                                         "notification_uuid")),
            "p_notification_type": notification_type, "p_subtype": subtype,
            "p_transaction_id": transaction_id,
            "p_signed_at": signed_at.isoformat() if signed_at else None})
        with translating():
            return AppStoreNotificationResult.model_validate(data)

    def credit_history(
        self,
        user_id: _Id,
        *,
        limit: int = 20,
        cursor: str | None = None,
    ) -> Page[CreditTransaction]:
        """Any user's ledger rows, newest first (keyset pagination on version)."""
        size = paging.page_limit(limit, paging.MAX_HISTORY_PAGE)
        query = (self._rest(self._key).table("quota_log").select("*")
                 .eq("user_id", str(arguments.as_uuid(user_id, "user_id")))
                 .order("version", desc=True).limit(size + 1))
        if cursor:
            query = query.lt("version", paging.cursor_version(cursor))
        with translating():
            response = query.execute()
            items = [CreditTransaction.model_validate(row)
                     for row in responses.rows(response.data)]
        more = len(items) > size
        items = items[:size]
        next_cursor = paging.version_cursor(items[-1].version) if more else None
        return Page[CreditTransaction](items=items, next_cursor=next_cursor)

    # --- jobs ---------------------------------------------------------------------------
    def create_job(
        self,
        user_id: _Id,
        model_id: _Id,
        prompt: str,
        settings: dict[str, Any] | None = None,
        *,
        idempotency_key: _Id | None = None,
    ) -> JobCreated:
        """Charge the model's cost and create a pending job, idempotently.

        The key (generated here when none is given) is fixed before the first attempt
        and returned in `JobCreated.idempotency_key`. Connection errors, timeouts, 5xx
        answers and IdempotencyKeyInUse (the key's first attempt still running) are
        retried up to 2 times with capped exponential backoff and jitter, always with
        the same key, so a request that reached the database before its answer was
        lost is replayed (`replayed=True`), never charged twice. When the call fails
        anyway, the error's `details["idempotency_key"]` holds the key: retry later with
        it, not with a new one. IdempotencyKeyReused for another request under a used
        key; InvalidRequest when `prompt` or `settings` is not JSON.

        The request fingerprint stored with the key is computed here, and only here:
        `request_hash("POST", "/functions/v1/generate-video", body)` over the canonical
        body `{"model_id": <lower-case UUID>, "prompt": <prompt>, "settings": <object>}`
        (`{}` when no settings). An HTTP endpoint that accepts the same request must
        hash the same canonical body with the exported `request_hash`, so a key used
        through either path replays on the other.
        """
        key = idempotency.idempotency_key(idempotency_key)
        try:
            model = arguments.as_uuid(model_id, "model_id")
            body = idempotency.generation_body(model, prompt, settings)
            params = {
                "p_user_id": str(arguments.as_uuid(user_id, "user_id")),
                "p_model_id": body["model_id"],
                "p_prompt": body["prompt"],
                "p_settings": body["settings"],
                "p_idempotency_key": str(key),
                "p_request_hash": idempotency.request_hash(
                    "POST", idempotency.GENERATE_PATH, body),
            }
            retries = 0
            while True:
                try:
                    data = self._call("create_video_job", params)
                    break
                except RendioError as exc:
                    if not idempotency.should_retry(exc, retries, self._max_retries):
                        raise
                retries += 1
                self._pause_before_retry(retries)
            return responses.job_created(data, key)
        except RendioError as exc:
            exc.details.setdefault("idempotency_key", str(key))
            raise

    def get_job(self, job_id: _Id) -> VideoJob:
        """Any job by id (soft-deleted ones too); NotFound if there is none."""
        job = str(arguments.as_uuid(job_id, "job_id"))
        with translating():
            response = (self._rest(self._key).table("video_jobs").select("*")
                              .eq("job_id", job).execute())
            found = responses.rows(response.data)
            if not found:
                raise NotFound("job not found", details={"resource": "job", "id": job})
            return VideoJob.model_validate(found[0])

    def get_job_by_provider_request(self, provider: str, request_id: str) -> VideoJob:
        """The job a provider's request belongs to (`provider`, `provider_job_id`).

        NotFound when no job recorded that request: a webhook that came before
        `mark_processing`, or a submission lost with a crashed worker.
        """
        with translating():
            response = (self._rest(self._key).table("video_jobs").select("*")
                              .eq("provider_job_id", request_id).eq("provider", provider)
                              .execute())
            found = responses.rows(response.data)
            if not found:
                raise NotFound("job not found", details={
                    "resource": "job", "provider": provider, "provider_job_id": request_id})
            return VideoJob.model_validate(found[0])

    def list_jobs(
        self,
        *,
        user_id: _Id | None = None,
        status: JobStatus | str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> Page[VideoJob]:
        """Any users' jobs (soft-deleted ones too), newest first, optionally filtered.

        Keyset pagination on (created_at, job_id) as the client's `list_jobs`.
        """
        size = paging.page_limit(limit, paging.MAX_JOBS_PAGE)
        keyset = paging.job_keyset_filter(cursor) if cursor else None
        query = (self._rest(self._key).table("video_jobs").select("*")
                 .order("created_at", desc=True).order("job_id", desc=True).limit(size + 1))
        if user_id is not None:
            query = query.eq("user_id", str(arguments.as_uuid(user_id, "user_id")))
        if status is not None:
            query = query.eq("status", arguments.job_status(status))
        if keyset is not None:
            query = query.or_(keyset)
        with translating():
            response = query.execute()
            items = [VideoJob.model_validate(row) for row in responses.rows(response.data)]
        return paging.job_page(items, size)

    def retry_job(self, job_id: _Id) -> JobCreated:
        """A new job, charged again, with a failed job's user, model, prompt and settings.

        A failed job was refunded and stays failed (its ledger rows are final), so a
        retry is a new paid job through `create_job`: the usual credit, availability
        and in-flight checks apply. Its idempotency key is derived from the failed job,
        so retrying the same job twice within the key's 24 hours replays the first
        retry (`replayed=True`) instead of charging again. InvalidRequest
        (`job_not_failed`) unless the job failed and the user did not delete it.
        """
        job = self.get_job(job_id)
        if job.status is not JobStatus.FAILED or job.deleted_at is not None:
            state = "deleted" if job.deleted_at is not None else job.status.value
            raise InvalidRequest(
                f"job {job.job_id} is {state}: only failed jobs can be retried",
                code="job_not_failed", details={"job_id": str(job.job_id), "status": state})
        return self.create_job(job.user_id, job.model_id, job.prompt, job.settings,
                                     idempotency_key=idempotency.retry_key(job.job_id))

    def claim_jobs(
        self,
        worker: str,
        *,
        limit: int = 10,
        lease: timedelta | float = timedelta(minutes=5),
    ) -> list[VideoJob]:
        """Lease up to `limit` pending jobs (oldest first) to `worker` (SKIP LOCKED)."""
        return self._claim("claim_pending_jobs", worker, limit, lease)

    def claim_processing_jobs(
        self,
        worker: str,
        *,
        limit: int = 10,
        lease: timedelta | float = timedelta(minutes=1),
    ) -> list[VideoJob]:
        """Lease up to `limit` processing jobs to a poller (for providers without webhooks)."""
        return self._claim("claim_processing_jobs", worker, limit, lease)

    def _claim(self, function: str, worker: str, limit: int,
                     lease: timedelta | float) -> list[VideoJob]:
        data = self._call(function, {
            "p_worker": worker, "p_limit": limit, "p_lease": arguments.interval(lease, "lease")})
        with translating():
            return [VideoJob.model_validate(row) for row in responses.rows(data)]

    def mark_processing(
        self,
        job_id: _Id,
        *,
        worker: str,
        provider: str,
        provider_job_id: str,
        status_url: str | None = None,
        response_url: str | None = None,
        cancel_url: str | None = None,
    ) -> bool:
        """Record the provider's request and set processing, if `worker` holds the lease.

        False means the lease was lost or the job already finished.
        """
        changed = self._call("mark_job_processing", {
            "p_job_id": str(arguments.as_uuid(job_id, "job_id")), "p_worker": worker,
            "p_provider": provider, "p_provider_job_id": provider_job_id,
            "p_status_url": status_url, "p_response_url": response_url,
            "p_cancel_url": cancel_url})
        return bool(changed)

    def renew_lease(self, job_id: _Id, *, worker: str,
                          lease: timedelta | float) -> bool:
        """Make `worker`'s lease on an unfinished job end `lease` from now.

        False when `worker` does not hold it (another worker took the job, or it is final).
        """
        renewed = self._call("renew_job_lease", {
            "p_job_id": str(arguments.as_uuid(job_id, "job_id")), "p_worker": worker,
            "p_lease": arguments.interval(lease, "lease")})
        return bool(renewed)

    def release_lease(self, job_id: _Id, *, worker: str) -> bool:
        """Give up `worker`'s lease on an unfinished job (a graceful stop).

        Another worker may take the job at once; a pending job's claim does not count
        as an attempt. False when `worker` did not hold the lease.
        """
        released = self._call("release_job_lease", {
            "p_job_id": str(arguments.as_uuid(job_id, "job_id")), "p_worker": worker})
        return bool(released)

    def complete_job(
        self,
        job_id: _Id,
        *,
        video_path: str,
        thumbnail_path: str | None = None,
    ) -> bool:
        """Complete an unfinished job with its Storage paths; False if already final."""
        changed = self._call("complete_video_job", {
            "p_job_id": str(arguments.as_uuid(job_id, "job_id")), "p_video_path": video_path,
            "p_thumbnail_path": thumbnail_path})
        return bool(changed)

    def fail_job(self, job_id: _Id, error: str) -> JobFailure:
        """Fail an unfinished job and refund its credits exactly once.

        This is how credits come back for a job (there is no refund without failing
        it); repeating the call refunds nothing (`failed=False`).
        """
        data = self._call("fail_video_job", {
            "p_job_id": str(arguments.as_uuid(job_id, "job_id")), "p_error": error})
        with translating():
            return JobFailure.model_validate(data)

    # --- maintenance --------------------------------------------------------------------
    def purge_expired_idempotency_keys(self) -> int:
        """Delete idempotency keys older than 24 hours; returns how many."""
        return responses.count(self._call("purge_expired_idempotency_keys", {}),
                             "purge_expired_idempotency_keys")

    def fail_stuck_jobs(self, older_than: timedelta | float = timedelta(hours=2)) -> int:
        """Fail and refund jobs past their deadline or older than `older_than`."""
        return responses.count(self._call("fail_stuck_jobs", {
            "p_older_than": arguments.interval(older_than, "older_than")}), "fail_stuck_jobs")

    def archive_old_jobs(
        self, older_than: timedelta | float = timedelta(days=90)
    ) -> ArchiveReport:
        """Move finished jobs older than `older_than` to the archive and remove their files.

        The SQL function (pg_cron may run it too) moves the jobs, keeps their ledger rows
        linked and queues their videos and thumbnails; every queued file, a scheduled
        run's included, is then removed through the Storage API and forgotten.
        """
        archived = responses.count(self._call("archive_old_jobs", {
            "p_older_than": arguments.interval(older_than, "older_than")}), "archive_old_jobs")
        removed: list[str] = []
        missing = 0
        invalid: list[str] = []
        while rows := responses.rows(self._call(
                "pending_storage_removals", {"p_limit": storage.REMOVE_BATCH})):
            by_bucket, unaddressable = storage.queued_removals(rows)
            invalid += [name for _, name in unaddressable]
            done = [queue_id for queue_id, _ in unaddressable]
            for bucket, files in by_bucket.items():
                gone = set(self.remove_objects(bucket, [key for _, key in files]))
                removed += [f"{bucket}/{key}" for _, key in files if key in gone]
                missing += sum(1 for _, key in files if key not in gone)
                done += [queue_id for queue_id, _ in files]
            self._call("forget_storage_removals", {"p_ids": done})
        return ArchiveReport(jobs_archived=archived, files_removed=removed,
                             files_missing=missing, files_invalid=invalid)

    def remove_stray_files(
        self, within: timedelta | float = timedelta(hours=1)
    ) -> StrayFilesReport:
        """Remove the stray files of jobs that finished within `within`, through Storage.

        Stray: stored at a finished job's own path, yet not a file the job holds (a
        failed job's video, say, left by a finisher killed before its cleanup). Nothing
        would ever read them. The workers' sweep calls this; so does `rendio
        maintenance run`, over a longer window.
        """
        removed: list[str] = []
        missing = 0
        while rows := responses.rows(self._call("stray_job_files", {
                "p_within": arguments.interval(within, "within"),
                "p_limit": storage.REMOVE_BATCH})):
            by_bucket: dict[str, list[str]] = {}
            for row in rows:
                by_bucket.setdefault(str(row["bucket"]), []).append(str(row["path"]))
            gone_now = 0
            for bucket, keys in by_bucket.items():
                gone = set(self.remove_objects(bucket, keys))
                removed += [f"{bucket}/{key}" for key in keys if key in gone]
                missing += len(keys) - len(gone)
                gone_now += len(gone)
            if not gone_now:  # Storage kept them (or another cleaner had them): stop
                break
        return StrayFilesReport(files_removed=removed, files_missing=missing)

    def verify_ledger(self) -> list[LedgerViolation]:
        """Every violated ledger invariant; empty when the ledger is sound."""
        data = self._call("verify_ledger", {})
        with translating():
            return [LedgerViolation.model_validate(row) for row in responses.rows(data)]

    # --- workers ------------------------------------------------------------------------
    def record_worker_heartbeat(
        self,
        worker: str,
        *,
        hostname: str,
        pid: int,
        concurrency: int,
        in_flight: int = 0,
        jobs_completed: int = 0,
        jobs_failed: int = 0,
        stopped: bool = False,
    ) -> None:
        """Upsert `worker`'s heartbeat row (`stopped=True` when it stops cleanly)."""
        self._call("record_worker_heartbeat", {
            "p_worker": worker, "p_hostname": hostname, "p_pid": pid,
            "p_concurrency": concurrency, "p_in_flight": in_flight,
            "p_jobs_completed": jobs_completed, "p_jobs_failed": jobs_failed,
            "p_stopped": stopped})

    def list_workers(self) -> list[WorkerHeartbeat]:
        """Every worker seen in the last day, most recently seen first.

        A worker is alive while `stopped_at` is null and `last_seen_at` is recent (it
        beats every few seconds); a killed one simply stops beating.
        """
        with translating():
            response = (self._rest(self._key).table("worker_heartbeats").select("*")
                              .order("last_seen_at", desc=True).execute())
            return [WorkerHeartbeat.model_validate(row)
                    for row in responses.rows(response.data)]

    # --- storage ------------------------------------------------------------------------
    def provision_storage(
        self,
        buckets: Iterable[BucketSpec] = storage.BUCKETS,
        *,
        dry_run: bool = False,
    ) -> ProvisionReport:
        """Create or update the app's buckets (private, size limits, MIME allow-lists).

        Idempotent: the report says which buckets were created, updated or unchanged.
        `dry_run=True` changes nothing and reports what provisioning would do.
        """
        store = self._storage(self._key)
        items = []
        with translating():
            existing = {bucket.id: bucket.model_dump() for bucket in store.list_buckets()}
            for spec in buckets:
                item = storage.bucket_item(spec, existing.get(spec.id))
                options: Any = storage.bucket_options(spec)
                if dry_run:
                    items.append(item)
                    continue
                if item.action is ChangeAction.CREATED:
                    store.create_bucket(spec.id, spec.id, options)
                elif item.action is ChangeAction.UPDATED:
                    store.update_bucket(spec.id, options)
                items.append(item)
        return ProvisionReport(items=items)

    def upload_video(self, user_id: _Id, job_id: _Id, data: bytes, *,
                           content_type: str = "video/mp4") -> UploadedObject:
        """Store a job's video at `videos/{user_id}/{job_id}.mp4` (replacing one)."""
        path = storage.video_path(arguments.as_uuid(user_id, "user_id"),
                                  arguments.as_uuid(job_id, "job_id"))
        return self._upload(storage.VIDEOS_BUCKET, path, data, content_type)

    def upload_thumbnail(self, user_id: _Id, job_id: _Id, data: bytes, *,
                               content_type: str = "image/jpeg") -> UploadedObject:
        """Store a job's thumbnail at `thumbnails/{user_id}/{job_id}.jpg` (replacing one)."""
        path = storage.thumbnail_path(arguments.as_uuid(user_id, "user_id"),
                                      arguments.as_uuid(job_id, "job_id"))
        return self._upload(storage.THUMBNAILS_BUCKET, path, data, content_type)

    def signed_url(self, bucket: str, path: str, *,
                         expires_in: int = storage.DEFAULT_SIGNED_URL_SECONDS) -> str:
        """A signed URL of any object (e.g. an uploaded image handed to a provider)."""
        if expires_in < 1:
            raise InvalidRequest("expires_in must be at least 1 second",
                                 details={"field": "expires_in"})
        with translating():
            signed = (self._storage(self._key).from_(bucket)
                            .create_signed_url(storage.object_key(bucket, path), expires_in))
        return responses.signed_url(signed)

    def remove_objects(self, bucket: str, paths: Iterable[str]) -> list[str]:
        """Remove objects of `bucket` through the Storage API; returns the keys removed.

        Paths may carry the bucket's prefix (`videos/u/j.mp4`). Objects already gone are
        left out of the answer (removing is idempotent). InvalidRequest for a path
        Storage cannot address.
        """
        keys = [storage.object_key(bucket, path) for path in paths]
        files = self._storage(self._key).from_(bucket)
        removed: list[str] = []
        with translating():
            for start in range(0, len(keys), storage.REMOVE_BATCH):
                answer = files.remove(keys[start:start + storage.REMOVE_BATCH])
                removed += [str(row["name"]) for row in responses.rows(answer)]
        return removed

    def _upload(self, bucket: str, path: str, data: bytes,
                      content_type: str) -> UploadedObject:
        with translating():
            self._storage(self._key).from_(bucket).upload(
                path, data, {"content-type": content_type, "upsert": "true"})
        return UploadedObject(bucket=bucket, path=path)

    # --- model catalog ------------------------------------------------------------------
    def list_models(self) -> list[Model]:
        """Every model of the catalog, available or not."""
        with translating():
            response = (self._rest(self._key).table("models").select("*")
                              .order("name").execute())
            return [Model.model_validate(row) for row in responses.rows(response.data)]

    def get_model(self, model_id: _Id) -> Model:
        """A model of the catalog by id (available or not); NotFound if there is none."""
        row = self._one("models", "id", str(arguments.as_uuid(model_id, "model_id")),
                              "model")
        with translating():
            return Model.model_validate(row)

    def set_model_available(self, model_id: _Id, available: bool) -> Model:
        """Switch a model on or off for generation (e.g. when its provider retired it).

        Clients list only available models and create_video_job refuses the others.
        NotFound if there is no such model.
        """
        model = str(arguments.as_uuid(model_id, "model_id"))
        with translating():
            response = (self._rest(self._key).table("models")
                              .update({"is_available": available}).eq("id", model).execute())
            found = responses.rows(response.data)
            if not found:
                raise NotFound("model not found", details={"resource": "model", "id": model})
            return Model.model_validate(found[0])

    def seed_models(self, catalog_path: str | Path | None = None, *,
                          dry_run: bool = False) -> SeedReport:
        """Upsert the versioned model catalog (default: the one shipped in the package).

        Idempotent: rows equal to the catalog are left alone and reported unchanged.
        Models missing from the catalog are not touched. `dry_run=True` changes
        nothing and reports what seeding would do.
        """
        wanted = catalog.load_catalog(catalog_path)
        rest = self._rest(self._key)
        items = []
        with translating():
            ids = [str(model.id) for model in wanted.models]
            response = rest.table("models").select("*").in_("id", ids).execute()
            current = {row["id"]: row for row in responses.rows(response.data)}
            for model in wanted.models:
                row = current.get(str(model.id))
                item = catalog.seed_item(model, row)
                if dry_run:
                    items.append(item)
                    continue
                if item.action is ChangeAction.CREATED:
                    rest.table("models").insert(model.row()).execute()
                elif item.action is ChangeAction.UPDATED and row is not None:
                    changes = catalog.catalog_changes(model, row)
                    rest.table("models").update(changes).eq("id", str(model.id)).execute()
                items.append(item)
        return SeedReport(catalog_version=wanted.version, items=items)
