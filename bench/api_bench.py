"""Benchmark of POST /functions/v1/generate-video against the raw RPC it wraps.

Same stack, same run: N concurrent users each send requests back to back, for a fixed
time, to (a) the API through the gateway (token verification, settings validation,
create_video_job through PostgREST with the service role, the answer shaped) and
(b) `POST /rest/v1/rpc/create_video_job` through the gateway with the service role
(the ceiling the API can reach on this path). Prints requests/s and latency
percentiles per level and the API / RPC ratio, and writes bench/results/api.json.
Asserts nothing.

    .venv/bin/python bench/api_bench.py [--users 1,8,32] [--duration 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

import httpx
import psycopg
from _common import REPO, scratch_stack, write_result

from rendio_backend import RendioAdmin, RendioClient, request_hash
from rendio_backend.local.config import StackConfig
from rendio_backend.project import find_project

VEO = "8b87c271-f01c-550b-9e12-36cf851aae46"
BODY = {"model_id": VEO, "prompt": "bench prompt", "settings": {"duration": "8s"}}


def users(config: StackConfig, count: int) -> list[tuple[str, str]]:
    """`count` signed-in users with plenty of credits and no in-flight limit."""
    made = []
    with RendioAdmin(config.rendio_config()) as admin:
        admin.seed_models()
        for _ in range(count):
            with RendioClient(config.rendio_config()) as client:
                session = client.sign_in_anonymously()
            admin.add_credits(session.user_id, 1_000_000)
            made.append((str(session.user_id), session.access_token))
    with psycopg.connect(config.superuser_db_url, autocommit=True) as conn:
        conn.execute("update public.users set max_jobs_in_flight = 1000000000")
    return made


async def load(calls: list[Callable[[], Awaitable[httpx.Response]]],
               duration: float) -> tuple[float, list[float], int]:
    """Each call loops for `duration` s; returns req/s, latencies (ms), errors."""
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + duration

    async def user(call: Callable[[], Awaitable[httpx.Response]]) -> None:
        nonlocal errors
        while time.monotonic() < deadline:
            started = time.perf_counter()
            response = await call()
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status_code not in (200, 202):
                errors += 1

    started = time.monotonic()
    await asyncio.gather(*(user(call) for call in calls))
    return len(latencies) / (time.monotonic() - started), latencies, errors


def percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100)[int(p) - 1] if len(values) > 1 else values[0]


async def run_level(config: StackConfig, people: list[tuple[str, str]],
                    duration: float) -> dict[str, dict[str, float]]:
    limits = httpx.Limits(max_connections=len(people) * 2)
    async with httpx.AsyncClient(base_url=config.api_url, limits=limits, timeout=30) as http:
        def api(token: str) -> Callable[[], Awaitable[httpx.Response]]:
            def call() -> Awaitable[httpx.Response]:
                return http.post("/functions/v1/generate-video", json=BODY, headers={
                    "apikey": config.publishable_key, "Authorization": f"Bearer {token}",
                    "Idempotency-Key": str(uuid.uuid4())})
            return call

        def rpc(user_id: str) -> Callable[[], Awaitable[httpx.Response]]:
            def call() -> Awaitable[httpx.Response]:
                return http.post("/rest/v1/rpc/create_video_job", json={
                    "p_user_id": user_id, "p_model_id": VEO, "p_prompt": BODY["prompt"],
                    "p_settings": BODY["settings"], "p_idempotency_key": str(uuid.uuid4()),
                    "p_request_hash": request_hash("POST", "/functions/v1/generate-video",
                                                   BODY)},
                    headers={"apikey": config.secret_key})
            return call

        figures = {}
        for name, calls in (("rpc", [rpc(u) for u, _ in people]),
                            ("api", [api(t) for _, t in people])):
            rate, latencies, errors = await load(calls, duration)
            figures[name] = {"rps": round(rate, 1), "errors": errors,
                             "p50_ms": round(percentile(latencies, 50), 1),
                             "p95_ms": round(percentile(latencies, 95), 1),
                             "p99_ms": round(percentile(latencies, 99), 1)}
        return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", default="1,8,32")
    parser.add_argument("--duration", type=float, default=5.0)
    args = parser.parse_args()
    levels = [int(n) for n in args.users.split(",")]
    report: dict[str, object] = {"duration_s": args.duration, "levels": {}}
    with scratch_stack() as (stack, _):
        stack.up(migrations_dir=find_project(REPO).migrations_dir)
        people = users(stack.config, max(levels))
        asyncio.run(run_level(stack.config, people[:1], 1.0))  # warm up
        for level in levels:
            figures = asyncio.run(run_level(stack.config, people[:level], args.duration))
            ratio = figures["api"]["rps"] / figures["rpc"]["rps"] * 100
            figures["api_vs_rpc_percent"] = {"value": round(ratio, 1)}
            report["levels"][str(level)] = figures  # type: ignore[index]
            print(f"{level:>3} users  rpc {figures['rpc']['rps']:>7} req/s "
                  f"p50 {figures['rpc']['p50_ms']} p99 {figures['rpc']['p99_ms']} ms | "
                  f"api {figures['api']['rps']:>7} req/s p50 {figures['api']['p50_ms']} "
                  f"p99 {figures['api']['p99_ms']} ms | api/rpc {ratio:.1f} % "
                  f"(errors rpc {figures['rpc']['errors']}, api {figures['api']['errors']})")
    by_level = report["levels"]
    ratios = {level: by_level[level]["api_vs_rpc_percent"]["value"]  # type: ignore[index]
              for level in by_level}  # type: ignore[union-attr]
    # The headline: the lowest level (one user, no queueing: the API's own cost).
    first = str(levels[0])
    write_result("api", report, ratio=ratios[first] / 100,
                 ratio_of=f"generate-video through the gateway / the raw RPC through the "
                          f"gateway, {first} user(s) (all levels: {ratios} %)")


if __name__ == "__main__":
    main()
