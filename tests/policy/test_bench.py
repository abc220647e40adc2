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
