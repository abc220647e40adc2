"""Compiled rules and budgets: what a :class:`~policies.engine.Policy` evaluates."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from policies.conditions import Condition, Probe
from policies.decision import Effect, PolicyContext
from sandbox.actions import Action, TypeText


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
        except Exception:
            # A format spec that does not fit the value (``{window_title:.2f}``)
            # or a malformed context must not break a decision; the template
            # still says what happened.
            return self.reason


def _reason_fields(context: PolicyContext) -> dict[str, Any]:
    triage = context.triage
    return {
        "window_title": context.window_title,
        "injection_risk": context.injection_risk,
        "injection_reason": context.injection_reason or "no detail",
        "triage_category": triage.category if triage else "none",
        "triage_risk": triage.risk if triage else "none",
        "typed_from_screen": (context.typed_from_screen.describe()
                              if context.typed_from_screen else "nothing"),
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
        return tuple(rule_id for rule_id, field, _ in _MEASURES if getattr(self, field) is not None)

    def check(self, action: Action, context: PolicyContext) -> list[BudgetCheck]:
        """Every defined budget that applies, measured as if ``action`` ran now.

        A budget that cannot be measured (a malformed context) counts as
        exceeded: budgets fail closed like rules.
        """
        checks = []
        for rule_id, field, measure in _MEASURES:
            limit = getattr(self, field)
            if limit is None:
                continue
            try:
                check = measure(limit, context, action)
            except Exception as exc:
                check = BudgetCheck(rule_id, True, f"could not be measured "
                                    f"({type(exc).__name__}: {exc}); denied to fail closed")
            if check is not None:
                checks.append(check)
        return checks


def _verdict(over: bool) -> str:
    return "exceeds" if over else "is within"


def _steps(limit: float, context: PolicyContext, action: Action) -> BudgetCheck:
    step = context.step_index + 1
    over = step > limit
    return BudgetCheck("budget.steps", over,
                       f"step {step} {_verdict(over)} the budget of {limit:g} steps")


def _wall_time(limit: float, context: PolicyContext, action: Action) -> BudgetCheck:
    spent = context.elapsed_s
    over = spent > limit
    return BudgetCheck("budget.wall_time", over,
                       f"{spent:.0f} s spent {_verdict(over)} the budget of {limit:g} s")


def _rate(limit: float, context: PolicyContext, action: Action) -> BudgetCheck:
    now = context.now if context.now is not None else time.monotonic()
    recent = sum(1 for t in context.recent_action_times if now - t < 60.0)
    over = recent + 1 > limit
    return BudgetCheck("budget.actions_per_minute", over,
                       f"{recent + 1} actions in the last minute {_verdict(over)} "
                       f"the budget of {limit:g}")


def _typed(limit: float, context: PolicyContext, action: Action) -> BudgetCheck | None:
    if not isinstance(action, TypeText):
        return None  # only typing spends this budget
    total = context.typed_chars + len(action.text)
    over = total > limit
    return BudgetCheck("budget.typed_chars", over,
                       f"{total} typed characters {_verdict(over)} the budget of {limit:g}")


_Measure = Callable[[float, PolicyContext, Action], BudgetCheck | None]
_MEASURES: tuple[tuple[str, str, _Measure], ...] = (
    ("budget.steps", "max_steps", _steps),
    ("budget.wall_time", "max_wall_time_s", _wall_time),
    ("budget.actions_per_minute", "max_actions_per_minute", _rate),
    ("budget.typed_chars", "max_typed_chars", _typed),
)
