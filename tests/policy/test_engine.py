"""How a policy decides: conditions, precedence, grants, budgets, failures, hashes, explain."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from policies import Policy, PolicyContext, Triage, load_policy, load_profile, parse_policy
from policies.conditions import Probe
from policies.engine import DEFAULT_DENY_REASON
from policies.rules import Rule
from sandbox.actions import Action, parse_action


def ctx(**fields: Any) -> PolicyContext:
    return PolicyContext(**{"screen_width": 1280, "screen_height": 800, "now": 100.0, **fields})


def act(**data: Any) -> Action:
    return parse_action(data)


def policy_from(text: str, name: str = "test.yaml") -> Policy:
    return parse_policy(text.encode(), file=name, default_name=name.removesuffix(".yaml"))


KEYS = policy_from("""
rules:
  - id: vt
    effect: deny
    reason: console switch
    match: {keys: [Control_L+Alt+F1]}
  - id: keys
    effect: allow
    reason: keys
    match: {actions: [key, hold_key]}
""")


@pytest.mark.parametrize(("keys", "effect"), [
    (["ctrl", "alt", "f1"], "deny"),
    (["alt", "ctrl", "f1"], "deny"),
    (["super", "ctrl", "alt", "f1"], "deny"),
    (["ctrl", "f1"], "allow"),
    (["alt", "f1"], "allow"),
    (["ctrl", "alt", "f2"], "allow"),
])
def test_key_combos_ignore_modifier_order_and_catch_extra_modifiers(
    keys: list[str], effect: str
) -> None:
    assert KEYS.decide(act(type="key", keys=keys), ctx()).effect == effect


def test_key_rules_see_held_keys_but_not_click_modifiers() -> None:
    held = KEYS.decide(act(type="hold_key", keys=["alt", "ctrl", "f1"], seconds=1), ctx())
    assert held.effect == "deny"
    clicked = KEYS.decide(act(type="click", x=1, y=1, modifiers=["ctrl", "alt"]), ctx())
    assert (clicked.effect, clicked.rule_ids) == ("deny", ())


REGIONS = policy_from("""
regions:
  box: {pixels: [100, 100, 200, 150]}
  right-edge: {fraction: [0.9, 0.0, 1.0, 1.0]}
rules:
  - id: pointing
    effect: allow
    reason: pointing
    match: {actions: [click, drag, zoom, scroll, mouse_down]}
  - id: in-box
    effect: ask
    reason: box
    match: {regions: box}
  - id: at-edge
    effect: deny
    reason: edge
    match: {regions: [right-edge]}
""")


@pytest.mark.parametrize(("action", "context", "rule_ids"), [
    ({"type": "click", "x": 100, "y": 100}, {}, ("in-box",)),
    ({"type": "click", "x": 199, "y": 149}, {}, ("in-box",)),
    ({"type": "click", "x": 200, "y": 120}, {}, ("pointing",)),  # boxes are half-open
    ({"type": "click", "x": 150, "y": 150}, {}, ("pointing",)),
    ({"type": "drag", "path": [{"x": 0, "y": 0}, {"x": 150, "y": 120}, {"x": 500, "y": 500}]},
     {}, ("in-box",)),
    ({"type": "zoom", "x0": 0, "y0": 0, "x1": 101, "y1": 101}, {}, ("in-box",)),
    ({"type": "scroll", "x": 1152, "y": 700, "dy": 2}, {}, ("at-edge",)),
    ({"type": "scroll", "x": 1151, "y": 700, "dy": 2}, {}, ("pointing",)),
    ({"type": "scroll", "x": 1151, "y": 700}, {"screen_width": 1200}, ("at-edge",)),
    ({"type": "mouse_down"}, {"cursor": (120, 120)}, ("in-box",)),
    ({"type": "mouse_down"}, {}, ("pointing",)),
])
def test_an_action_is_in_a_region_when_any_of_its_points_is(
    action: dict[str, Any], context: dict[str, Any], rule_ids: tuple[str, ...]
) -> None:
    assert REGIONS.decide(parse_action(action), ctx(**context)).rule_ids == rule_ids


CONTEXTUAL = policy_from("""
rules:
  - id: all
    effect: allow
    reason: everything
  - id: terminal-typing
    effect: ask
    reason: "typing into {window_title}"
    match: {actions: type, window_title: '(?i)terminal|xterm'}
  - id: payments
    effect: ask
    reason: "{triage_category} at {triage_risk} risk"
    match:
      triage: {category: [Payment], confidence_at_least: 0.6}
  - id: risky
    effect: ask
    reason: risky
    match:
      triage: {risk_at_least: medium}
  - id: injection
    effect: deny
    reason: "injection: {injection_reason} ({injection_risk:.0%})"
    match: {injection_risk_at_least: 0.5}
