"""Hypothesis drives random credit and job operations against the database and LedgerModel.

After every step each user's balance and lifetime total must match the model, and
verify_ledger() must report nothing for the users of the run.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.support.ledger_model import LedgerModel, ModelError, new_model, new_user
from tests.support.stack import RunningStack

DEVICES = [f"device-{i}" for i in range(4)]
TRANSACTIONS = [f"tx-{i}" for i in range(6)]
KEYS = [f"key-{i}" for i in range(5)]


def test_ledger_matches_model(stack: RunningStack) -> None:
    conn = psycopg.connect(stack.config.superuser_db_url, autocommit=True)
    conn.execute("set role service_role")

    def sql(query: str, *params: Any) -> list[tuple[Any, ...]]:
        cur = conn.execute(query, params or None)
        return cur.fetchall() if cur.description else []

    def admin_sql(query: str, *params: Any) -> list[tuple[Any, ...]]:
        conn.execute("reset role")
        try:
            return sql(query, *params)
        finally:
            conn.execute("set role service_role")

    # Catalog shared by all runs: two available models and one unavailable.
    models = {new_model(admin_sql, cost=4): (4, True), new_model(admin_sql, cost=3): (3, True),
              new_model(admin_sql, cost=2, available=False): (2, False)}

    class LedgerMachine(RuleBasedStateMachine):
        users = Bundle("users")
        jobs = Bundle("jobs")

        def __init__(self) -> None:
            super().__init__()
            self.model = LedgerModel()
            # Names of this run, so runs never collide in the shared database.
            self.run = uuid.uuid4().hex[:12]

        def _call(self, function: str, *args: Any) -> Any:
            placeholders = ", ".join(["%s"] * len(args))
            return sql(f"select public.{function}({placeholders})", *args)[0][0]

        def _expect_error(self, expected: str, function: str, *args: Any) -> None:
            try:
                self._call(function, *args)
            except psycopg.Error as exc:
                assert exc.diag.message_primary == expected, exc
            else:
                raise AssertionError(f"{function} should have raised {expected}")

        def _new_user(self) -> str:
            user = new_user(admin_sql)
            self.model.add_user(user)
            return user

        @initialize(target=users)
        def first_user(self) -> str:
            return self._new_user()

        @rule(target=users)
        def add_user(self) -> str:
            return self._new_user()

        @rule(user=users, device=st.sampled_from(DEVICES))
        def grant_initial(self, user: str, device: str) -> None:
            granted = self._call("grant_initial_credits", user, f"{self.run}-{device}")
            assert granted == self.model.grant_initial(user, device)

        @rule(user=users, tx=st.sampled_from(TRANSACTIONS),
              amount=st.sampled_from([5, 20, 100]))
        def purchase(self, user: str, tx: str, amount: int) -> None:
            tx_id = f"{self.run}-{tx}"
            try:
                credited = self.model.purchase(user, tx, amount)
            except ModelError as err:
                self._expect_error(err.code, "add_credits", user, amount, "iap_purchase", tx_id)
                return
            result = self._call("add_credits", user, amount, "iap_purchase", tx_id)
            assert result["already_processed"] is (not credited)
            assert result["credits_remaining"] == self.model.users[user].balance

        @rule(user=users, amount=st.integers(1, 15))
        def admin_add(self, user: str, amount: int) -> None:
            self.model.admin_add(user, amount)
            self._call("add_credits", user, amount, "admin_adjustment", None)

        @rule(user=users, amount=st.integers(1, 15))
        def admin_deduct(self, user: str, amount: int) -> None:
            try:
                self.model.deduct(user, amount)
            except ModelError as err:
                self._expect_error(err.code, "deduct_credits", user, amount,
                                   "admin_adjustment", None)
                return
            result = self._call("deduct_credits", user, amount, "admin_adjustment", None)
            assert result["credits_remaining"] == self.model.users[user].balance

        @rule(target=jobs, user=users, model_id=st.sampled_from(sorted(models)),
              key=st.sampled_from(KEYS), variant=st.sampled_from(["a", "b"]))
        def generate(self, user: str, model_id: str, key: str, variant: str) -> Any:
            cost, available = models[model_id]
            # The request fingerprint covers the body: model and prompt variant.
            request_hash = f"{model_id}:{variant}"
            key_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.run}/{key}"))
            args = (user, model_id, f"prompt {variant}", json.dumps({}), key_id, request_hash)
            try:
                replayed, job_id = self.model.create_job(user, key, request_hash, cost,
                                                         available=available)
            except ModelError as err:
                self._expect_error(err.code, "create_video_job", *args)
                return multiple()
            result = self._call("create_video_job", *args)
            assert result["replayed"] is replayed
            if replayed:
                assert result["response"]["job_id"] == job_id
                return multiple()
            response = result["response"]
            self.model.add_job(user, key, request_hash, response["job_id"], cost, response)
            assert response["credits_remaining"] == self.model.users[user].balance
            job_id = str(response["job_id"])
            return job_id

        @rule(job=jobs)
        def fail(self, job: str) -> None:
            refunded = self.model.fail_job(job)
            result = self._call("fail_video_job", job, "provider error")
            assert result["credits_refunded"] == refunded
            assert result["failed"] is (refunded > 0)

        @rule(job=jobs)
        def complete(self, job: str) -> None:
            changed = self.model.complete_job(job)
            assert self._call("complete_video_job", job, f"videos/{job}.mp4", None) is changed

        @precondition(lambda self: bool(self.model.purchases))
        @rule(data=st.data())
        def iap_refund(self, data: st.DataObject) -> None:
            tx = data.draw(st.sampled_from(sorted(self.model.purchases)))
            user = self.model.purchases[tx][0]
            already, removed, shortfall = self.model.iap_refund(user, tx)
            result = self._call("apply_iap_refund", user, f"{self.run}-{tx}")
            assert result["already_processed"] is already
            if not already:
                assert (result["credits_removed"], result["shortfall"]) == (removed, shortfall)

        @invariant()
        def balances_match(self) -> None:
            users = list(self.model.users)
            rows = sql("select id::text, credits_remaining, credits_total from public.users "
                       "where id = any(%s::uuid[])", users)
            actual = {r[0]: (r[1], r[2]) for r in rows}
            expected = {u: (s.balance, s.total) for u, s in self.model.users.items()}
            assert actual == expected

        @invariant()
        def ledger_holds(self) -> None:
            rows = sql("select user_id::text, invariant, detail from public.verify_ledger() "
                       "where user_id = any(%s::uuid[])", list(self.model.users))
            assert rows == []

    try:
        run_state_machine_as_test(
            LedgerMachine,
            settings=settings(max_examples=60, stateful_step_count=30, deadline=None,
                              database=None,
                              suppress_health_check=[HealthCheck.too_slow]),
        )
    finally:
        conn.close()
