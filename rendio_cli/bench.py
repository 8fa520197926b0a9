"""`rendio bench NAME|all`: the benchmarks of bench/, from a checkout of the repository.

The scripts in bench/ are the implementations (each runs a throw-away stack of its own,
writes bench/results/NAME.json and prints its ratio against the baseline measured in the
same run); this command runs them one after the other with the same Python, then draws
bench/results/summary.png (bench/chart.py, matplotlib: the `bench` extra). bench/ is not
part of the wheel, so an installed `rendio` without a checkout says so and exits 1.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from . import _console


class Benchmark(StrEnum):
    stack = "stack"
    credits = "credits"
    api = "api"
    gateway = "gateway"
    pipeline = "pipeline"
    sweeper = "sweeper"
    all = "all"


# NAME -> (script, its arguments, its arguments with --quick).
SCRIPTS: dict[str, tuple[str, list[str], list[str]]] = {
    "stack": ("stack_bench.py", ["--only", "stack"], ["--only", "stack"]),
    "credits": ("db_bench.py", [], ["--duration", "2", "--rounds", "1"]),
    "api": ("api_bench.py", [], ["--duration", "1"]),
    "gateway": ("stack_bench.py", ["--only", "gateway"],
                ["--only", "gateway", "--duration", "2", "--rounds", "1"]),
    "pipeline": ("pipeline_bench.py", [], ["--jobs", "12", "--runs", "1"]),
    "sweeper": ("sweeper_bench.py", [], ["--jobs", "5000", "--archived", "5000", "--runs", "1"]),
}
NEEDS_WRK = {"stack": False, "credits": True, "api": False, "gateway": True,
             "pipeline": False, "sweeper": False}


def bench_dir() -> Path | None:
    """bench/ of the checkout this CLI runs from (an editable install), else of the
    current directory; None when neither has the benchmarks."""
    for root in (Path(__file__).resolve().parents[1], Path.cwd()):
        candidate = root / "bench"
        if (candidate / "_common.py").is_file():
            return candidate
    return None


def bench(
    name: Annotated[Benchmark, typer.Argument(
        metavar="NAME", help="The benchmark to run, or all of them.",
        show_default=False)],
    quick: Annotated[bool, typer.Option(
        "--quick", help="Short runs to check that the benchmarks work (figures not "
        "comparable with the recorded ones; the results are still written).")] = False,
    chart: Annotated[bool, typer.Option(
        "--chart/--no-chart", help="Draw bench/results/summary.png afterwards.")] = True,
) -> None:
    """Run a benchmark (or all) from a checkout: each starts a throw-away stack, writes
    bench/results/NAME.json and prints its ratio against the baseline measured in the
    same run; then bench/results/summary.png is drawn. `credits` and `gateway` need wrk.

    \b
    Examples:
      rendio bench gateway
      rendio bench all
      rendio bench pipeline --quick --no-chart
    """
    folder = bench_dir()
    if folder is None:
        _console.error("benchmarks run from a checkout of the repository (bench/ not found)")
        raise typer.Exit(1)
    names = [b.value for b in Benchmark if b is not Benchmark.all] \
        if name is Benchmark.all else [name.value]
    if any(NEEDS_WRK[n] for n in names) and shutil.which("wrk") is None:
        _console.error("wrk not found: install it (Debian package `wrk`: apt-get install wrk)")
        raise typer.Exit(1)
    for benchmark in names:
        script, arguments, quick_arguments = SCRIPTS[benchmark]
        _console.info(f"== rendio bench {benchmark}: bench/{script}")
        argv = [sys.executable, str(folder / script), *(quick_arguments if quick else arguments)]
        if subprocess.run(argv, cwd=folder.parent).returncode != 0:
            _console.error(f"benchmark {benchmark} failed (bench/{script})")
            raise typer.Exit(1)
    if chart:
        if importlib.util.find_spec("matplotlib") is None:
            _console.warning("no chart: matplotlib is missing (pip install -e '.[bench]')")
        elif subprocess.run([sys.executable, str(folder / "chart.py")],
                            cwd=folder.parent).returncode != 0:
            _console.error("the chart could not be drawn (bench/chart.py)")
            raise typer.Exit(1)