""")


@pytest.mark.parametrize(("context", "rule_ids", "reason"), [
    ({"window_title": "XTerm"}, ("terminal-typing",), "typing into XTerm"),
    ({"window_title": "Text Editor"}, ("all",), "everything"),
    ({"triage": Triage("payment", "low", 0.9)}, ("payments",), "payment at low risk"),
    ({"triage": Triage("payment", "low", 0.5)}, ("all",), "everything"),
    ({"triage": Triage("email", "medium", 0.1)}, ("risky",), "risky"),
    ({"triage": Triage("email", "low", 0.9)}, ("all",), "everything"),
    ({"injection_risk": 0.5, "injection_reason": "hidden text"}, ("injection",),
     "injection: hidden text (50%)"),
    ({"injection_risk": 0.49}, ("all",), "everything"),
])
def test_window_title_triage_and_injection_conditions(
    context: dict[str, Any], rule_ids: tuple[str, ...], reason: str
) -> None:
    decision = CONTEXTUAL.decide(act(type="type", text="hello"), ctx(**context))
    assert (decision.rule_ids, decision.reason) == (rule_ids, reason)


def test_a_reason_placeholder_that_cannot_be_formatted_keeps_the_template() -> None:
    policy = policy_from("""
rules:
  - {id: odd, effect: ask, reason: "title {window_title:.2f}"}
""")
    decision = policy.decide(act(type="wait"), ctx(window_title="x"))
    assert decision.reason == "title {window_title:.2f}"


UNLESS = policy_from("""
rules:
  - id: ask-unless-looking
    effect: ask
    reason: r
    unless: {actions: [screenshot, zoom]}
  - id: look
    effect: allow
    reason: r
    match: {actions: [screenshot, zoom]}
""")


@pytest.mark.parametrize(("action", "effect"), [
    ({"type": "screenshot"}, "allow"),
    ({"type": "wait"}, "ask"),
    ({"type": "cursor_position"}, "ask"),
])
def test_unless_carves_an_exception_out_of_a_rule(action: dict[str, Any], effect: str) -> None:
    assert UNLESS.decide(parse_action(action), ctx()).effect == effect


GRANTS = policy_from("""
rules:
  - {id: base, effect: allow, reason: base}
  - {id: ask-a, effect: ask, reason: first, match: {actions: type}}
  - {id: ask-b, effect: ask, reason: second, match: {actions: type, text: secret}}
  - {id: no-keys, effect: deny, reason: no keys, match: {actions: key}}
