"""What a goal cost: a Planner wrapper that meters the model, and the attempt's benchmark fields.

:class:`MeteredPlanner` sits around the goal planner (outside the plan cache,
so a cached turn costs no model time): it counts turns that reached the
model, the seconds spent waiting for them, tokens and dollars, and remembers
how the planner finished (``done`` or ``failed``: a claim the checks then
confirm or not — the benchmark's false successes).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from agent.planners.base import ActionOutcome, Observation, Planner, Turn
from agent.suites.plan_cache import CachedPlanner, CacheMode, PlanStore

if TYPE_CHECKING:
    from agent.suites.results import AttemptResult
    from audit.log import AuditLog


@dataclass(slots=True)
class Meter:
    turns: int = 0
    model_s: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    claimed: str = ""


class MeteredPlanner:
    """A :class:`Planner` that passes every turn through and keeps a :class:`Meter`."""

    def __init__(self, inner: Planner, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = inner
        self.name = inner.name
        self.model = inner.model
        self.meter = Meter()
        self._clock = clock

    def next_turn(self, observation: Observation, outcomes: list[ActionOutcome]) -> Turn:
        started = self._clock()
        turn = self.inner.next_turn(observation, outcomes)
        meter = self.meter
        meter.turns += 1
        meter.model_s += self._clock() - started
        meter.tokens_in += turn.usage.input_tokens + turn.usage.cache_read_tokens \
            + turn.usage.cache_write_tokens
        meter.tokens_out += turn.usage.output_tokens
        meter.cost_usd += turn.usage.cost_usd
        if turn.finished is not None:
            meter.claimed = turn.finished
        return turn

    @property
    def cache(self) -> CachedPlanner | None:
        return self.inner if isinstance(self.inner, CachedPlanner) else None


def metered_goal_planner(live: Planner, cache: str, cache_dir: Path,
                         policy_sha256: str) -> MeteredPlanner:
    """The goal planner as an attempt uses it: metered, behind the plan cache unless off."""
    if cache == "off":
        return MeteredPlanner(live)
    mode = cast(CacheMode, cache)
    return MeteredPlanner(CachedPlanner(live, PlanStore(cache_dir), mode=mode,
                                        policy_sha256=policy_sha256))


def record_goal_metrics(result: AttemptResult, planner: Planner | None, log: AuditLog,
                        session_id: str) -> None:
    """Copy the goal's meter, cache hits and the session's approvals into ``result``."""
    if session_id:
        # Counted from the steps: with no approver an ask is denied without an approval row.
        asked = [s for s in log.steps(session_id) if s.decision_effect == "ask"]
        result.approvals_asked = len(asked)
        result.approvals_denied = sum(s.status != "done" for s in asked)
    if not isinstance(planner, MeteredPlanner):
        return
    meter = planner.meter
    result.model = planner.model
    result.claimed = meter.claimed
    result.model_time_s = round(meter.model_s, 3)
    result.tokens_in, result.tokens_out = meter.tokens_in, meter.tokens_out
    result.cost_usd = round(meter.cost_usd, 6)
    cache = planner.cache
    result.model_requests = meter.turns - (cache.stats.hits if cache else 0)
    if cache is not None:
        result.cache_hits = cache.stats.hits
        if result.status == "passed":
            cache.commit()
