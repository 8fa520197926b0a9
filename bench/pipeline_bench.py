"""Benchmark of the generation pipeline: jobs completed per second, end to end, with 1, 2
and 4 `rendio worker` processes against the fake fal with a fixed 200 ms latency.

Each run: `--jobs` paid jobs are created through the service role and held (leased to
nobody, by SQL), the workers start and beat once, then the hold is lifted and the clock
runs until the last job is completed: claimed, submitted to the fake, polled, the MP4
downloaded and stored with its first-frame thumbnail, completed. So neither the
workers' start-up nor the creation of jobs is timed. Webhooks are off, so the workers
do all the finishing (with webhooks the API process would, whatever the worker count).
Every run ends with verify_ledger() empty. Runs on a stack of its own, on the same
machine as the workers.

    .venv/bin/python bench/pipeline_bench.py [--jobs 80] [--concurrency 1 4] [--runs 2]
        [--profile DIR]

--profile runs each worker under pyinstrument (pip install pyinstrument) and writes its
profile to DIR/worker-W-N.txt; such a run does not write its (slowed) figures.

Prints figures; writes bench/results/pipeline.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from _common import REPO, scratch_stack, write_result
from stack_bench import descendants

from rendio_backend import AsyncRendioAdmin, RendioAdmin, RendioConfig
from rendio_backend.local.stack import Stack
from rendio_backend.project import find_project

VEO = "8b87c271-f01c-550b-9e12-36cf851aae46"
PROMPT = "A bench of jobs [fake:latency-ms=200]"
WORKER_COUNTS = (1, 2, 4)


def cpu_seconds(pids: set[int]) -> float:
    """User + system CPU time of these processes so far (the live ones)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])
    return total / tick


def pieces(stack: Stack, workers: list[subprocess.Popen[bytes]]) -> dict[str, set[int]]:
    """The processes of each piece: the stack's (with their children) and the workers."""
    found = {"postgres": stack.postgres.pid(), "postgrest": stack.postgrest.pid(),
             "gateway": stack.gateway.pid()}
    return {**{name: descendants(pid) if pid else set() for name, pid in found.items()},
            "workers": {process.pid for process in workers}}


PROFILE_DIR: Path | None = None