""")


def test_an_ask_becomes_allow_only_when_every_asking_rule_is_granted() -> None:
    typing = act(type="type", text="the secret word")

    partly = GRANTS.decide(typing, ctx(session_grants={"ask-a"}))
    fully = GRANTS.decide(typing, ctx(session_grants={"ask-a", "ask-b"}))

    assert (partly.effect, partly.rule_ids, partly.reason) == ("ask", ("ask-b",), "second")
    assert (fully.effect, fully.rule_ids) == ("allow", ("ask-a", "ask-b"))
    assert fully.reason == "granted for session: ask-a, ask-b (first; second)"


def test_a_grant_never_overrides_a_deny() -> None:
    decision = GRANTS.decide(act(type="key", keys=["a"]), ctx(session_grants={"no-keys", "base"}))
    assert (decision.effect, decision.rule_ids) == ("deny", ("no-keys",))


def test_nothing_matched_denies_with_no_rule_ids() -> None:
    policy = policy_from(
        "rules:\n  - {id: clicks, effect: allow, reason: r, match: {actions: click}}\n"
    )

    decision = policy.decide(act(type="screenshot"), ctx())

    assert (decision.effect, decision.rule_ids) == ("deny", ())
    assert decision.reason == DEFAULT_DENY_REASON == "no rule allows this action (default deny)"
    assert decision.policy_sha256 == policy.sha256


class Exploding:
    """A condition that fails, as a buggy or unforeseen one would."""

    def test(self, probe: Probe) -> bool:
        raise RuntimeError("boom")

    def why(self, probe: Probe) -> str:
        raise RuntimeError("boom")


def test_a_rule_that_raises_denies_naming_the_rule() -> None:
    broken = Rule("broken", "allow", "would allow", (Exploding(),))
    policy = load_profile("default")
    policy = policy.with_rules([*policy.rules, broken])

    decision = policy.decide(act(type="screenshot"), ctx(session_grants={"broken"}))

    assert (decision.effect, decision.rule_ids) == ("deny", ("broken",))
    assert "rule broken could not be evaluated (RuntimeError: boom)" in decision.reason
    assert "fail closed" in decision.reason


def test_a_context_the_rule_cannot_read_fails_closed() -> None:
    # A window title that is not text makes the title regex raise TypeError.
    context = ctx(window_title=None)
    policy = load_profile("default")

    typed = policy.decide(act(type="type", text="hello"), context)
    clicked = policy.decide(act(type="click", x=5, y=5), context)

    assert (typed.effect, typed.rule_ids) == ("deny", ("window.credentials",))
    assert "TypeError" in typed.reason
    assert clicked.effect == "allow"  # the title is only read for typing


def test_a_budget_that_cannot_be_measured_denies() -> None:
    decision = BUDGETS.decide(act(type="wait"), ctx(recent_action_times=None))
    assert (decision.effect, decision.rule_ids) == ("deny", ("budget.actions_per_minute",))
    assert "could not be measured (TypeError" in decision.reason


def test_a_failing_secret_rule_still_marks_the_text_secret() -> None:
    policy = Policy(name="p", sha256="0" * 64, rules=[
        Rule("mask", "ask", "masked", (Exploding(),), secret=True),
    ])
    assert policy.decide(act(type="type", text="x"), ctx()).secret is True


def test_secret_is_set_by_any_matching_secret_rule_whatever_wins() -> None:
    policy = policy_from("""
rules:
  - {id: no-typing, effect: deny, reason: r, match: {actions: type}}
  - {id: keys, effect: allow, reason: r, secret: true, match: {detectors: [aws_access_key]}}
""")
    decision = policy.decide(act(type="type", text="AKIAIOSFODNN7EXAMPLE"), ctx())
    assert (decision.effect, decision.rule_ids, decision.secret) == ("deny", ("no-typing",), True)


BUDGETS = policy_from("""
budgets: {max_steps: 3, max_wall_time_s: 60, max_actions_per_minute: 2, max_typed_chars: 10}
rules:
  - {id: all, effect: allow, reason: r}
