"""Compiled rules and budgets: what a :class:`~policies.engine.Policy` evaluates."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from agent.actions import Action, TypeText
from policies.conditions import Condition, Probe
from policies.decision import Effect, PolicyContext


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule ready to test: every condition must hold for it to match.

    ``secret`` marks text that a matching rule saw as secret, whatever the
    rule's effect, so that the audit log stores it masked.
    """

    id: str
    effect: Effect
    reason: str
    conditions: tuple[Condition, ...]
    secret: bool = False

    def matches(self, probe: Probe) -> bool:
        """Whether the rule applies to ``probe`` (may raise: callers fail closed)."""
        return all(condition.test(probe) for condition in self.conditions)

    def reason_for(self, context: PolicyContext) -> str:
        """The reason, with context placeholders such as ``{window_title}`` filled in."""
        if "{" not in self.reason:
            return self.reason
        try:
            return self.reason.format_map(_reason_fields(context))
        except (ValueError, TypeError, KeyError, IndexError):
            # A format spec that does not fit the value (``{window_title:.2f}``)
            # must not break a decision; the template still says what happened.
            return self.reason


def _reason_fields(context: PolicyContext) -> dict[str, Any]:
    triage = context.triage
    return {
        "window_title": context.window_title,
        "injection_risk": context.injection_risk,
        "injection_reason": context.injection_reason or "no detail",
        "triage_category": triage.category if triage else "none",
        "triage_risk": triage.risk if triage else "none",
    }


@dataclass(frozen=True, slots=True)
class BudgetCheck:
    """One budget measured against one action; ``exceeded`` means deny."""

    rule_id: str
    exceeded: bool
    why: str


@dataclass(frozen=True, slots=True)
class Budgets:
    """Per-session limits; ``None`` means no limit.  Each has a rule id ``budget.*``."""

    max_steps: int | None = None
    max_wall_time_s: float | None = None
    max_actions_per_minute: int | None = None
    max_typed_chars: int | None = None

    def rule_ids(self) -> tuple[str, ...]:
        """The budget rule ids this policy can produce."""
        limits = {
            "budget.steps": self.max_steps,
            "budget.wall_time": self.max_wall_time_s,
            "budget.actions_per_minute": self.max_actions_per_minute,
            "budget.typed_chars": self.max_typed_chars,
        }
        return tuple(rule_id for rule_id, limit in limits.items() if limit is not None)

    def check(self, action: Action, context: PolicyContext) -> list[BudgetCheck]:
        """Every defined budget, measured as if ``action`` ran now."""
        checks = []
        if self.max_steps is not None:
            checks.append(_steps(self.max_steps, context))
        if self.max_wall_time_s is not None:
            checks.append(_wall_time(self.max_wall_time_s, context))
        if self.max_actions_per_minute is not None:
            checks.append(_rate(self.max_actions_per_minute, context))
        if self.max_typed_chars is not None and isinstance(action, TypeText):
            checks.append(_typed(self.max_typed_chars, context, len(action.text)))
        return checks


def _steps(limit: int, context: PolicyContext) -> BudgetCheck:
    step = context.step_index + 1
    over = step > limit
    verdict = "exceeds" if over else "is within"
    return BudgetCheck("budget.steps", over, f"step {step} {verdict} the budget of {limit} steps")


def _wall_time(limit: float, context: PolicyContext) -> BudgetCheck:
    spent = context.elapsed_s
    over = spent > limit
    return BudgetCheck("budget.wall_time", over,
                       f"{spent:.0f} s spent {'exceeds' if over else 'is within'} "
                       f"the budget of {limit:g} s")


def _rate(limit: int, context: PolicyContext) -> BudgetCheck:
    now = context.now if context.now is not None else time.monotonic()
    recent = sum(1 for t in context.recent_action_times if now - t < 60.0)
    over = recent + 1 > limit
    return BudgetCheck("budget.actions_per_minute", over,
                       f"{recent + 1} actions in the last minute "
                       f"{'exceeds' if over else 'is within'} the budget of {limit}")


def _typed(limit: int, context: PolicyContext, adding: int) -> BudgetCheck:
    total = context.typed_chars + adding
    over = total > limit
    return BudgetCheck("budget.typed_chars", over,
                       f"{total} typed characters {'exceeds' if over else 'is within'} "
                       f"the budget of {limit}")
