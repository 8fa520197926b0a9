"""Draw bench/results/summary.png from bench/results/*.json (the last run of each).

One panel per benchmark found, each against the baseline measured in the same run and
its goal. Needs matplotlib (`pip install -e '.[bench]'`); `rendio bench` runs it.

    .venv/bin/python bench/chart.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (after the backend is chosen)
from matplotlib.axes import Axes  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
OUTPUT = RESULTS / "summary.png"
ORDER = ("stack", "gateway", "credits", "api", "pipeline", "sweeper")


def bars(ax: Axes, labels: list[str], values: list[float], colors: list[str],
         fmt: str = "{:.0f}") -> None:
    drawn = ax.bar(labels, values, color=colors)
    ax.bar_label(drawn, labels=[fmt.format(v) for v in values], fontsize=8)


def stack(ax: Axes, r: dict[str, Any]) -> None:
    bars(ax, ["first ever", "from stopped"], [r["dev_up_first_s"], r["dev_up_warm_s"]],
         ["#7a9cc6", "#2b5d9b"], "{:.2f} s")
    ax.axhline(3, color="grey", linestyle="--", linewidth=1)
    ax.text(1.45, 3, "goal from stopped: 3 s", fontsize=7, ha="right", va="bottom")
    ax.set_ylabel("seconds")
    cited = r["supabase_cli_cited"]["start_in_ci_s"]
    ax.set_title(f"stack: dev up; idle {r['rss_mib']:.0f} MiB RSS\n"
                 f"(Supabase CLI, cited: {cited[0]}–{cited[1]} s)", fontsize=9)


def gateway(ax: Axes, r: dict[str, Any]) -> None:
    bars(ax, ["direct to\nPostgREST", "through the\ngateway"],
         [r["direct_rps"], r["gateway_rps"]], ["#999999", "#2b5d9b"])
    ax.axhline(0.6 * r["direct_rps"], color="grey", linestyle="--", linewidth=1)
    ax.set_ylabel("req/s")
    ax.set_title(f"gateway: trivial RPC, {r['connections']} conn.\n"
                 f"{100 * r['ratio']['value']:.1f} % of direct (goal ≥ 60 %, dashed)",
                 fontsize=9)


def credits(ax: Axes, r: dict[str, Any]) -> None:
    cases = r["cases"]
    names = [("distinct_users", "16 distinct users"), ("hot_user", "one hot user")]
    width = 0.27
    for i, (key, color) in enumerate((("pgbench", "#999999"), ("postgrest", "#2b5d9b"),
                                      ("gateway", "#7a9cc6"))):
        values = [cases[case][key] for case, _ in names]
        drawn = ax.bar([x + (i - 1) * width for x in range(len(names))], values, width,
                       label=key, color=color)
        ax.bar_label(drawn, labels=[f"{v:.0f}" for v in values], fontsize=7)
    ax.set_xticks(range(len(names)), [label for _, label in names])
    ax.set_ylabel("create + fail round trips/s")
    ax.legend(fontsize=7)
    ax.set_title(f"credits: PostgREST {100 * r['ratio']['value']:.0f} % of pgbench\n"
                 "(distinct users; goal ≥ 50 %)", fontsize=9)


def api(ax: Axes, r: dict[str, Any]) -> None:
    levels = list(r["levels"])
    width = 0.4
    for i, (key, color) in enumerate((("rpc", "#999999"), ("api", "#2b5d9b"))):
        values = [r["levels"][level][key]["rps"] for level in levels]
        drawn = ax.bar([x + (i - 0.5) * width for x in range(len(levels))], values, width,
                       label="raw RPC" if key == "rpc" else "generate-video", color=color)
        ax.bar_label(drawn, labels=[f"{v:.0f}" for v in values], fontsize=7)
    ax.set_xticks(range(len(levels)), [f"{level} users" for level in levels])
    ax.set_ylabel("req/s")
    ax.legend(fontsize=7)
    ratios = ", ".join(f"{r['levels'][level]['api_vs_rpc_percent']['value']:.0f}"
                       for level in levels)
    ax.set_title(f"api: generate-video vs raw RPC\n({ratios} %)", fontsize=9)


def pipeline(ax: Axes, r: dict[str, Any]) -> None:
    for concurrency, table in r["by_concurrency"].items():
        workers = [row["workers"] for row in table["results"]]
        rates = [row["jobs_per_second"] for row in table["results"]]
        ax.plot(workers, rates, marker="o", label=f"{concurrency} step(s) in flight each")
    first = r["by_concurrency"][next(iter(r["by_concurrency"]))]["results"]
    one = first[0]["jobs_per_second"]
    ax.plot([1, 4], [one, 3 * one], color="grey", linestyle="--", linewidth=1,
            label="goal: 4 workers = 3× one")
    ax.set_xticks([1, 2, 4])
    ax.set_xlabel("workers")
    ax.set_ylabel("jobs/s")
    ax.legend(fontsize=7)
    ax.set_title(f"pipeline: 4 workers {r['ratio']['value']:.1f}× one\n"
                 f"(2 shared cores; goal ≥ 3×)", fontsize=9)


def sweeper(ax: Axes, r: dict[str, Any]) -> None:
    steps = r["steps"]
    # Short labels: five bars share one panel.
    short = {"fail_stuck_jobs": "fail\nstuck", "purge_expired_idempotency_keys": "purge\nkeys",
             "archive_old_jobs": "archive", "stray_job_files_1_hour": "strays\n1 hour",
             "stray_job_files_7_days": "strays\n7 days"}
    labels = [short.get(name, name.replace("_", "\n")) for name in steps]
    values = [1000 * step["median_seconds"] for step in steps.values()]
    bars(ax, labels, values, ["#2b5d9b"] * len(values), "{:.0f} ms")
    ax.axhline(1000 * r["goal_seconds"], color="grey", linestyle="--", linewidth=1)
    ax.set_yscale("log")
    ax.set_ylabel("ms (log)")
    ax.tick_params(axis="x", labelsize=7)
    ax.set_title(f"sweeper: {r['jobs'] // 1000}k finished jobs\n(goal ≤ 1 s a step, dashed)",
                 fontsize=9)


PANELS = {"stack": stack, "gateway": gateway, "credits": credits, "api": api,
          "pipeline": pipeline, "sweeper": sweeper}


def main() -> None:
    found = {name: json.loads((RESULTS / f"{name}.json").read_text())
             for name in ORDER if (RESULTS / f"{name}.json").is_file()}
    if not found:
        raise SystemExit("no results in bench/results/")
    columns = 3
    rows = (len(found) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(5 * columns, 4.2 * rows),
                                squeeze=False)
    flat = list(axes.flat)
    for ax, (name, result) in zip(flat, found.items(), strict=False):
        PANELS[name](ax, result)
        load = result.get("machine", {}).get("load_average_at_start")
        if load:  # the machine may be shared: each panel says how loaded it was
            ax.annotate(f"{str(result.get('measured_at', ''))[:16]}, load {load[0]:.1f}",
                        (1, 1.0), xycoords="axes fraction", ha="right", va="bottom",
                        fontsize=6, color="dimgrey", xytext=(0, 24),
                        textcoords="offset points")
    for ax in flat[len(found):]:
        ax.axis("off")
    dates = sorted(str(r.get("measured_at", "?"))[:10] for r in found.values())
    loads = [r["machine"]["load_average_at_start"][0] for r in found.values()
             if "load_average_at_start" in r.get("machine", {})]
    note = f"; load average 1 min at start {min(loads):.1f}–{max(loads):.1f}" if loads else ""
    figure.suptitle(f"Rendio benchmarks ({dates[0]} – {dates[-1]}, "
                    f"{found[next(iter(found))].get('machine', {}).get('cpus', '?')} cores"
                    f"{note})", fontsize=11)
    figure.tight_layout()
    figure.savefig(OUTPUT, dpi=110)
    print(f"wrote {OUTPUT.relative_to(RESULTS.parent.parent)}")


if __name__ == "__main__":
    main()
