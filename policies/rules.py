"""Compiled rules and budgets: what a :class:`~policies.engine.Policy` evaluates."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
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
    checkpoint: bool = False

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
        "target_element": (context.target_element.describe()
                           if context.target_element else "none"),
    }


@dataclass(frozen=True, slots=True)
class BudgetCheck:
    """One budget measured against one action; ``exceeded`` means deny."""

    rule_id: str
    exceeded: bool
    why: str


RATE_WINDOW_S = 60.0
DEFAULT_MAX_RATE_WAIT_S = 60.0  # the window: by default a rate limit only ever waits


@dataclass(frozen=True, slots=True)
class Budgets:
    """Per-session limits; ``None`` means no limit.  Each has a rule id ``budget.*``."""

    max_steps: int | None = None
    max_wall_time_s: float | None = None
    max_actions_per_minute: int | None = None
    max_typed_chars: int | None = None
    max_rate_wait_s: float = DEFAULT_MAX_RATE_WAIT_S
    """``max_actions_per_minute`` throttles: the loop waits for the next action to fit, and
    the budget denies only an action that would have to wait longer than this."""

    def rule_ids(self) -> tuple[str, ...]:
        """The budget rule ids this policy can produce."""
        return tuple(rule_id for rule_id, field, _ in _MEASURES if getattr(self, field) is not None)

    def rate_wait_s(self, context: PolicyContext) -> float:
        """How long the next action must wait to fit ``max_actions_per_minute`` (0: now)."""
        if self.max_actions_per_minute is None:
            return 0.0
        return rate_wait_s(self.max_actions_per_minute, context.recent_action_times,
                           _now(context))

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
                check = measure(limit, context, action, self)
            except Exception as exc:
                check = BudgetCheck(rule_id, True, f"could not be measured "
                                    f"({type(exc).__name__}: {exc}); denied to fail closed")
            if check is not None:
                checks.append(check)
        return checks


def _verdict(over: bool) -> str:
    return "exceeds" if over else "is within"


def _steps(limit: float, context: PolicyContext, action: Action,
           budgets: Budgets) -> BudgetCheck:
    step = context.step_index + 1
    over = step > limit
    return BudgetCheck("budget.steps", over,
                       f"step {step} {_verdict(over)} the budget of {limit:g} steps")


def _wall_time(limit: float, context: PolicyContext, action: Action,
               budgets: Budgets) -> BudgetCheck:
    spent = context.elapsed_s
    over = spent > limit
    return BudgetCheck("budget.wall_time", over,
                       f"{spent:.0f} s spent {_verdict(over)} the budget of {limit:g} s")


def _now(context: PolicyContext) -> float:
    return context.now if context.now is not None else time.monotonic()


def rate_wait_s(limit: float, recent_times: Sequence[float], now: float) -> float:
    """Seconds until one more action fits ``limit`` actions per minute (0 when it fits now)."""
    inside = sorted(t for t in recent_times if now - t < RATE_WINDOW_S)
    excess = len(inside) + 1 - int(limit)
    if excess <= 0:
        return 0.0
    return max(0.0, inside[excess - 1] + RATE_WINDOW_S - now)


def _rate(limit: float, context: PolicyContext, action: Action,
          budgets: Budgets) -> BudgetCheck:
    """Over when the action would pass the limit if it ran now.  The loop waits for room
    first (:meth:`Budgets.rate_wait_s`), so this denies only when that wait passed the cap."""
    now = _now(context)
    recent = sum(1 for t in context.recent_action_times if now - t < RATE_WINDOW_S)
    over = recent + 1 > limit
    why = f"{recent + 1} actions in the last minute {_verdict(over)} the budget of {limit:g}"
    wait = rate_wait_s(limit, context.recent_action_times, now)
    if over and wait > budgets.max_rate_wait_s:
        why += (f"; waiting {wait:.1f} s for room would pass the cap of "
                f"{budgets.max_rate_wait_s:g} s")
    return BudgetCheck("budget.actions_per_minute", over, why)


def _typed(limit: float, context: PolicyContext, action: Action,
           budgets: Budgets) -> BudgetCheck | None:
    if not isinstance(action, TypeText):
        return None  # only typing spends this budget
    total = context.typed_chars + len(action.text)
    over = total > limit
    return BudgetCheck("budget.typed_chars", over,
                       f"{total} typed characters {_verdict(over)} the budget of {limit:g}")


_Measure = Callable[[float, PolicyContext, Action, Budgets], BudgetCheck | None]
_MEASURES: tuple[tuple[str, str, _Measure], ...] = (
    ("budget.steps", "max_steps", _steps),
    ("budget.wall_time", "max_wall_time_s", _wall_time),
    ("budget.actions_per_minute", "max_actions_per_minute", _rate),
    ("budget.typed_chars", "max_typed_chars", _typed),
)
