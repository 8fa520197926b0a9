"""Benchmark of the money path: create_video_job + fail_video_job round trips per second.

Three ways to drive the same two SQL functions, same machine, same run:
  - pgbench calling them directly (the ceiling),
  - straight to PostgREST over TCP (service_role, as the worker and API call them),
  - through the gateway (what clients use),
each with N clients on N distinct users, then all N clients on one hot user (whose
balance row serialises them). The three alternate over `--rounds` rounds (the second in
the reverse order, and so on), and each keeps its best round: a machine whose speed
drifts during the run (tables grow, neighbours come and go) favours no path. Prints
figures, every round's too; asserts nothing; writes
bench/results/credits.json (`rendio bench credits`; ratio: PostgREST / pgbench on
distinct users, goal >= 50 %).

    .venv/bin/python bench/db_bench.py [--clients 16] [--duration 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile
import uuid
from collections.abc import Callable
from functools import partial

import psycopg
from _common import REPO, direct_postgrest, scratch_stack, write_result

from rendio_backend.local.config import StackConfig
from rendio_backend.local.postgres import pg_bin_dir
from rendio_backend.project import find_project

PGBENCH_SCRIPT = """\
select u.id as uid from bench_users u
 where u.n = case when :hot = 1 then 0 else :client_id end \\gset
select (public.create_video_job(':uid'::uuid, ':model'::uuid, 'bench prompt', '{}'::jsonb,
        gen_random_uuid(), md5(random()::text)) -> 'response' ->> 'job_id') as job_id \\gset
select public.fail_video_job(':job_id'::uuid, 'bench');
"""


def prepare(config: StackConfig, users: int) -> tuple[list[str], str]:
    """`users` users with credits and one model costing 1 credit."""
    ids = [str(uuid.uuid4()) for _ in range(users)]
    with psycopg.connect(config.superuser_db_url, autocommit=True) as conn:
        conn.execute("create table if not exists public.bench_users (n int primary key, "
                     "id uuid not null)")
        for n, user_id in enumerate(ids):
            conn.execute("insert into auth.users (id, aud, role, created_at, updated_at) "
                         "values (%s, 'authenticated', 'authenticated', now(), now())",
                         (user_id,))
            conn.execute("insert into public.bench_users values (%s, %s)", (n, user_id))
            # The hot user has every client's job in flight at once.
            conn.execute("update public.users set max_jobs_in_flight = 1000000 where id = %s",
                         (user_id,))
            conn.execute("select public.add_credits(%s, 1000, 'admin_adjustment')", (user_id,))
        model = conn.execute(
            "insert into public.models (name, category, cost_per_generation, provider) "
            "values ('bench', 'text-to-video', 1, 'fake') returning id").fetchone()
        assert model is not None
    return ids, str(model[0])


def pgbench(config: StackConfig, *, clients: int, duration: int, hot: bool,
            model: str) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(PGBENCH_SCRIPT)
    argv = [str(pg_bin_dir(config) / "pgbench"), "-n", "-f", script.name,
            "-c", str(clients), "-j", "2", "-T", str(duration),
            "-D", f"hot={1 if hot else 0}", "-D", f"model={model}",
            "-h", config.host, "-p", str(config.db_port), "-U", "supabase_admin", "postgres"]
    env = dict(os.environ, PGPASSWORD="postgres")
    result = subprocess.run(argv, capture_output=True, text=True, env=env)
    os.unlink(script.name)
    if result.returncode != 0:
        raise SystemExit(f"pgbench failed:\n{result.stderr}")
    failed = re.search(r"number of failed transactions: (\d+)", result.stdout)
    if failed and int(failed.group(1)):
        raise SystemExit(f"pgbench saw failures:\n{result.stdout}")
    return float(re.search(r"tps = ([\d.]+)", result.stdout).group(1))  # type: ignore[union-attr]


WRK_SCRIPT = """
-- Each request is a create_video_job, or a fail_video_job of a job this thread created
-- earlier: a round trip is one of each. Lua state is per wrk thread.
local users = {%(users)s}
local model = "%(model)s"
local prefix = "%(prefix)s"
local pending = {}
local turn = 0
local headers = {["apikey"] = "%(key)s", ["Authorization"] = "Bearer %(key)s",
                 ["Content-Type"] = "application/json"}
local function uuid4()
  return (string.gsub("xxxxxxxx-xxxx-4xxx-8xxx-xxxxxxxxxxxx", "x", function()
    return string.format("%%x", math.random(0, 15)) end))