def start_workers(config: RendioConfig, count: int, concurrency: int,
                  log_dir: Path) -> list[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RENDIO_", "SUPABASE_", "FALAI_"))}
    env.update(config.as_env())
    argv = [sys.executable, "-m", "rendio_cli.main", "worker", "--concurrency",
            str(concurrency), "--poll-interval", "0.1", "--idle-interval", "0.05",
            "--sweep-interval", "0", "--no-webhooks"]
    processes = []
    for n in range(count):
        command = argv
        if PROFILE_DIR is not None:
            command = [sys.executable, "-m", "pyinstrument", "-o",
                       str(PROFILE_DIR / f"worker-{count}-{n}.txt"), *argv[1:]]
        with open(log_dir / f"bench-worker-{count}-{n}.log", "wb") as log:
            processes.append(subprocess.Popen(command, cwd=REPO, env=env, stdout=log,
                                              stderr=subprocess.STDOUT))
    return processes


def stop_workers(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait(30)


def wait_for_heartbeats(admin: RendioAdmin, pids: set[int], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        live = {w.pid for w in admin.list_workers() if w.stopped_at is None}
        if pids <= live:
            return
        time.sleep(0.1)
    raise SystemExit("the workers did not start")


async def create_jobs(config: RendioConfig, user_id: uuid.UUID, count: int) -> list[uuid.UUID]:
    async with AsyncRendioAdmin(config) as admin:
        created = await asyncio.gather(*(
            admin.create_job(user_id, VEO, PROMPT, {"duration": "4s"}) for _ in range(count)))
    return [job.job_id for job in created]


def hold(db_url: str, jobs: list[uuid.UUID], held: bool) -> None:
    """Lease the jobs to nobody (no worker claims them), or lift that lease."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("update public.video_jobs set lease_owner = %s, lease_expires_at = "
                     "case when %s then now() + interval '1 hour' end where job_id = any(%s)",
                     ("bench-hold" if held else None, held, jobs))


def wait_completed(db_url: str, jobs: list[uuid.UUID], timeout: float = 600) -> float:
    """Seconds until every job is final; SystemExit if one failed."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(db_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            rows = conn.execute("select status, count(*) from public.video_jobs "
                                "where job_id = any(%s) group by status", (jobs,)).fetchall()
            counts = dict(rows)
            if counts.get("failed"):
                raise SystemExit(f"{counts['failed']} job(s) failed")
            if counts.get("completed", 0) == len(jobs):
                return time.monotonic()
            time.sleep(0.02)
    raise SystemExit("the jobs did not complete in time")


def run(stack: Stack, config: RendioConfig, admin: RendioAdmin, workers: int,
        jobs: int, concurrency: int) -> dict[str, Any]:
    with psycopg.connect(stack.config.superuser_db_url, autocommit=True) as conn:
        user_id = uuid.uuid4()
        conn.execute("insert into auth.users (id, aud, role) "
                     "values (%s, 'authenticated', 'authenticated')", (user_id,))
        conn.execute("update public.users set max_jobs_in_flight = 100000 where id = %s",
                     (user_id,))
    admin.add_credits(user_id, 4 * jobs)
    db_url = stack.config.superuser_db_url
    job_ids = asyncio.run(create_jobs(config, user_id, jobs))
    hold(db_url, job_ids, True)
    processes = start_workers(config, workers, concurrency, stack.config.log_dir)
    try:
        wait_for_heartbeats(admin, {p.pid for p in processes})
        watched = pieces(stack, processes)
        cpu_before = {name: cpu_seconds(pids) for name, pids in watched.items()}
        started = time.monotonic()
        hold(db_url, job_ids, False)
        finished = wait_completed(db_url, job_ids)
        cpu = {name: cpu_seconds(pids) - cpu_before[name] for name, pids in watched.items()}
    finally:
        stop_workers(processes)
    seconds = finished - started
    return {"workers": workers, "concurrency": concurrency, "jobs": jobs,
            "seconds": round(seconds, 3), "jobs_per_second": round(jobs / seconds, 2),
            "cpu_ms_per_job": {name: round(1000 * value / jobs, 1)
                               for name, value in cpu.items()},
            "cores_busy": round(sum(cpu.values()) / seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=80)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4],
                        help="steps in flight per worker (one table each)")
    parser.add_argument("--runs", type=int, default=2, help="best of N per worker count")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="profile each worker with pyinstrument into DIR")
    args = parser.parse_args()
    global PROFILE_DIR
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        PROFILE_DIR = args.profile.resolve()

    with scratch_stack() as (stack, _):
        stack.up(migrations_dir=find_project(REPO).migrations_dir)
        config = stack.config.rendio_config()
        tables: dict[str, dict[str, Any]] = {}
        with RendioAdmin(config) as admin:
            admin.provision_storage()
            admin.seed_models()
            for concurrency in args.concurrency:
                results: list[dict[str, Any]] = []
                for workers in WORKER_COUNTS:
                    runs = [run(stack, config, admin, workers, args.jobs, concurrency)
                            for _ in range(args.runs)]
                    best = max(runs, key=lambda r: r["jobs_per_second"])
                    results.append({**best, "runs": [r["jobs_per_second"] for r in runs]})
                    cpu = best["cpu_ms_per_job"]
                    print(f"{workers} worker(s) x concurrency {concurrency}: "
                          f"{best['jobs_per_second']:6.2f} jobs/s ({args.jobs} jobs in "
                          f"{best['seconds']:.2f} s; runs {results[-1]['runs']}); "
                          f"CPU {sum(cpu.values()):.0f} ms/job "
                          f"({', '.join(f'{k} {v:.0f}' for k, v in cpu.items())}), "
                          f"{best['cores_busy']} cores busy", flush=True)
                one = results[0]["jobs_per_second"]
                scaling = {str(r["workers"]): round(r["jobs_per_second"] / one, 2)
                           for r in results}
                print(f"  scaling vs 1 worker: {scaling} (goal: 4 workers >= 3x)")
                tables[str(concurrency)] = {"results": results, "scaling": scaling}
            violations = admin.verify_ledger()
        if violations:
            raise SystemExit(f"ledger violations: {violations}")
    print("ledger sound after every run")
    if PROFILE_DIR is not None:
        print(f"profiles in {PROFILE_DIR} (figures slowed by the profiler: not recorded)")
        return
    first = str(args.concurrency[0])
    ratio = tables[first]["scaling"][str(WORKER_COUNTS[-1])]
    write_result("pipeline", {"fake_latency_ms": 200, "webhooks": False, "jobs": args.jobs,
                              "by_concurrency": tables, "ledger_violations": 0},
                 ratio=ratio, ratio_of=f"jobs/s with {WORKER_COUNTS[-1]} workers / with 1 "
                 f"({first} step(s) in flight each)", goal=">= 3", goal_met=ratio >= 3)


if __name__ == "__main__":
    main()
