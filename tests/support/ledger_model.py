"""An in-memory model of the credit ledger and helpers for the database tests.

`LedgerModel` predicts what each SQL credit/job function answers, independently of the
SQL; the Hypothesis state machine in test_db_ledger_stateful.py compares the two.
The helpers create auth users (which fires the trigger that creates public.users),
catalog models and PostgREST clients for a role.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from postgrest import SyncPostgrestClient
from postgrest.exceptions import APIError

INITIAL_GRANT = 10
EARNING_REASONS = ("initial_grant", "iap_purchase")


class Sql(Protocol):
    def __call__(self, query: str, *params: Any) -> list[tuple[Any, ...]]: ...


# --- database helpers ---------------------------------------------------------------


# Ledger tests create many jobs per user; the in-flight limit has tests of its own.
UNLIMITED_JOBS = 1_000_000


def new_user(sql: Sql, *, email: str | None = None, anonymous: bool = True,
             max_jobs_in_flight: int = UNLIMITED_JOBS) -> str:
    """Create an auth user (the trigger creates its public.users row); return its id."""
    user_id = str(uuid.uuid4())
    sql(
        "insert into auth.users (id, email, is_anonymous, aud, role) "
        "values (%s, %s, %s, 'authenticated', 'authenticated')",
        user_id, email, anonymous,
    )
    sql("update public.users set max_jobs_in_flight = %s where id = %s",
        max_jobs_in_flight, user_id)
    return user_id


def new_model(sql: Sql, *, cost: int = 4, available: bool = True, provider: str = "fal") -> str:
    """Create a catalog model; return its id."""
    rows = sql(
        "insert into public.models (name, category, provider, provider_model_id, "
        "cost_per_generation, is_available) values (%s, 'test', %s, 'fal-ai/veo3.1', %s, %s) "
        "returning id",
        f"model-{uuid.uuid4().hex[:8]}", provider, cost, available,
    )
    return str(rows[0][0])


def balance(sql: Sql, user_id: str) -> tuple[int, int]:
    """(credits_remaining, credits_total) of a user."""
    rows = sql("select credits_remaining, credits_total from public.users where id = %s", user_id)
    return int(rows[0][0]), int(rows[0][1])


def ledger_violations(sql: Sql, user_ids: list[str] | None = None) -> list[tuple[Any, ...]]:
    """verify_ledger() rows, optionally only those of `user_ids`."""
    rows = sql("select user_id, invariant, detail from public.verify_ledger()")
    if user_ids is None:
        return rows
    wanted = set(user_ids)
    return [r for r in rows if str(r[0]) in wanted]


def rest(api_url: str, apikey: str, token: str | None = None) -> SyncPostgrestClient:
    """A PostgREST client through the gateway, as the role of `token` (default: the key)."""
    bearer = token or apikey
    return SyncPostgrestClient(
        f"{api_url}/rest/v1",
        headers={"apikey": apikey, "Authorization": f"Bearer {bearer}"},
    )


def data(request: Any) -> Any:
    """Execute a postgrest request builder and return its JSON data."""
    return request.execute().data


def api_error(exc: APIError) -> tuple[str | None, str | None, dict[str, Any] | None]:
    """(code, message, details as JSON) of a PostgREST error."""
    details: dict[str, Any] | None = None
    if exc.details:
        try:
            details = json.loads(exc.details)
        except ValueError:
            details = None
    return exc.code, exc.message, details


# --- the model ----------------------------------------------------------------------


class ModelError(Exception):
    """The error the model predicts, by its message (the SQL error's message)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class UserState:
    balance: int = 0
    total: int = 0
    granted: bool = False
    device: str | None = None


@dataclass
class JobState:
    user: str
    cost: int
    status: str = "pending"


@dataclass
class KeyState:
    request_hash: str
    response: dict[str, Any]


@dataclass
class LedgerModel:
    """What the credit and job functions should do, in plain Python."""

    users: dict[str, UserState] = field(default_factory=dict)
    device_claims: dict[str, str] = field(default_factory=dict)
    purchases: dict[str, tuple[str, int]] = field(default_factory=dict)
    refunded_transactions: set[str] = field(default_factory=set)
    jobs: dict[str, JobState] = field(default_factory=dict)
    keys: dict[tuple[str, str], KeyState] = field(default_factory=dict)

    def add_user(self, user: str) -> None:
        self.users[user] = UserState()

    def grant_initial(self, user: str, device: str) -> bool:
        state = self.users[user]
        claimed_by = self.device_claims.setdefault(device, user)
        for other in self.users.values():
            if other.device == device:
                other.device = None
        state.device = device
        if state.granted or claimed_by != user:
            return False
        state.granted = True
        state.balance += INITIAL_GRANT
        state.total += INITIAL_GRANT
        return True

    def purchase(self, user: str, transaction_id: str, amount: int) -> bool:
        """True if credited, False if already processed; raises for another user's tx."""
        if transaction_id in self.purchases:
            owner, _ = self.purchases[transaction_id]
            if owner != user:
                raise ModelError("transaction_already_used")
            return False
        self.purchases[transaction_id] = (user, amount)
        self.users[user].balance += amount
        self.users[user].total += amount
        return True

    def admin_add(self, user: str, amount: int) -> None:
        self.users[user].balance += amount
        self.users[user].total += amount

    def deduct(self, user: str, amount: int) -> None:
        state = self.users[user]
        if state.balance < amount:
            raise ModelError("insufficient_credits")
        state.balance -= amount

    def create_job(
        self, user: str, key: str, request_hash: str, cost: int, *, available: bool = True
    ) -> tuple[bool, str | None]:
        """(replayed, job id when replayed); the caller records a new job with add_job."""
        stored = self.keys.get((user, key))
        if stored is not None:
            if stored.request_hash != request_hash:
                raise ModelError("idempotency_key_reused")
            return True, str(stored.response["job_id"])
        if not available:
            raise ModelError("model_unavailable")
        if self.users[user].balance < cost:
            raise ModelError("insufficient_credits")
        return False, None

    def add_job(self, user: str, key: str, request_hash: str, job_id: str, cost: int,
                response: dict[str, Any]) -> None:
        self.users[user].balance -= cost
        self.jobs[job_id] = JobState(user=user, cost=cost)
        self.keys[(user, key)] = KeyState(request_hash=request_hash, response=response)

    def fail_job(self, job_id: str) -> int:
        """Credits refunded (0 if the job was already terminal)."""
        job = self.jobs[job_id]
        if job.status in ("completed", "failed"):
            return 0
        job.status = "failed"
        self.users[job.user].balance += job.cost
        return job.cost

    def complete_job(self, job_id: str) -> bool:
        job = self.jobs[job_id]
        if job.status in ("completed", "failed"):
            return False
        job.status = "completed"
        return True

    def iap_refund(self, user: str, transaction_id: str) -> tuple[bool, int, int]:
        """(already_processed, credits_removed, shortfall)."""
        purchase = self.purchases.get(transaction_id)
        if purchase is None or purchase[0] != user:
            raise ModelError("not_found")
        amount = purchase[1]
        state = self.users[user]
        removed = min(amount, state.balance)
        if transaction_id in self.refunded_transactions:
            return True, -1, -1
        self.refunded_transactions.add(transaction_id)
        state.balance -= removed
        return False, removed, amount - removed
