"""A click's target element reaches the policy: the default profile asks before
pressing a button named like Delete (real loop, real audit log, VLM over loopback)."""

from __future__ import annotations

import json
from pathlib import Path

import openai

from agent.approvals import BrokerApprover
from agent.loop import AgentLoop, LoopConfig
from agent.perception.vlm import VlmScreenParser
from agent.planners.script import ScriptPlanner, load_script
from audit.log import AuditLog
from policies import load_profile
from policies.decision import PolicyContext, TargetElement
from sandbox.actions import Click
from sandbox.base import Size
from sandbox.fake import FakeSandbox
from tests.planners.loopback import LoopbackLLM, chat_completion

SCRIPT = """task: tidy the list
steps:
  - click: {role: push button, name: Save}
  - click: {role: push button, name_re: "^Delete"}
"""


def test_clicking_a_button_named_delete_asks_and_unanswered_is_denied(tmp_path: Path) -> None:
    path = tmp_path / "tidy.yaml"
    path.write_text(SCRIPT, encoding="utf-8")
    with LoopbackLLM() as llm, AuditLog.open(tmp_path / "audit.db") as log:
        llm.respond_with("/v1/chat/completions", lambda _request: chat_completion(
            content=json.dumps({"elements": [
                {"role": "push button", "label": "Save", "box": [10, 10, 50, 30]},
                {"role": "push button", "label": "Delete all", "box": [100, 10, 180, 30]}]})))
        client = openai.OpenAI(base_url=llm.openai_base_url, api_key="local")
        planner = ScriptPlanner(load_script(path), elements=VlmScreenParser(client, "vlm"))
        box = FakeSandbox(size=Size(640, 400))
        box.start()
        summary = AgentLoop(sandbox=box, planner=planner, policy=load_profile("default"),
                            audit=log, approver=BrokerApprover(log),
                            config=LoopConfig(approval_timeout_s=0)).run("tidy the list")
        steps = log.steps(summary.session_id)
    assert box.executed == [Click(x=30, y=20)]  # Save ran; Delete waited for a human, denied
    assert [(s.decision_effect, s.status) for s in steps] == [("allow", "done"),
                                                              ("ask", "denied")]
    assert steps[1].rule_ids == ("ui.click.consequential",)
    assert "push button 'Delete all'" in (steps[1].decision_reason or "")


def test_element_name_never_matches_a_click_at_bare_coordinates() -> None:
    policy = load_profile("default")
    context = PolicyContext(screen_width=640, screen_height=400)
    assert policy.decide(Click(x=5, y=5), context).effect == "allow"
    context.target_element = TargetElement(role="push button", name="Pay now")
    decision = policy.decide(Click(x=5, y=5), context)
    assert (decision.effect, decision.rule_ids) == ("ask", ("ui.click.consequential",))
    context.target_element = TargetElement(role="push button", name="Payment history")
    assert policy.decide(Click(x=5, y=5), context).effect == "allow"
