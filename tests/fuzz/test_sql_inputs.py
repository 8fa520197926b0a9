"""Hypothesis on the SQL functions' arguments, called as service_role through PostgREST
(JSON on the wire, as the library calls them): negative and huge amounts, NULLs, unknown
and malformed ids, unicode and NUL characters in prompts, reasons and transaction ids.

Each call either succeeds with the ledger intact, or fails with a clear 4xx (our PT
codes, or PostgreSQL's input errors) and changes nothing: the user's balance, ledger
rows and jobs are as before and `verify_ledger()` stays empty.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz.conftest import fuzz_settings
from tests.support.ledger_model import ledger_violations, new_model, new_user
from tests.support.stack import RunningStack, SqlRunner

# A refusal names its cause: our own PT codes, or PostgreSQL refusing the input itself
# (22P02 malformed uuid/integer, 22003 out of range, 22P05 NUL in text, 22021 bad bytes,
# 22001 too long), or PostgREST's own PGRST codes for a body it cannot use. No
# constraint's error (23xxx) may reach a caller: those texts name internals.
CLEAR = {"PT400", "PT402", "PT404", "PT409", "PT422",
         "22P02", "22003", "22P05", "22021", "22001", "22023"}

INT32 = 2**31 - 1
amounts = st.one_of(
    st.none(),
    st.sampled_from([0, -1, 1, 4, INT32, -INT32 - 1, INT32 + 1, 10**30]),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=5),
)
hostile_text = st.one_of(
    st.none(),
    st.just(""),
    st.text(max_size=40),
    st.text(max_size=20).map(lambda t: t + "\x00" + t),
    st.sampled_from(["x" * 2001, "x" * 70_000, "é" * 300, "\U0001f3a5" * 50, "\u202e"]),
)


def _ids(known: list[str]) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(known), st.uuids().map(str), st.none(),
                     st.sampled_from(["", "not-a-uuid", "00000000-0000-0000-0000-00000000000g",
                                      "'; drop table users; --", "\x00"]))


def _calls(user: str, model: str, job: str) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    users, models, jobs = _ids([user]), _ids([model]), _ids([job])
    reasons = st.one_of(hostile_text, st.sampled_from(
        ["iap_purchase", "admin_adjustment", "video_generation", "refund", "initial_grant"]))
    arguments = {
        "add_credits": st.fixed_dictionaries({
            "p_user_id": users, "p_amount": amounts, "p_reason": reasons,
            "p_transaction_id": hostile_text}),
        "deduct_credits": st.fixed_dictionaries({
            "p_user_id": users, "p_amount": amounts, "p_reason": reasons,
            "p_job_id": jobs}),
        "create_video_job": st.fixed_dictionaries({
            "p_user_id": users, "p_model_id": models, "p_prompt": hostile_text,
            "p_settings": st.one_of(st.none(), st.just({}), st.just({"duration": "8s"}),
                                    st.just([1]), st.just("\x00"), st.just({"\x00": 1})),
            "p_idempotency_key": st.one_of(st.uuids().map(str), st.none(), hostile_text),
            "p_request_hash": hostile_text}),
        "fail_video_job": st.fixed_dictionaries({"p_job_id": jobs, "p_error": hostile_text}),
        "apply_iap_refund": st.fixed_dictionaries({
            "p_user_id": users, "p_transaction_id": hostile_text}),
        "grant_initial_credits": st.fixed_dictionaries({
            "p_user_id": users, "p_device_id": hostile_text}),
    }
    return st.one_of(*(args.map(lambda a, name=name: (name, a))
                       for name, args in arguments.items()))


def _state(sql: SqlRunner, user: str) -> tuple[Any, ...]:
    [row] = sql(
        "select u.credits_remaining, u.credits_total, u.device_id,"
        " (select count(*) from public.quota_log q where q.user_id = u.id),"
        " (select count(*) from public.video_jobs j where j.user_id = u.id),"
        " (select count(*) from public.video_jobs j where j.user_id = u.id"
        "   and j.status = 'failed')"
        " from public.users u where u.id = %s", user)
    return tuple(row)


@pytest.fixture(scope="module")
def rpc(stack: RunningStack) -> Any:
    headers = {"apikey": stack.config.service_role_key,
               "Authorization": f"Bearer {stack.config.service_role_key}"}
    with httpx.Client(base_url=f"{stack.rest_url()}/rpc", headers=headers,
                      timeout=30) as client:
        yield client


def test_hostile_arguments_are_refused_clearly_and_change_nothing(
    rpc: httpx.Client, sql: SqlRunner
) -> None:
    user, model = new_user(sql), new_model(sql)
    sql("select public.add_credits(%s, 20, 'admin_adjustment')", user)
    [(job,)] = sql("select (public.create_video_job(%s, %s, 'a boat', '{}', %s, 'h')"
                   " -> 'response' ->> 'job_id')", user, model, str(uuid.uuid4()))
    seen: set[str] = set()

    @fuzz_settings(scale=6)
    @given(call=_calls(user, model, job))
    # One refusal every run: a negative amount.
    @example(call=("deduct_credits", {"p_user_id": user, "p_amount": -1,
                                      "p_reason": "admin_adjustment", "p_job_id": None}))
    def run(call: tuple[str, dict[str, Any]]) -> None:
        name, arguments = call
        before = _state(sql, user)
        response = rpc.post(f"/{name}", content=json.dumps(arguments),
                            headers={"Content-Type": "application/json"})
        assert response.status_code < 500, (name, arguments, response.text)
        if response.status_code >= 400:
            error = response.json()
            code = error.get("code", "")
            seen.add(code)
            assert code in CLEAR or code.startswith("PGRST"), (name, arguments, error)
            assert error.get("message"), error
            assert _state(sql, user) == before, (name, arguments, error)
        assert ledger_violations(sql, [user]) == [], (name, arguments, response.text)

    run()
    assert "PT400" in seen  # the refusal path was exercised
    assert ledger_violations(sql) == []
