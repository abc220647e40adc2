"""The benchmark's statistics, checked against figures computed by hand."""

from __future__ import annotations

import math

import pytest

from agent.suites.results_table import (
    Trial,
    build_row,
    build_rows,
    pass_at_k,
    percentile,
    wilson_interval,
)


def test_wilson_interval_of_3_in_5_matches_the_hand_computation() -> None:
    # p = 0.6, z = 1.96: centre = (0.6 + z²/10) / (1 + z²/5) = 0.98415 / 1.76829 = 0.55655;
    # half = z·sqrt(0.6·0.4/5 + z²/100) / 1.76829 = 1.96·0.29396 / 1.76829 = 0.32583.
    low, high = wilson_interval(3, 5)
    assert low == pytest.approx(0.2307, abs=1e-4)
    assert high == pytest.approx(0.8824, abs=1e-4)


def test_wilson_interval_stays_inside_0_and_1_at_the_extremes() -> None:
    low, high = wilson_interval(0, 4)
    assert low == 0.0
    assert high == pytest.approx(0.4899, abs=1e-4)
    low, high = wilson_interval(4, 4)
    assert high == 1.0
    assert low == pytest.approx(1 - 0.4899, abs=1e-4)


def test_wilson_interval_refuses_impossible_counts() -> None:
    with pytest.raises(ValueError, match="at least one trial"):
        wilson_interval(1, 0)
    with pytest.raises(ValueError, match=r"within 0\.\.5"):
        wilson_interval(6, 5)


def test_pass_at_k_is_the_unbiased_estimator() -> None:
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)  # 1 - C(3,2)/C(5,2)
    assert pass_at_k(5, 0, 3) == 0.0
    assert pass_at_k(5, 3, 3) == 1.0  # fewer than k failures: some k-subset has a success
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)  # pass@1 is the success rate
    with pytest.raises(ValueError, match="1 <= k <= n"):
        pass_at_k(2, 1, 3)


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert percentile([10.0, 20.0, 30.0, 40.0, 50.0], 90) == pytest.approx(46.0)
    assert percentile([], 50) is None


def _trial(task: str, status: str, claimed: str = "done", **extra: float) -> Trial:
    return Trial(model="m", budget=15, task=task, status=status, claimed=claimed,
                 **extra)  # type: ignore[arg-type]


def test_a_row_counts_false_successes_and_keeps_infrastructure_errors_apart() -> None:
    trials = [
        _trial("a", "passed", steps=4, wall_s=10, model_s=2, cost_usd=0.10, tokens_in=100),
        _trial("a", "failed", steps=9, wall_s=30, model_s=6, cost_usd=0.30, tokens_in=300),
        _trial("b", "failed", claimed="failed", steps=15, wall_s=20, model_s=4, cost_usd=0.20),
        _trial("b", "error", claimed="", cost_usd=0.0),
        _trial("c", "passed", steps=2, wall_s=40, model_s=8, cost_usd=0.40,
               approvals_asked=2, approvals_denied=1),
    ]
    row = build_row("m", 15, trials, k=1)
    assert (row.tasks, row.trials, row.successes, row.infra_errors) == (3, 4, 2, 1)
    assert row.success_rate == 0.5
    assert (row.claimed_done, row.false_successes) == (3, 1)  # a/failed said done
    assert row.false_success_rate == pytest.approx(1 / 3)
    assert (row.wilson_low, row.wilson_high) == pytest.approx(wilson_interval(2, 4))
    assert row.median_steps == pytest.approx(6.5)  # 2, 4, 9, 15
    assert row.wall_p50_s == pytest.approx(25.0)  # 10, 20, 30, 40
    assert row.wall_p90_s == pytest.approx(37.0)
    assert row.model_p50_s == pytest.approx(5.0)
    assert row.cost_usd == pytest.approx(1.0)
    assert row.cost_per_task_usd == pytest.approx(0.25)
    assert row.cost_per_success_usd == pytest.approx(0.5)
    assert (row.approvals_asked, row.approvals_denied, row.tokens_in) == (2, 1, 400)
    # pass@1 per task: a 1/2, b 0/1, c 1/1 -> mean 0.5
    assert row.pass_at_k == pytest.approx(0.5)


def test_rows_split_by_model_and_budget_in_first_seen_order() -> None:
    trials = [Trial("x", 15, "t", "passed"), Trial("y", 15, "t", "failed"),
              Trial("x", 50, "t", "passed"), Trial("x", 15, "u", "failed")]
    rows = build_rows(trials)
    assert [(r.model, r.budget, r.trials) for r in rows] == [("x", 15, 2), ("y", 15, 1),
                                                              ("x", 50, 1)]


def test_a_row_of_only_errors_has_no_rates() -> None:
    row = build_row("m", 0, [Trial("m", 0, "t", "error")])
    assert row.trials == 0
    assert row.success_rate is None
    assert row.wilson_low is None
    assert row.infra_errors == 1
    assert row.cost_per_success_usd is None
    assert math.isclose(row.cost_usd, 0.0)
