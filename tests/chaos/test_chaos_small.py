"""The chaos campaign at a tiny size (`make test-long` runs it at 200 users × 10): the
same code path, faults included (a worker SIGKILLed, the gateway and PostgREST
restarted), on a stack of its own so the session's stack is left alone."""

from __future__ import annotations

from rendio_backend.local.chaos import ChaosOptions, run_campaign


def test_a_tiny_chaos_campaign_loses_nothing_and_charges_nothing_twice() -> None:
    report = run_campaign(ChaosOptions(
        users=4, generations=3, seed=16, workers=2, worker_concurrency=4,
        deadline_seconds=10.0, kill_interval=(1.0, 2.0), min_kills=1))
    failed = [f"{c.name}: {c.detail}" for c in report.checks if not c.ok]
    assert report.ok, failed
    assert sum(report.jobs_by_status.values()) == 12
    assert set(report.jobs_by_status) <= {"completed", "failed"}
    assert report.counts["worker_kills"] >= 1
    assert report.counts["gateway_restarts"] == 1
    assert report.counts["postgrest_restarts"] == 1
    assert report.counts["jobs_created"] == 12
