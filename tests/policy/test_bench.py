"""The benchmark reports its figures in the shared shape (no timing assertions here)."""

from __future__ import annotations

from policies.bench import measure_decisions, run_benchmarks
from policies.engine import load_profile


def test_run_benchmarks_reports_named_figures_with_targets() -> None:
    figures = run_benchmarks(decisions=300)

    assert [f["name"] for f in figures] == [
        "policy.decide.p50", "policy.decide.p95", "policy.load_profile",
    ]
    for figure in figures:
        assert set(figure) == {"name", "value", "unit", "target"}
        assert figure["unit"] == "ms"
        assert figure["value"] > 0
    assert figures[0]["target"] == 0.2


def test_measure_decisions_times_every_decision() -> None:
    assert len(measure_decisions(load_profile("default"), 50)) == 50


def test_the_shell_line_benchmark_reports_itself_beside_the_plain_baseline() -> None:
    from policies.bench_shell import run_benchmarks as shell_benchmarks
    from policies.bench_shell import session

    figures = shell_benchmarks(decisions=400)

    assert [f["name"] for f in figures] == [
        "policy.decide_with_shell_line.p50", "policy.decide_with_shell_line.p99",
        "policy.decide_plain_baseline.p50", "policy.decide_plain_baseline.p99",
    ]
    assert [f.get("target") for f in figures] == [1.0, 5.0, None, None]
    assert all(f["value"] > 0 for f in figures)
    kinds = {a.type for a in session(400)}
    assert kinds == {"type", "key"}
