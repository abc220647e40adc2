"""The policy engine: decide allow, deny or ask for one action in its context.

Evaluation, in order of precedence:

1. A budget that the action would exceed denies (rule id ``budget.*``).
2. A rule whose conditions raise denies, naming the rule (fail closed).
3. A matching ``deny`` rule denies.
4. A matching ``ask`` rule asks — unless every matching ask rule is in
   ``PolicyContext.session_grants``, in which case the action is allowed
   ("granted for session").  Grants never lift a deny.
5. A matching ``allow`` rule allows.
6. Nothing matched: deny with **empty** ``rule_ids`` and the reason
   "no rule allows this action (default deny)".

All rules are evaluated every time, so the decision does not depend on rule
order, and ``secret`` is set whenever any matching rule marks its text secret.
``rule_ids`` are sorted, and the reason joins the deciding rules' reasons in
that order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path

from policies.build import compile_source
from policies.conditions import Probe, Region
from policies.decision import Decision, Effect, PolicyContext
from policies.errors import PolicyError, UnknownProfileError
from policies.explanation import ConditionTrace, Explanation, RuleTrace
from policies.network import NetworkRules
from policies.rules import BudgetCheck, Budgets, Rule
from policies.source import read_source
from sandbox.actions import Action
from sandbox.secrets import has_placeholder

DEFAULT_DENY_REASON = "no rule allows this action (default deny)"
_PROFILES = resources.files("policies").joinpath("profiles")


class Policy:
    """A loaded policy: its rules, budgets, name and the sha256 of its canonical bytes."""

    def __init__(self, *, name: str, sha256: str, rules: Sequence[Rule],
                 budgets: Budgets | None = None, regions: dict[str, Region] | None = None,
                 description: str = "", source: str = "",
                 network: NetworkRules | None = None) -> None:
        ids = [rule.id for rule in rules]
        if len(set(ids)) != len(ids):
            raise ValueError("rule ids must be unique")
        self.name = name
        self.sha256 = sha256
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.budgets = budgets or Budgets()
        self.regions: dict[str, Region] = dict(regions or {})
        self.description = description
        self.source = source
        self.network = network or NetworkRules()

    def __repr__(self) -> str:
        return f"Policy(name={self.name!r}, sha256={self.sha256[:12]!r}, rules={len(self.rules)})"

    def with_rules(self, rules: Sequence[Rule]) -> Policy:
        """The same policy (name, hash, budgets) with other rules — for tools and tests."""
        return Policy(name=self.name, sha256=self.sha256, rules=rules, budgets=self.budgets,
                      regions=self.regions, description=self.description, source=self.source,
                      network=self.network)

    def rule_ids(self) -> tuple[str, ...]:
        """Every id a decision of this policy can name, budgets first."""
        return (*self.budgets.rule_ids(), *(rule.id for rule in self.rules))

    def rate_wait_s(self, context: PolicyContext) -> float:
        """How long the loop should wait before deciding the next action, so that
        ``max_actions_per_minute`` allows it: 0 when it fits now, and 0 when the wait would
        pass ``max_rate_wait_s`` (the budget then denies the action)."""
        wait = self.budgets.rate_wait_s(context)
        return wait if wait <= self.budgets.max_rate_wait_s else 0.0

    def decide(self, action: Action, context: PolicyContext) -> Decision:
        """Allow, deny or ask for ``action``; never raises for a rule's failure."""
        probe = Probe(action, context)
        matched: list[Rule] = []
        failed: list[tuple[Rule, str]] = []
        for rule in self.rules:
            try:
                if rule.matches(probe):
                    matched.append(rule)
            except Exception as exc:  # fail closed: a broken rule must deny, not crash the loop
                failed.append((rule, _describe_failure(exc)))
        verdict = self._verdict(self.budgets.check(action, context), matched, failed, context)
        if has_placeholder(action) and not verdict.secret:
            # A placeholder stands for a secret: judged as typed, stored masked.
            verdict = dataclasses.replace(verdict, secret=True)
        if any(rule.checkpoint for rule in matched):
            verdict = dataclasses.replace(verdict, checkpoint=True)
        return verdict

    def explain(self, action: Action, context: PolicyContext) -> Explanation:
        """The decision plus every budget and rule, matched or not, and why."""
        probe = Probe(action, context)
        budget_traces = [_budget_trace(check) for check in self.budgets.check(action, context)]
        rule_traces = [_rule_trace(rule, probe) for rule in self.rules]
        return Explanation(self.decide(action, context), (*budget_traces, *rule_traces))

    def _verdict(self, budgets: list[BudgetCheck], matched: list[Rule],
                 failed: list[tuple[Rule, str]], context: PolicyContext) -> Decision:
        secret = any(rule.secret for rule in matched) or any(rule.secret for rule, _ in failed)
        denials = [(b.rule_id, f"budget exceeded: {b.why}") for b in budgets if b.exceeded]
        denials += [(rule.id, _failure_reason(rule, error)) for rule, error in failed]
        denials += [(r.id, r.reason_for(context)) for r in matched if r.effect == "deny"]
        if denials:
            return self._decision("deny", denials, secret)
        asks = [r for r in matched if r.effect == "ask"]
        grants = context.session_grants
        pending = [(r.id, r.reason_for(context)) for r in asks if r.id not in grants]
        if pending:
            return self._decision("ask", pending, secret)
        if asks:
            granted = [(r.id, r.reason_for(context)) for r in asks]
            return self._decision("allow", granted, secret, prefix="granted for session: ")
        allows = [(r.id, r.reason_for(context)) for r in matched if r.effect == "allow"]
        if allows:
            return self._decision("allow", allows, secret)
        return Decision("deny", (), DEFAULT_DENY_REASON, self.sha256, secret)

    def _decision(self, effect: Effect, deciding: Iterable[tuple[str, str]], secret: bool,
                  prefix: str = "") -> Decision:
        ordered = sorted(deciding)
        ids = tuple(rule_id for rule_id, _ in ordered)
        reasons = "; ".join(_unique(reason for _, reason in ordered))
        if prefix:
            reasons = f"{prefix}{', '.join(ids)} ({reasons})"
        return Decision(effect, ids, reasons, self.sha256, secret)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _describe_failure(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


def _failure_reason(rule: Rule, error: str) -> str:
    return f"rule {rule.id} could not be evaluated ({error}); denied to fail closed"


def _budget_trace(check: BudgetCheck) -> RuleTrace:
    return RuleTrace(check.rule_id, "deny", "session budget", check.exceeded,
                     (ConditionTrace(check.exceeded, check.why),))


def _rule_trace(rule: Rule, probe: Probe) -> RuleTrace:
    granted = rule.effect == "ask" and rule.id in probe.context.session_grants
    traces = []
    try:
        for condition in rule.conditions:
            traces.append(ConditionTrace(condition.test(probe), condition.why(probe)))
    except Exception as exc:  # mirrors decide(): the rule fails closed
        return RuleTrace(rule.id, rule.effect, rule.reason, False, tuple(traces),
                         error=_describe_failure(exc))
    matched = all(trace.held for trace in traces)
    reason = rule.reason_for(probe.context) if matched else rule.reason
    return RuleTrace(rule.id, rule.effect, reason, matched, tuple(traces),
                     granted=granted and matched)


def parse_policy(raw: bytes, *, file: str, default_name: str) -> Policy:
    """Build a policy from the bytes of a policy file (``file`` names it in errors)."""
    source = read_source(raw, file)
    compiled = compile_source(source, default_name)
    return Policy(name=compiled.name, sha256=source.sha256, rules=compiled.rules,
                  budgets=compiled.budgets, regions=compiled.regions,
                  description=compiled.description, source=file, network=compiled.network)


def load_policy(path: str | Path) -> Policy:
    """Load and validate a policy file; raises :class:`PolicyError` naming file, line, field."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        reason = f"cannot read: {exc.strerror or exc}"
        raise PolicyError.single(str(path), None, "", reason) from None
    return parse_policy(raw, file=str(path), default_name=path.stem)


def shipped_profiles() -> list[str]:
    """Names of the profiles that ship with deskhand, sorted."""
    names = (item.name for item in _PROFILES.iterdir())
    return sorted(name.removesuffix(".yaml") for name in names if name.endswith(".yaml"))


def load_profile(name: str) -> Policy:
    """Load a shipped profile (``default``, ``strict``, ``observe``) by name."""
    known = shipped_profiles()
    if name not in known:
        raise UnknownProfileError.single(
            name, None, "", f"unknown policy profile; shipped profiles: {', '.join(known)}"
        )
    resource = _PROFILES.joinpath(f"{name}.yaml")
    return parse_policy(resource.read_bytes(), file=str(resource), default_name=name)
