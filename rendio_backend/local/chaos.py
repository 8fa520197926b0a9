"""The chaos campaign behind `rendio chaos` and `make test-long`.

N guests × M generations against a local stack, with a seeded random mix of provider
outcomes chosen by the fake providers' prompt directives (successes, failures, 5xx at
submission and at status polls, requests that never finish, duplicate and late
webhooks), client retries with the same Idempotency-Key (replays on purpose, and every
transport error or 5xx retried with the key of the first attempt), StoreKit purchases
and App Store REFUND notifications, while:

- generation worker processes (`rendio worker`, ours) are SIGKILLed and restarted at
  random moments;
- the gateway and PostgREST are each SIGKILLed and restarted once (at a third and at two
  thirds of the jobs created).

Jobs get a short deadline (`deadline_seconds`; a harness loop lowers `deadline_at` of the
campaign's unfinished jobs, as a tight hosted setting would), so those that never finish
end by the workers' sweeper (`fail_stuck_jobs`). Once every job is terminal and the late
webhooks have had time to land, the checks run: every job terminal, `verify_ledger()`
empty, each job charged once, each failed job refunded exactly once (a completed one
never), one job per Idempotency-Key, no job that must fail completed, no orphan Storage
object (under videos/ or thumbnails/ without a completed job) and no completed job
without a stored, readable MP4.

The random choices (outcomes, models, keys, replays, purchases, refunds, which worker
dies and when) come from `seed`; the timing of a run on a shared machine does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg

from rendio_backend._async.admin import AsyncRendioAdmin
from rendio_backend._async.client import AsyncRendioClient
from rendio_backend.config import RendioConfig
from rendio_backend.errors import (
    IdempotencyKeyInUse,
    InsufficientCredits,
    RateLimited,
    RendioConnectionError,
    RendioError,
    ServerError,
)
from rendio_backend.models import Model

from ._proc import PidFile, free_port, port_in_use, wait_until
from .auth_settings import RateLimits
from .config import StackConfig
from .fakes.storekit import StoreKitSigner
from .stack import LocalWorker, Stack

T = TypeVar("T")
Say = Callable[[str], None]

PRODUCT_ID = "com.rendio.credits.chaos"
PRODUCT_CREDITS = 20
# Seconds a late webhook that must lose arrives after the job's deadline.
LATE_AFTER_DEADLINE = 4.0


@dataclass(frozen=True)
class Outcome:
    """One kind of generation: its share of the mix, its directives, and whether the job
    must end failed (`must_fail`: completing it would be a bug)."""

    label: str
    weight: int
    directives: str
    must_fail: bool = False


def outcomes(deadline: float) -> tuple[Outcome, ...]:
    late_ok = int(min(1500, deadline * 250))
    late_lost = int((deadline + LATE_AFTER_DEADLINE) * 1000)
    return (
        Outcome("success", 28, ""),
        Outcome("slow", 6, "[fake:latency-ms=1200]"),
        Outcome("fail", 12, "[fake:fail]", must_fail=True),
        Outcome("submit-5xx-then-ok", 8, "[fake:submit-5xx=2]"),
        Outcome("submit-5xx-always", 4, "[fake:submit-5xx]", must_fail=True),
        Outcome("status-5xx", 6, "[fake:status-5xx=2]"),
        Outcome("never", 6, "[fake:never]", must_fail=True),
        Outcome("duplicate-webhook", 10, "[fake:duplicate-webhook]"),
        Outcome("fail-duplicate-webhook", 6, "[fake:fail][fake:duplicate-webhook]",
                must_fail=True),
        Outcome("late-webhook", 8, f"[fake:late-webhook={late_ok}]"),
        Outcome("late-webhook-after-deadline", 6, f"[fake:late-webhook={late_lost}]",
                must_fail=True),
    )


_LABEL = re.compile(r"^chaos \S+ (\S+)")


@dataclass(frozen=True)
class ChaosOptions:
    users: int = 200
    generations: int = 10
    seed: int = 0
    workers: int = 2
    worker_concurrency: int = 8
    # Seconds a job may take before the sweeper fails and refunds it.
    deadline_seconds: float = 20.0
    # Users acting at once (each keeps up to its in-flight limit of jobs queued).
    active_users: int = 40
    # Seconds between two worker kills: uniform in this range.
    kill_interval: tuple[float, float] = (2.0, 6.0)
    # At least this many kills (done at the end of the client phase if still short).
    min_kills: int = 1
    restart_services: bool = True
    purchase_share: float = 0.3
    refund_share: float = 0.5      # of the purchases
    replay_share: float = 0.15     # generations sent twice with the same key
    quiesce_timeout: float = 240.0
    on_step: Say | None = None


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class ChaosReport:
    options: dict[str, Any]
    api_url: str = ""
    duration: float = 0.0
    client_phase: float = 0.0
    jobs_by_status: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)
    failure_reasons: dict[str, int] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    checks: list[Check] = field(default_factory=list)
    client_errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, ok, detail))

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "options": self.options, "api_url": self.api_url,
                "duration_seconds": round(self.duration, 1),
                "client_phase_seconds": round(self.client_phase, 1),
                "jobs_by_status": self.jobs_by_status, "outcomes": self.outcomes,
                "failure_reasons": self.failure_reasons, "counts": dict(self.counts),
                "checks": [vars(check) for check in self.checks],
                "client_errors": self.client_errors[:20]}


# --- the stack ------------------------------------------------------------------------
@contextlib.contextmanager
def temporary_stack(root: Path, say: Say) -> Iterator[Stack]:
    """A fresh stack under `root` on free ports (no worker: the campaign runs its own),
    with anonymous sign-ins on and no Auth rate limits (200 guests from one address)."""
    from rendio_backend.project import find_project

    base = StackConfig.from_env(state_dir=root / "state")
    config = replace(
        base, api_port=free_port(), db_port=free_port(), external_db_url=None,
        run_worker=False, gateway_workers=1,
        auth=replace(base.auth, enable_anonymous_sign_ins=True, enable_confirmations=False,
                     rate_limits=RateLimits(enabled=False)))
    stack = Stack(config)
    try:
        stack.up(migrations_dir=find_project().migrations_to_apply(), on_step=say)
        yield stack
    finally:
        say("stopping the campaign's stack")
        stack.down()


class WorkerProcess(LocalWorker):
    """One `rendio worker` of ours, with short leases and a sweeper every second."""

    def __init__(self, config: StackConfig, index: int, concurrency: int,
                 log_dir: Path) -> None:
        self.index = index
        super().__init__(config, name=f"chaos-worker-{index}", log_dir=log_dir, args=(
            "--concurrency", str(concurrency), "--poll-interval", "0.5", "--lease", "3",
            "--finish-lease", "10", "--idle-interval", "0.1", "--sweep-interval", "1",
            "--grace", "1", "--backoff-max", "1"))

    def alive(self) -> bool:
        return self.pid() is not None

    def kill(self) -> bool:
        """SIGKILL, no grace: whatever it held is left to leases and the sweeper."""
        return self.pid_file.kill()


def _crash_restart(pid_file: PidFile, start: Callable[[], None],
                   wait_ready: Callable[[], None], port: tuple[str, int] | None = None) -> None:
    pid_file.kill()
    if port is not None:
        # The main thread is a zombie before the other threads have closed the
        # listening socket: a start at once could find the port still taken.
        wait_until(lambda: not port_in_use(*port), 10.0)
    start()  # PidFile.write waits for the child's exec, so wait_ready finds it
    wait_ready()


# --- the campaign ---------------------------------------------------------------------
class Campaign:
    def __init__(self, stack: Stack, options: ChaosOptions, log_dir: Path) -> None:
        self.stack = stack
        self.options = options
        self.config: RendioConfig = stack.config.rendio_config()
        self.report = ChaosReport(options={
            "users": options.users, "generations": options.generations,
            "seed": options.seed, "workers": options.workers,
            "worker_concurrency": options.worker_concurrency,
            "deadline_seconds": options.deadline_seconds})
        self.report.api_url = stack.config.api_url
        self.counts = self.report.counts
        self.outcomes = outcomes(options.deadline_seconds)
        self.workers = [WorkerProcess(stack.config, i, options.worker_concurrency, log_dir)
                        for i in range(options.workers)]
        # Worker logs are appended to: this campaign's lines start past these offsets.
        self._log_starts = {worker.log_path: _size(worker.log_path) for worker in self.workers}
        self.user_ids: list[uuid.UUID] = []
        self.total = options.users * options.generations
        self.created = 0
        self.clients_done = False
        self.signer = StoreKitSigner.for_stack(stack.config)
        self._say = options.on_step or (lambda message: None)
        self._services_restarted: set[str] = set()

    def say(self, message: str) -> None:
        self._say(message)

    # --- entry point ------------------------------------------------------------------
    async def run(self) -> ChaosReport:
        started = time.monotonic()
        http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0),
                                 limits=httpx.Limits(max_connections=200))
        try:
            async with AsyncRendioAdmin(self.config, http_client=http) as admin:
                await admin.provision_storage()
                await admin.seed_models()
                models = [m for m in await admin.list_models()
                          if m.is_available and m.category == "text-to-video"]
                if not models:
                    raise RuntimeError("no text-to-video model is available")
                await self._product()
                for worker in self.workers:
                    worker.start()
                self.say(f"{self.options.users} guests signing in")
                apps = await self._guests(admin, http, max(m.cost_per_generation
                                                           for m in models))
                deadlines = asyncio.create_task(self._deadline_loop())
                faults = asyncio.create_task(self._fault_loop())
                client_started = time.monotonic()
                gate = asyncio.Semaphore(self.options.active_users)
                await asyncio.gather(*(self._user(index, app, models, http, gate)
                                       for index, app in enumerate(apps)))
                self.report.client_phase = time.monotonic() - client_started
                self.clients_done = True
                await faults
                await self._restart_services_left()
                await self._quiesce()
                deadlines.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await deadlines
                await self._checks(admin, http)
        finally:
            self.clients_done = True
            for worker in self.workers:
                worker.stop()
            await http.aclose()
        self.report.duration = time.monotonic() - started
        return self.report

    # --- setup ------------------------------------------------------------------------
    async def _product(self) -> None:
        async with await psycopg.AsyncConnection.connect(
                self.stack.config.superuser_db_url, autocommit=True) as conn:
            await conn.execute(
                "insert into public.iap_products (product_id, credits, description) "
                "values (%s, %s, 'bought by `rendio chaos`') on conflict (product_id) "
                "do update set credits = excluded.credits", (PRODUCT_ID, PRODUCT_CREDITS))

    async def _guests(self, admin: AsyncRendioAdmin, http: httpx.AsyncClient,
                      cost: int) -> list[AsyncRendioClient]:
        gate = asyncio.Semaphore(16)
        credits = cost * self.options.generations

        async def one() -> AsyncRendioClient:
            async with gate:
                app = AsyncRendioClient(self.config, http_client=http)
                await self._retrying(app.sign_in_anonymously)
                await admin.add_credits(app.user_id, credits)
                return app

        apps = await asyncio.gather(*(one() for _ in range(self.options.users)))
        self.user_ids = [app.user_id for app in apps]
        return list(apps)

    async def _retrying(self, call: Callable[[], Awaitable[T]], attempts: int = 30) -> T:
        """A call retried on transport errors and 5xx (the gateway or PostgREST may be
        restarting), as an app with a network layer would."""
        for attempt in range(attempts):
            try:
                return await call()
            except (RendioConnectionError, ServerError, IdempotencyKeyInUse):
                if attempt == attempts - 1:
                    raise
                self.counts["client_retries"] += 1
                await asyncio.sleep(min(2.0, 0.2 * 2 ** min(attempt, 4)))
        raise AssertionError("unreachable")

    # --- one user ---------------------------------------------------------------------
    async def _user(self, index: int, app: AsyncRendioClient, models: list[Model],
                    http: httpx.AsyncClient, gate: asyncio.Semaphore) -> None:
        rng = random.Random(f"{self.options.seed}/user/{index}")
        plan = [(rng.choices(self.outcomes, [o.weight for o in self.outcomes])[0],
                 rng.choice(models), uuid.UUID(int=rng.getrandbits(128), version=4),
                 rng.random() < self.options.replay_share)
                for _ in range(self.options.generations)]
        purchase = rng.random() < self.options.purchase_share
        refund_at = (rng.randrange(self.options.generations + 1)
                     if purchase and rng.random() < self.options.refund_share else None)
        transaction = str(3_000_000_000_000_000 + rng.randrange(10**15))
        async with gate:
            try:
                if purchase:
                    await self._purchase(app, transaction, replay=rng.random() < 0.3)
                for number, (outcome, model, key, replay) in enumerate(plan):
                    if refund_at == number:
                        await self._refund(app, transaction, http)
                    prompt = (f"chaos {self.options.seed}/{index}/{number} {outcome.label} "
                              f"{outcome.directives}").strip()
                    if not await self._generate(app, model, prompt, key, replay):
                        break
                if refund_at == self.options.generations:
                    await self._refund(app, transaction, http)
            except RendioError as exc:
                self.counts["client_errors"] += 1
                self.report.client_errors.append(f"user {index}: {type(exc).__name__}: {exc}")

    async def _generate(self, app: AsyncRendioClient, model: Model, prompt: str,
                        key: uuid.UUID, replay: bool) -> bool:
        """Create the job (waiting while the user is at its in-flight limit); False when
        the user cannot pay for more."""
        while True:
            try:
                job = await self._retrying(
                    lambda: app.generate_video(model.id, prompt, idempotency_key=key))
                break
            except RateLimited:
                self.counts["rate_limited_waits"] += 1
                await asyncio.sleep(0.5 + random.random())
            except InsufficientCredits:
                self.counts["insufficient_credits"] += 1
                return False
        self.created += 1
        self.counts["jobs_created"] += 1
        if job.replayed:
            self.counts["replayed_after_lost_answer"] += 1
        if replay:
            again = await self._retrying(
                lambda: app.generate_video(model.id, prompt, idempotency_key=key))
            self.counts["replays"] += 1
            if again.job_id != job.job_id or not again.replayed:
                self.counts["replay_mismatches"] += 1
                self.report.client_errors.append(
                    f"replay of key {key} answered job {again.job_id} "
                    f"(replayed={again.replayed}), first {job.job_id}")
        return True

    async def _purchase(self, app: AsyncRendioClient, transaction: str, *,
                        replay: bool) -> None:
        signed = self.signer.sign_transaction(PRODUCT_ID, transaction_id=transaction,
                                              app_account_token=app.user_id)
        first = await self._retrying(lambda: app.redeem_transaction(signed))
        self.counts["purchases"] += 1
        if first.already_processed:
            self.counts["purchases_replayed_after_lost_answer"] += 1
        if replay:
            again = await self._retrying(lambda: app.redeem_transaction(signed))
            self.counts["purchase_replays"] += 1
            if not again.already_processed or again.credits_added:
                self.counts["purchase_replay_mismatches"] += 1
                self.report.client_errors.append(
                    f"purchase {transaction} replayed: +{again.credits_added}")

    async def _refund(self, app: AsyncRendioClient, transaction: str,
                      http: httpx.AsyncClient) -> None:
        payload = self.signer.sign_notification(
            "REFUND", notification_uuid=uuid.uuid4(),
            signed_transaction=self.signer.sign_transaction(
                PRODUCT_ID, transaction_id=transaction, app_account_token=app.user_id,
                revocation_date=int(time.time() * 1000)))
        url = f"{self.config.functions_url}/apple/notifications"
        for attempt in range(30):
            # Apple retries a notification until it is answered 200.
            try:
                response = await http.post(url, json={"signedPayload": payload})
                if response.status_code == 200:
                    self.counts["refund_notifications"] += 1
                    return
                if response.status_code < 500:
                    raise ServerError(f"refund notification answered "
                                      f"{response.status_code}: {response.text[:200]}")
            except httpx.TransportError:
                pass
            self.counts["client_retries"] += 1
            await asyncio.sleep(min(2.0, 0.2 * 2 ** min(attempt, 4)))
        raise RendioConnectionError("the refund notification was never answered 200")

    # --- faults -----------------------------------------------------------------------
    async def _fault_loop(self) -> None:
        rng = random.Random(f"{self.options.seed}/faults")
        low, high = self.options.kill_interval
        next_kill = time.monotonic() + rng.uniform(low, high) / 2
        while not self.clients_done:
            await asyncio.sleep(0.1)
            if self.options.restart_services:
                if self.created >= self.total / 3:
                    await self._restart_service("gateway")
                if self.created >= 2 * self.total / 3:
                    await self._restart_service("postgrest")
            if time.monotonic() >= next_kill:
                await self._kill_one(rng)
                next_kill = time.monotonic() + rng.uniform(low, high)
        for _ in range(3 * self.options.min_kills):
            if self.counts["worker_kills"] >= self.options.min_kills:
                break
            await self._kill_one(rng)

    async def _kill_one(self, rng: random.Random) -> None:
        worker = rng.choice(self.workers)
        down_for = rng.uniform(0.0, 2.0)
        if await asyncio.to_thread(worker.kill):
            self.counts["worker_kills"] += 1
            self.say(f"SIGKILLed worker {worker.index}; restarting it in {down_for:.1f} s")
        await asyncio.sleep(down_for)
        if not worker.alive():
            await asyncio.to_thread(worker.start)
            self.counts["worker_restarts"] += 1

    async def _restart_service(self, name: str) -> None:
        if name in self._services_restarted:
            return
        self._services_restarted.add(name)
        self.say(f"SIGKILLing and restarting {name}")
        config = self.stack.config
        if name == "gateway":
            gateway = self.stack.gateway
            await asyncio.to_thread(_crash_restart, gateway.pid_file, gateway.start,
                                    gateway.wait_ready, (config.host, config.api_port))
        else:
            rest = self.stack.postgrest
            await asyncio.to_thread(_crash_restart, rest.pid_file, rest.start,
                                    rest.wait_ready)
        self.counts[f"{name}_restarts"] += 1

    async def _restart_services_left(self) -> None:
        if self.options.restart_services:
            for name in ("gateway", "postgrest"):
                await self._restart_service(name)
        for worker in self.workers:
            if not worker.alive():
                await asyncio.to_thread(worker.start)
                self.counts["worker_restarts"] += 1

    async def _deadline_loop(self) -> None:
        """Keep the campaign's unfinished jobs' deadlines short."""
        async with await psycopg.AsyncConnection.connect(
                self.stack.config.superuser_db_url, autocommit=True) as conn:
            while True:
                await conn.execute(
                    "update public.video_jobs set deadline_at = created_at + "
                    "make_interval(secs => %s) where status in ('pending', 'processing') "
                    "and deadline_at > created_at + make_interval(secs => %s) "
                    "and user_id = any(%s)",
                    (self.options.deadline_seconds, self.options.deadline_seconds,
                     self.user_ids))
                await asyncio.sleep(0.5)

    async def _unfinished(self) -> int:
        rows = await self._sql("select count(*) from public.video_jobs where status in "
                               "('pending', 'processing') and user_id = any(%s)",
                               self.user_ids)
        return int(rows[0][0])

    async def _quiesce(self) -> None:
        deadline = time.monotonic() + self.options.quiesce_timeout
        left = await self._unfinished()
        while left and time.monotonic() < deadline:
            self.say(f"waiting for {left} unfinished job(s)")
            await asyncio.sleep(1.0)
            left = await self._unfinished()
        # Late webhooks (sent after their job's deadline) and duplicates still in flight.
        settle = LATE_AFTER_DEADLINE + 3.0
        self.say(f"all jobs terminal; letting late webhooks land ({settle:.0f} s)")
        await asyncio.sleep(settle)

    async def _sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        async with await psycopg.AsyncConnection.connect(
                self.stack.config.superuser_db_url, autocommit=True) as conn:
            cursor = await conn.execute(query, params or None)
            return await cursor.fetchall() if cursor.description else []

    # --- checks -----------------------------------------------------------------------
    async def _checks(self, admin: AsyncRendioAdmin, http: httpx.AsyncClient) -> None:
        report, users = self.report, self.user_ids
        jobs = await self._sql(
            "select j.job_id, j.status, j.prompt, j.credits_used, j.error_message, "
            "j.video_url, j.thumbnail_url, "
            "count(*) filter (where q.reason = 'video_generation'), "
            "coalesce(sum(q.change) filter (where q.reason = 'video_generation'), 0), "
            "count(*) filter (where q.reason = 'generation_failed_refund'), "
            "coalesce(sum(q.change) filter (where q.reason = 'generation_failed_refund'), 0) "
            "from public.video_jobs j left join public.quota_log q on q.job_id = j.job_id "
            "where j.user_id = any(%s) group by j.job_id", users)
        by_status = Counter(str(row[1]) for row in jobs)
        report.jobs_by_status = dict(sorted(by_status.items()))
        unfinished = by_status["pending"] + by_status["processing"]
        report.check("every job terminal", unfinished == 0,
                     f"{len(jobs)} jobs, {unfinished} unfinished")
        must_fail = {o.label for o in self.outcomes if o.must_fail}
        per_outcome: dict[str, Counter[str]] = {}
        wrong_completions, charge_errors, refund_errors = [], [], []
        for (job_id, status, prompt, cost, error, _v, _t, charges, charged,
             refunds, refunded) in jobs:
            match = _LABEL.match(str(prompt))
            label = match[1] if match else "?"
            per_outcome.setdefault(label, Counter())[str(status)] += 1
            if status == "failed":
                report.failure_reasons[str(error).split(":")[0]] = (
                    report.failure_reasons.get(str(error).split(":")[0], 0) + 1)
            if status == "completed" and label in must_fail:
                wrong_completions.append(f"{job_id} ({label})")
            if charges != 1 or charged != -cost:
                charge_errors.append(f"{job_id}: {charges} charge(s), {charged}")
            if status == "failed" and (refunds != 1 or refunded != cost):
                refund_errors.append(f"{job_id}: {refunds} refund(s) of {refunded}")
            if status == "completed" and refunds:
                refund_errors.append(f"{job_id}: completed and refunded {refunds}×")
        report.outcomes = {label: dict(counter) for label, counter in
                           sorted(per_outcome.items())}
        self.counts["job_refunds"] = sum(int(row[9]) for row in jobs)
        violations = await admin.verify_ledger()
        report.check("verify_ledger() empty", not violations,
                     "no violation" if not violations else "; ".join(
                         f"{v.invariant}: {v.detail}" for v in violations[:5]))
        report.check("each job charged exactly once", not charge_errors,
                     f"{len(jobs)} jobs" if not charge_errors else "; ".join(charge_errors[:5]))
        report.check("each failed job refunded exactly once (completed: never)",
                     not refund_errors,
                     f"{by_status['failed']} failed, {self.counts['job_refunds']} refunds"
                     if not refund_errors else "; ".join(refund_errors[:5]))
        report.check("no job that must fail completed", not wrong_completions,
                     f"{sum(n for label, c in per_outcome.items() if label in must_fail for n in c.values())} such jobs"  # noqa: E501
                     if not wrong_completions else "; ".join(wrong_completions[:5]))
        duplicates = await self._sql(
            "select prompt, count(*) from public.video_jobs where user_id = any(%s) "
            "group by user_id, prompt having count(*) > 1", users)
        report.check("one job per Idempotency-Key (no double charge on retries)",
                     not duplicates and not self.counts["replay_mismatches"],
                     f"{self.counts['replays']} replays, {self.counts['client_retries']} "
                     "client retries" if not duplicates and not self.counts[
                         "replay_mismatches"] else
                     f"{len(duplicates)} prompts with several jobs, "
                     f"{self.counts['replay_mismatches']} replay mismatches")
        purchases = await self._sql(
            "select reason, count(*), count(distinct transaction_id) from public.quota_log "
            "where user_id = any(%s) and reason in ('iap_purchase', 'iap_refund') "
            "group by reason", users)
        iap = {str(reason): (int(n), int(distinct)) for reason, n, distinct in purchases}
        bought, refunded_iap = iap.get("iap_purchase", (0, 0)), iap.get("iap_refund", (0, 0))
        self.counts["iap_refunds"] = refunded_iap[0]
        report.check("each purchase credited once, each refund notification applied once",
                     bought == (self.counts["purchases"], self.counts["purchases"])
                     and refunded_iap[0] == refunded_iap[1]
                     and refunded_iap[0] <= self.counts["refund_notifications"],
                     f"{bought[0]} purchase row(s) for {self.counts['purchases']} purchases, "
                     f"{refunded_iap[0]} refund row(s) for "
                     f"{self.counts['refund_notifications']} notifications")
        # Files the system removed itself: a finisher's own cleanup of a job failed while
        # it stored, and the sweeps' removal of strays left by workers killed meanwhile.
        self.counts["files_removed_by_finishers"] = self._logged_files("orphans_removed")
        self.counts["stray_files_removed_by_sweeps"] = self._logged_files("strays_removed")
        orphans = await self._sql(
            "select o.bucket_id || '/' || o.name from storage.objects o "
            "where o.bucket_id in ('videos', 'thumbnails') "
            "and split_part(o.name, '/', 1) = any(%s::text[]) and not exists ("
            " select 1 from public.video_jobs j where j.status = 'completed' and ("
            "  (o.bucket_id = 'videos' and j.video_url in (o.name, 'videos/' || o.name)) or"
            "  (o.bucket_id = 'thumbnails' and j.thumbnail_url in "
            "   (o.name, 'thumbnails/' || o.name))))", [str(u) for u in users])
        report.check("no orphan Storage object", not orphans,
                     "none" if not orphans else
                     f"{len(orphans)}: " + ", ".join(str(r[0]) for r in orphans[:3]))
        await self._check_videos(admin, http, [row for row in jobs if row[1] == "completed"])
        report.check("clients saw no unexpected error", not report.client_errors,
                     "none" if not report.client_errors else "; ".join(
                         report.client_errors[:3]))

    def _logged_files(self, event: str) -> int:
        """Files named by this campaign's `event` lines in the workers' JSON logs."""
        count = 0
        for path, start in self._log_starts.items():
            with contextlib.suppress(OSError), path.open("rb") as log:
                log.seek(start)
                for line in log.read().decode("utf-8", "replace").splitlines():
                    if f'"event": "{event}"' not in line:
                        continue
                    with contextlib.suppress(ValueError):
                        files = json.loads(line).get("files")
                        count += len(files) if isinstance(files, list) else 0
        return count

    async def _check_videos(self, admin: AsyncRendioAdmin, http: httpx.AsyncClient,
                            completed: list[tuple[Any, ...]]) -> None:
        gate = asyncio.Semaphore(16)
        missing: list[str] = []

        async def one(job_id: Any, path: str | None) -> None:
            if not path:
                missing.append(f"{job_id}: no video path")
                return
            async with gate:
                try:
                    url = await admin.signed_url("videos", path, expires_in=300)
                    response = await http.get(url)
                except (RendioError, httpx.HTTPError) as exc:
                    missing.append(f"{job_id}: {type(exc).__name__}: {exc}")
                    return
            if response.status_code != 200 or response.content[4:8] != b"ftyp":
                missing.append(f"{job_id}: {response.status_code}, "
                               f"{len(response.content)} bytes")

        await asyncio.gather(*(one(row[0], row[5]) for row in completed))
        self.report.check("no completed job without its video (stored, an MP4)",
                          not missing, f"{len(completed)} videos fetched" if not missing
                          else f"{len(missing)}: " + "; ".join(missing[:3]))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def run_campaign(options: ChaosOptions, *, stack: Stack | None = None,
                 work_dir: Path | None = None) -> ChaosReport:
    """Run the campaign on `stack` (running), or on a fresh one under `work_dir`."""
    import tempfile

    say = options.on_step or (lambda message: None)
    if stack is not None:
        return asyncio.run(Campaign(stack, options, stack.config.log_dir).run())
    root = Path(tempfile.mkdtemp(prefix="rendio-chaos-", dir=work_dir))
    keep = True  # what failed, or an error, leaves its logs (state/logs) for a look
    try:
        with temporary_stack(root, say) as fresh:
            report = asyncio.run(Campaign(fresh, options, fresh.config.log_dir).run())
        keep = not report.ok
        return report
    finally:
        if keep:
            say(f"kept {root} (logs under state/logs) for a look at what failed")
        else:
            import shutil

            shutil.rmtree(root, ignore_errors=True)
