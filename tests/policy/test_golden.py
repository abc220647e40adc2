"""The golden decision table of the shipped profiles, and a check that it covers every rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from policies import PolicyContext, Triage, load_profile, shipped_profiles
from policies.decision import TargetElement, TypedFromScreen
from sandbox.actions import parse_action, validate_for_screen

GOLDEN = Path(__file__).with_name("golden.yaml")
CASES: list[dict[str, Any]] = yaml.safe_load(GOLDEN.read_text(encoding="utf-8"))


def build_context(spec: dict[str, Any]) -> PolicyContext:
    """A PolicyContext from a golden case's `context` mapping."""
    fields = {"screen_width": 1280, "screen_height": 800, "now": 1000.0, **spec}
    if "triage" in fields:
        fields["triage"] = Triage(**fields["triage"])
    if "typed_from_screen" in fields:
        copied = fields["typed_from_screen"]
        fields["typed_from_screen"] = TypedFromScreen(copied["kind"], tuple(copied["box"]),
                                                      copied.get("frame_sha256", "f" * 64))
    if "cursor" in fields:
        fields["cursor"] = tuple(fields["cursor"])
    if "target_element" in fields:
        fields["target_element"] = TargetElement(**fields["target_element"])
    if "line_unknown" in fields:
        fields["line_unknown"] = tuple(fields["line_unknown"])
    if "session_grants" in fields:
        fields["session_grants"] = set(fields["session_grants"])
    times = fields.get("recent_action_times")
    if isinstance(times, dict):
        ending, every, count = times["ending"], times["every"], times["count"]
        fields["recent_action_times"] = [ending - every * i for i in range(count)][::-1]
    return PolicyContext(**fields)


@pytest.mark.parametrize("case", CASES, ids=[f"{c['profile']}: {c['case']}" for c in CASES])
def test_golden_decision(case: dict[str, Any]) -> None:
    policy = load_profile(case["profile"])
    action = parse_action(case["action"])
    context = build_context(case.get("context", {}))
    validate_for_screen(action, context.screen_width, context.screen_height)

    decision = policy.decide(action, context)

    expect = case["expect"]
    assert (decision.effect, list(decision.rule_ids)) == (expect["effect"], expect["rule_ids"])
    assert decision.policy_sha256 == policy.sha256
    if "secret" in expect:
        assert decision.secret is expect["secret"]
    if "reason_contains" in expect:
        assert expect["reason_contains"] in decision.reason


@pytest.mark.parametrize("profile", shipped_profiles())
def test_golden_table_names_every_rule_and_budget_of(profile: str) -> None:
    named = {rid for c in CASES if c["profile"] == profile for rid in c["expect"]["rule_ids"]}
    uncovered = [rid for rid in load_profile(profile).rule_ids() if rid not in named]
    assert uncovered == [], f"golden.yaml has no case deciding by {uncovered} in {profile!r}"


def test_golden_table_is_about_shipped_profiles_only() -> None:
    assert {c["profile"] for c in CASES} == set(shipped_profiles())
