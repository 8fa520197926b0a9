"""`rendio bench`: its help, and an unknown benchmark is a usage error. No benchmark runs
here (they take minutes and measure the machine; `rendio bench NAME` runs them)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from rendio_cli import bench
from rendio_cli.main import app


def test_bench_help_lists_the_benchmarks() -> None:
    result = CliRunner().invoke(app, ["bench", "--help"])
    assert result.exit_code == 0
    # The argument's choices, as Click lists them (the names alone also occur in prose).
    assert "stack|credits|api|gateway|pipeline|sweeper|all" in result.output


def test_an_unknown_benchmark_exits_2() -> None:
    result = CliRunner().invoke(app, ["bench", "nope"])
    assert result.exit_code == 2


def test_every_benchmark_has_its_script_in_the_checkout() -> None:
    folder = bench.bench_dir()
    assert folder is not None and folder == Path(__file__).resolve().parents[2] / "bench"
    names = {b.value for b in bench.Benchmark} - {"all"}
    assert set(bench.SCRIPTS) == names == set(bench.NEEDS_WRK)
    for script, _, _ in bench.SCRIPTS.values():
        assert (folder / script).is_file()


def test_without_a_checkout_it_says_so_in_one_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(bench, "bench_dir", lambda: None)
    result = CliRunner().invoke(app, ["bench", "stack"])
    assert result.exit_code == 1
    assert "checkout" in result.output
    assert len(result.output.strip().splitlines()) == 1
