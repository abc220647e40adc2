"""Why a policy decided what it did: every rule and budget, matched or not."""

from __future__ import annotations

from dataclasses import dataclass

from policies.decision import Decision, Effect


@dataclass(frozen=True, slots=True)
class ConditionTrace:
    """One condition of a rule and whether it held."""

    held: bool
    why: str


@dataclass(frozen=True, slots=True)
class RuleTrace:
    """One rule (or budget) evaluated against the action.

    ``error`` is set when the rule raised; such a rule denies (fail closed).
    ``granted`` is true for an ``ask`` rule the human allowed for the session.
    """

    rule_id: str
    effect: Effect
    reason: str
    matched: bool
    conditions: tuple[ConditionTrace, ...]
    error: str | None = None
    granted: bool = False

    @property
    def status(self) -> str:
        if self.error is not None:
            return "ERROR"
        if not self.matched:
            return "-"
        return "granted" if self.granted else "MATCH"


@dataclass(frozen=True, slots=True)
class Explanation:
    """A decision together with the trace of every budget and rule behind it."""

    decision: Decision
    traces: tuple[RuleTrace, ...]

    @property
    def matched(self) -> tuple[RuleTrace, ...]:
        return tuple(t for t in self.traces if t.matched or t.error is not None)

    def render(self) -> str:
        """A plain-text report: the decision first, then each rule with its conditions."""
        decision = self.decision
        rules = ", ".join(decision.rule_ids) or "no rule"
        lines = [f"decision: {decision.effect.upper()} ({rules})", f"reason:   {decision.reason}"]
        if decision.secret:
            lines.append("secret:   typed text will be stored masked")
        lines.append("")
        for trace in self.traces:
            lines.append(f"[{trace.status:>7}] {trace.rule_id} ({trace.effect}): {trace.reason}")
            lines.extend(f"          {'+' if c.held else 'x'} {c.why}" for c in trace.conditions)
            if trace.error is not None:
                lines.append(f"          ! {trace.error}")
        return "\n".join(lines)
