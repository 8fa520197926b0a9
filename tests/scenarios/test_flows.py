"""`rendio simulate`'s flows on the session stack: all pass with a worker, and each one
reports ✗ when the thing it checks is broken on purpose (each break is undone after)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from rendio_backend import RendioAdmin, RendioConfig
from rendio_backend.local.fake_apple import FakeAppleIssuer
from rendio_backend.local.fakes.devicecheck import fake_device_token
from rendio_backend.local.fakes.storekit import SigningChain, StoreKitSigner
from rendio_backend.scenarios import FLOW_NAMES
from rendio_backend.scenarios._context import SimulationOptions
from rendio_backend.scenarios._report import FlowReport
from rendio_backend.scenarios.runner import run_flow, run_flows
from rendio_cli.simulate import local_target
from tests.generation.conftest import FAST, ThreadedWorker
from tests.support.stack import RunningStack, SqlRunner

RENDIO = str(Path(sys.executable).parent / "rendio")


@pytest.fixture(scope="module")
def options(stack: RunningStack) -> SimulationOptions:
    """Short timeouts and the stack's fakes' signers, as `rendio simulate` passes them."""
    target = local_target(stack.config)
    return SimulationOptions(users=3, concurrency=3, job_timeout=20, **target.signers)


@pytest.fixture(autouse=True)
def leave_no_job_running(admin: RendioAdmin, sql: SqlRunner) -> Iterator[None]:
    """Jobs a flow left pending are failed (so refunded) and the ledger must be sound."""
    yield
    for (job_id,) in sql("select job_id from public.video_jobs "
                         "where status in ('pending', 'processing')"):
        admin.fail_job(job_id, "left unfinished by a simulation test")
    assert admin.verify_ledger() == []


def play(name: str, config: RendioConfig, options: SimulationOptions) -> FlowReport:
    return asyncio.run(run_flow(name, config, options))


def failed(report: FlowReport) -> list[str]:
    return [step.name for step in report.failed_steps] + (
        [f"error: {report.error}"] if report.error else [])


def test_every_flow_passes_with_a_worker(admin: RendioAdmin, config: RendioConfig,
                                         options: SimulationOptions) -> None:
    worker = ThreadedWorker(config, FAST).start()
    try:
        reports = asyncio.run(run_flows(FLOW_NAMES, config, options))
    finally:
        worker.stop()
    assert [r.flow for r in reports] == list(FLOW_NAMES)
    for report in reports:
        assert report.skipped is None, (report.flow, report.skipped)
        assert report.ok, (report.flow, failed(report))
        assert report.steps
    generated = reports[FLOW_NAMES.index("generate")]
    assert "/storage/v1/object/sign/videos/" in generated.links["video"]


@pytest.mark.parametrize(("flow", "step"), [
    ("generate", "completed within 1.5 s"),
    ("failure-refund", "the job fails with a reason for the app"),
    ("load", "all completed within 1.5 s"),
])
def test_without_a_worker_jobs_never_finish(flow: str, step: str, admin: RendioAdmin,
                                            config: RendioConfig,
                                            options: SimulationOptions) -> None:
    # The session stack runs no worker: nothing is ever uploaded.
    report = play(flow, config, replace(options, job_timeout=1.5, users=2))
    assert not report.ok
    assert step in failed(report)


def test_rate_limit_fails_without_the_in_flight_limit(sql: SqlRunner, config: RendioConfig,
                                                      options: SimulationOptions) -> None:
    sql("alter table public.video_jobs disable trigger enforce_jobs_in_flight")
    try:
        report = play("rate-limit", config, options)
    finally:
        sql("alter table public.video_jobs enable trigger enforce_jobs_in_flight")
    assert failed(report) == ["job 4 while 3 are in flight",
                              "balance (the refused job charged nothing)"]


def test_onboarding_fails_when_a_reinstall_is_not_recognised(
        config: RendioConfig, options: SimulationOptions) -> None:
    # DeviceCheck forgetting the phone: every token names a new one.
    report = play("onboarding", config,
                  replace(options, device_tokens=lambda device: fake_device_token()))
    assert failed(report) == ["device check after the reinstall"]


def test_purchase_fails_when_the_signature_is_not_apples(
        config: RendioConfig, options: SimulationOptions, stack: RunningStack) -> None:
    forger = StoreKitSigner(SigningChain.generate(), bundle_id="com.rendio.app")
    report = play("purchase", config, replace(options, storekit=forger))
    assert not report.ok and report.error is not None and "InvalidRequest" in report.error


def test_apple_link_fails_with_a_foreign_issuer(
        config: RendioConfig, options: SimulationOptions, tmp_path: Path,
        stack: RunningStack) -> None:
    other = FakeAppleIssuer(replace(stack.config, state_dir=tmp_path))  # another key

    def id_token(sub: str, nonce: str) -> str:
        return other.mint_id_token(sub=sub, nonce=nonce)

    report = play("apple-link", config, replace(options, apple_id_tokens=id_token))
    assert not report.ok and report.error is not None and "AuthError" in report.error


def test_without_signers_the_apple_flows_are_skipped(config: RendioConfig) -> None:
    for flow in ("onboarding", "purchase", "apple-link"):
        report = play(flow, config, SimulationOptions())
        assert report.ok and report.skipped and not report.steps, flow


def test_security_fails_when_clients_may_raise_their_credits(
        stack: RunningStack, sql: SqlRunner) -> None:
    """The issue's example, through the installed CLI: exit 1 and a ✗."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RENDIO_", "SUPABASE_"))}
    sql("grant update (credits_remaining) on public.users to authenticated")
    try:
        result = subprocess.run(
            [RENDIO, "simulate", "security", "--url", stack.config.api_url, "--anon-key",
             stack.publishable_key, "--service-role-key", stack.secret_key],
            env=env, capture_output=True, text=True, timeout=120)
    finally:
        sql("revoke update (credits_remaining) on public.users from authenticated")
        # The attacker's 1000 credits have no ledger row: put its balance back.
        sql("update public.users u set credits_remaining = 0 where credits_remaining = 1000 "
            "and not exists (select 1 from public.quota_log q where q.user_id = u.id)")
    assert result.returncode == 1, result.stdout + result.stderr
    row = next(line for line in result.stdout.splitlines() if "update own" in line)
    assert "✗" in row, result.stdout
    assert "differing from the spec: security" in result.stderr


@pytest.fixture
def patch_create_video_job(sql: SqlRunner) -> Iterator[Any]:
    """`patch(old, new)`: create_video_job with one line of its body replaced, for one
    test; the definition in force is put back whatever the test did."""
    original = sql("select pg_catalog.pg_get_functiondef("
                   "'public.create_video_job(uuid, uuid, text, jsonb, uuid, text)'"
                   "::pg_catalog.regprocedure)")[0][0]

    def patch(old: str, new: str) -> None:
        assert old in original, old
        sql(original.replace(old, new))

    try:
        yield patch
    finally:
        sql(original)


def test_insufficient_credits_fails_when_sql_skips_the_balance_check(
        patch_create_video_job: Any, config: RendioConfig, options: SimulationOptions) -> None:
    patch_create_video_job("if v_balance < v_model.cost_per_generation then", "if false then")
    report = play("insufficient-credits", config, options)
    assert not report.ok and failed(report), report


def test_idempotency_fails_when_sql_forgets_stored_responses(
        patch_create_video_job: Any, config: RendioConfig, options: SimulationOptions) -> None:
    patch_create_video_job("if v_key.state = 'completed' then", "if false then")
    report = play("idempotency", config, options)
    assert not report.ok and failed(report), report
