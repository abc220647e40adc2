"""The planner benchmark's statistics: one row per (model, step budget), from trials.

Pure functions over plain values (no I/O), so every figure can be checked by
hand.  A *trial* is one run of one task by one model under one step budget
(``--trials k`` gives k per task); its outcome is the last attempt's status.

- **success**: the task's checks held (an infeasible task: the planner gave up);
- **infrastructure errors** (status ``error``: a sandbox or engine failed) are
  counted apart and left out of every rate — they say nothing about the model;
- **success rate** with a 95% Wilson score interval (good at small n and at
  rates near 0 or 1, where the normal approximation gives impossible bounds);
- **pass@k**: the unbiased estimator of Chen et al. (2021),
  ``1 - C(n-c, k) / C(n, k)`` per task with n trials and c successes, averaged
  over tasks — the chance that at least one of k tries succeeds;
- **false-success rate**: of the trials where the planner said it was done,
  the share whose checks disagreed (claims the user could not trust);
- p50/p90 are linear-interpolation percentiles (numpy's default method).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Z_95 = 1.959963984540054  # the standard normal quantile for a two-sided 95% interval
SUCCESS_STATUSES = frozenset({"passed", "flaky"})
INFRA_STATUSES = frozenset({"error"})
UNSCORED_STATUSES = frozenset({"skipped"})


@dataclass(frozen=True, slots=True)
class Trial:
    """One run of one task by one model under one budget (what the table is made of)."""

    model: str
    budget: int  # the step budget; 0 when each task kept its own max_steps
    task: str
    status: str
    claimed: str = ""  # "done", "failed" (gave up) or "" (never finished)
    steps: int = 0
    wall_s: float = 0.0
    model_s: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    approvals_asked: int = 0
    approvals_denied: int = 0
    cache_hits: int = 0

    @property
    def scored(self) -> bool:
        return self.status not in INFRA_STATUSES | UNSCORED_STATUSES

    @property
    def succeeded(self) -> bool:
        return self.status in SUCCESS_STATUSES

    @property
    def false_success(self) -> bool:
        return self.claimed == "done" and self.scored and not self.succeeded


@dataclass(frozen=True, slots=True)
class Row:
    """The results of one model under one budget."""

    model: str
    budget: int
    tasks: int
    trials: int  # scored trials (infrastructure errors and skips left out)
    successes: int
    success_rate: float | None
    wilson_low: float | None
    wilson_high: float | None
    k: int
    pass_at_k: float | None
    median_steps: float | None
    wall_p50_s: float | None
    wall_p90_s: float | None
    model_p50_s: float | None
    model_p90_s: float | None
    tokens_in: int
    tokens_out: int
    cost_usd: float
    cost_per_task_usd: float | None
    cost_per_success_usd: float | None
    approvals_asked: int
    approvals_denied: int
    claimed_done: int
    false_successes: int
    false_success_rate: float | None
    infra_errors: int
    cache_hits: int


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval for ``successes`` out of ``n`` (n > 0)."""
    if n <= 0:
        raise ValueError("the Wilson interval needs at least one trial")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be within 0..{n}, not {successes}")
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one task: n trials, c of them successes, k tries allowed."""
    if not 0 < k <= n:
        raise ValueError(f"pass@k needs 1 <= k <= n, not k={k}, n={n}")
    if not 0 <= c <= n:
        raise ValueError(f"successes must be within 0..{n}, not {c}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation between closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def build_rows(trials: Iterable[Trial], k: int | None = None) -> list[Row]:
    """One row per (model, budget), in first-seen order; ``k`` defaults to the trials per task."""
    groups: dict[tuple[str, int], list[Trial]] = {}
    for trial in trials:
        groups.setdefault((trial.model, trial.budget), []).append(trial)
    return [build_row(model, budget, group, k) for (model, budget), group in groups.items()]


def build_row(model: str, budget: int, trials: Sequence[Trial], k: int | None = None) -> Row:
    scored = [t for t in trials if t.scored]
    successes = sum(t.succeeded for t in scored)
    per_task = _per_task(scored)
    k_used = k or (min(len(v) for v in per_task.values()) if per_task else 1)
    claimed = [t for t in scored if t.claimed == "done"]
    false = sum(t.false_success for t in claimed)
    cost = sum(t.cost_usd for t in trials)
    low, high = wilson_interval(successes, len(scored)) if scored else (None, None)
    return Row(
        model=model, budget=budget, tasks=len(per_task), trials=len(scored),
        successes=successes, success_rate=_ratio(successes, len(scored)),
        wilson_low=low, wilson_high=high, k=k_used,
        pass_at_k=_mean_pass_at_k(per_task, k_used),
        median_steps=percentile([t.steps for t in scored], 50),
        wall_p50_s=percentile([t.wall_s for t in scored], 50),
        wall_p90_s=percentile([t.wall_s for t in scored], 90),
        model_p50_s=percentile([t.model_s for t in scored], 50),
        model_p90_s=percentile([t.model_s for t in scored], 90),
        tokens_in=sum(t.tokens_in for t in trials), tokens_out=sum(t.tokens_out for t in trials),
        cost_usd=cost, cost_per_task_usd=_ratio(cost, len(scored)),
        cost_per_success_usd=_ratio(cost, successes),
        approvals_asked=sum(t.approvals_asked for t in trials),
        approvals_denied=sum(t.approvals_denied for t in trials),
        claimed_done=len(claimed), false_successes=false,
        false_success_rate=_ratio(false, len(claimed)),
        infra_errors=sum(t.status in INFRA_STATUSES for t in trials),
        cache_hits=sum(t.cache_hits for t in trials))


def _per_task(trials: Iterable[Trial]) -> dict[str, list[Trial]]:
    tasks: dict[str, list[Trial]] = {}
    for trial in trials:
        tasks.setdefault(trial.task, []).append(trial)
    return tasks


def _mean_pass_at_k(per_task: dict[str, list[Trial]], k: int) -> float | None:
    values = [pass_at_k(len(ts), sum(t.succeeded for t in ts), k)
              for ts in per_task.values() if len(ts) >= k]
    return sum(values) / len(values) if values else None


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None