end
function setup(thread) thread:set("id", tostring(thread)) end
function init(args) math.randomseed(os.time() + math.floor(os.clock() * 1e6)) end
function request()
  local job = table.remove(pending)
  if job then
    return wrk.format("POST", prefix .. "/rpc/fail_video_job", headers,
      '{"p_job_id":"' .. job .. '","p_error":"bench"}')
  end
  turn = turn + 1
  local user = users[(turn %% #users) + 1]
  return wrk.format("POST", prefix .. "/rpc/create_video_job", headers,
    '{"p_user_id":"' .. user .. '","p_model_id":"' .. model ..
    '","p_prompt":"bench prompt","p_settings":{},"p_idempotency_key":"' .. uuid4() ..
    '","p_request_hash":"' .. uuid4() .. '"}')
end
function response(status, headers, body)
  if status ~= 200 then
    print("unexpected " .. status .. ": " .. body)
    wrk.thread:stop()
  end
  local job = string.match(body, '"job_id"%%s*:%%s*"([%%x-]+)"')
  if job then table.insert(pending, job) end
end
"""


def http_round_trips(base: str, key: str, *, users: list[str], model: str, duration: int,
                     connections: int) -> float:
    """Round trips per second with wrk (a C load generator: it takes little CPU)."""
    prefix = "/" + base.split("/", 3)[3] if base.count("/") > 2 else ""
    host = base[: len(base) - len(prefix)]
    lua = WRK_SCRIPT % {"users": ", ".join(f'"{u}"' for u in users), "model": model,
                        "prefix": prefix, "key": key}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua)
    result = subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{duration}s", "-s", script.name,
         host + "/"], capture_output=True, text=True)
    os.unlink(script.name)
    if result.returncode != 0 or "unexpected" in result.stdout or "Non-2xx" in result.stdout:
        raise SystemExit(f"wrk against {base} failed:\n{result.stdout}{result.stderr}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", result.stdout).group(1))  # type: ignore[union-attr]
    return rate / 2


def verify(config: StackConfig) -> int:
    with psycopg.connect(config.superuser_db_url, autocommit=True) as conn:
        return len(conn.execute("select * from public.verify_ledger()").fetchall())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    with scratch_stack() as (stack, _):
        stack.up(migrations_dir=find_project(REPO).migrations_dir)
        config = stack.config
        users, model = prepare(config, args.clients)
        with direct_postgrest(config) as direct:
            gateway = f"{config.api_url}/rest/v1"
            key = config.service_role_key
            print(f"create_video_job + fail_video_job round trips/s, {args.clients} clients, "
                  f"{args.duration} s each, best of {args.rounds} alternating rounds")
            cases: dict[str, dict[str, float]] = {}
            for label, hot in (("distinct users", False), ("one hot user", True)):
                targets = users[:1] if hot else users
                run = {"users": targets, "model": model, "connections": args.clients}
                http_round_trips(direct, key, duration=2, **run)  # warm-up
                paths: dict[str, Callable[[], float]] = {
                    "pgbench": partial(pgbench, config, clients=args.clients,
                                       duration=args.duration, hot=hot, model=model),
                    "postgrest": partial(http_round_trips, direct, key,
                                         duration=args.duration, **run),
                    "gateway": partial(http_round_trips, gateway, key,
                                       duration=args.duration, **run)}
                rounds: dict[str, list[float]] = {name: [] for name in paths}
                for number in range(args.rounds):
                    order = list(paths) if number % 2 == 0 else list(reversed(paths))
                    for name in order:
                        rounds[name].append(round(paths[name](), 1))
                pgbench_rate, direct_rate, gateway_rate = (
                    max(rounds[name]) for name in ("pgbench", "postgrest", "gateway"))
                print(f"  {label} (rounds: {rounds}):")
                print(f"    pgbench (direct SQL):     {pgbench_rate:8.0f}")
                print(f"    PostgREST (TCP):          {direct_rate:8.0f}  "
                      f"({100 * direct_rate / pgbench_rate:.0f} % of pgbench)")
                print(f"    gateway -> PostgREST:     {gateway_rate:8.0f}  "
                      f"({100 * gateway_rate / pgbench_rate:.0f} % of pgbench)")
                cases["hot_user" if hot else "distinct_users"] = {
                    "pgbench": round(pgbench_rate, 1), "postgrest": round(direct_rate, 1),
                    "gateway": round(gateway_rate, 1), "rounds": rounds,
                    "postgrest_vs_pgbench": round(direct_rate / pgbench_rate, 3),
                    "gateway_vs_pgbench": round(gateway_rate / pgbench_rate, 3)}
        violations = verify(config)
        print(f"ledger invariants violated afterwards: {violations}")
        with psycopg.connect(config.superuser_db_url) as conn:
            version = conn.execute("show server_version").fetchone()
    ratio = cases["distinct_users"]["postgrest_vs_pgbench"]
    write_result("credits", {"clients": args.clients, "duration_s": args.duration,
                             "rounds": args.rounds,
                             "unit": "create_video_job + fail_video_job round trips/s",
                             "postgres": version[0] if version else None,
                             "cases": cases, "ledger_violations": violations},
                 ratio=ratio, ratio_of="PostgREST / pgbench, distinct users",
                 goal=">= 0.50", goal_met=ratio >= 0.50)


if __name__ == "__main__":
    main()