""")


@pytest.mark.parametrize(("action", "context", "rule_ids"), [
    ({"type": "wait"}, {"step_index": 2}, ("all",)),
    ({"type": "wait"}, {"step_index": 3}, ("budget.steps",)),
    ({"type": "wait"}, {"elapsed_s": 60.0}, ("all",)),
    ({"type": "wait"}, {"elapsed_s": 60.1}, ("budget.wall_time",)),
    ({"type": "wait"}, {"recent_action_times": [40.0, 95.0]}, ("all",)),
    ({"type": "wait"}, {"recent_action_times": [40.5, 95.0]}, ("budget.actions_per_minute",)),
    ({"type": "type", "text": "12345"}, {"typed_chars": 5}, ("all",)),
    ({"type": "type", "text": "123456"}, {"typed_chars": 5}, ("budget.typed_chars",)),
    ({"type": "wait"}, {"typed_chars": 500}, ("all",)),
    ({"type": "type", "text": "123456"}, {"typed_chars": 5, "step_index": 9},
     ("budget.steps", "budget.typed_chars")),
])
def test_budgets_deny_once_exceeded(
    action: dict[str, Any], context: dict[str, Any], rule_ids: tuple[str, ...]
) -> None:
    decision = BUDGETS.decide(parse_action(action), ctx(**context))
    assert decision.rule_ids == rule_ids
    assert decision.effect == ("allow" if rule_ids == ("all",) else "deny")


def test_the_hash_is_of_the_canonical_bytes(tmp_path: Path) -> None:
    text = "name: p\nrules:\n  - {id: a, effect: allow, reason: r}\n"
    unix = tmp_path / "unix.yaml"
    unix.write_bytes(text.encode())
    windows = tmp_path / "windows.yaml"
    windows.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    changed = tmp_path / "changed.yaml"
    changed.write_bytes(text.replace("reason: r", "reason: s").encode())

    assert load_policy(unix).sha256 == load_policy(windows).sha256
    assert load_policy(unix).sha256 == hashlib.sha256(text.encode()).hexdigest()
    assert load_policy(changed).sha256 != load_policy(unix).sha256


def test_a_policy_without_a_name_is_named_after_its_file(tmp_path: Path) -> None:
    path = tmp_path / "team-rules.yaml"
    path.write_text("rules:\n  - {id: a, effect: allow, reason: r}\n")
    assert load_policy(path).name == "team-rules"


def test_explain_traces_every_rule_and_budget() -> None:
    policy = load_profile("default")
    action = act(type="type", text="sudo reboot")
    context = ctx(window_title="Terminal")

    explanation = policy.explain(action, context)

    assert explanation.decision == policy.decide(action, context)
    assert [t.rule_id for t in explanation.traces] == list(policy.rule_ids())
    assert {t.rule_id for t in explanation.matched} == {
        "ui.allow", "shell.destructive", "shell.command.privileged"}
    text = explanation.render()
    assert text.startswith("decision: ASK (shell.command.privileged, shell.destructive)")
    assert "the shell would run 'sudo reboot' (sudo/doas/pkexec/su/runuser/setpriv)" in text
    assert "typed text matches /\\b(?:sudo|doas|pkexec)\\b/" in text
    assert "window title 'Terminal' does not match" in text


def test_explain_never_repeats_the_typed_text() -> None:
    key = "sk-ant-api03-Zx8Yw7Vu6Ts5Rq4Po3Nm2Lk1Jh0Gf"
    explanation = load_profile("default").explain(act(type="type", text=key), ctx())
    rendered = explanation.render()
    assert "an Anthropic API key" in rendered
    assert key not in rendered
    assert "stored masked" in rendered


def test_explain_shows_a_failing_rule() -> None:
    policy = load_profile("observe")
    policy = policy.with_rules([*policy.rules, Rule("broken", "allow", "r", (Exploding(),))])

    explanation = policy.explain(act(type="screenshot"), ctx())

    broken = next(t for t in explanation.traces if t.rule_id == "broken")
    assert (broken.status, broken.error) == ("ERROR", "RuntimeError: boom")
    assert explanation.decision.rule_ids == ("broken",)


def test_policies_refuse_duplicate_rule_ids() -> None:
    rule = Rule("same", "allow", "r", ())
    with pytest.raises(ValueError, match="unique"):
        Policy(name="p", sha256="0" * 64, rules=[rule, rule])
