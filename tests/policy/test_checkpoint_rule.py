"""``checkpoint: true`` on a rule marks the decisions it takes part in."""

from __future__ import annotations

import pytest

from policies import PolicyContext, PolicyError, parse_policy
from sandbox.actions import Click, TypeText

POLICY = """
name: t
rules:
  - id: ui.allow
    effect: allow
    reason: ordinary work
    match: {actions: [click, type]}
  - id: files.snapshot
    effect: allow
    checkpoint: true
    reason: typing may change files
    match: {actions: [type]}
"""
CONTEXT = PolicyContext(screen_width=1280, screen_height=800)


def test_a_checkpoint_rule_marks_its_decision_and_no_other() -> None:
    policy = parse_policy(POLICY.encode(), file="t.yaml", default_name="t")
    assert policy.decide(TypeText(text="x"), CONTEXT).checkpoint
    assert not policy.decide(Click(x=1, y=1), CONTEXT).checkpoint


def test_a_misspelt_checkpoint_value_is_an_error_naming_the_field() -> None:
    bad = POLICY.replace("checkpoint: true", "checkpoint: sometimes").encode()
    with pytest.raises(PolicyError) as raised:
        parse_policy(bad, file="t.yaml", default_name="t")
    problems = [str(p) for p in raised.value.problems]
    assert problems == ["t.yaml:10: rules[1].checkpoint: Input should be a valid boolean, "
                        "unable to interpret input"]
