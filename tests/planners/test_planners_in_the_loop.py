"""The model planners driving the real agent loop: fake sandbox, real policy and audit log."""

from __future__ import annotations

from pathlib import Path

import anthropic
import openai

from agent.approvals import BrokerApprover
from agent.loop import AgentLoop, LoopConfig, RunSummary
from agent.planners.anthropic import AnthropicPlanner
from agent.planners.base import Planner
from agent.planners.openai import OpenAIComputerUsePlanner
from audit.log import AuditLog
from policies.engine import load_profile
from sandbox.actions import Click, Key, TypeText
from sandbox.base import Size
from sandbox.fake import FakeSandbox
from tests.planners.loopback import (
    LoopbackLLM,
    claude_message,
    computer_call,
    output_message,
    response,
    safety_check,
    text_block,
    tool_use,
)

SCREEN = Size(1920, 1080)


def run(planner: Planner, box: FakeSandbox, db: Path, task: str) -> RunSummary:
    with AuditLog.open(db) as log:
        loop = AgentLoop(sandbox=box, planner=planner, policy=load_profile("default"),
                         audit=log, approver=BrokerApprover(log),
                         config=LoopConfig(approval_timeout_s=0, max_turns=10))
        return loop.run(task)


def test_claude_types_a_note_and_learns_that_rm_was_refused(
        llm: LoopbackLLM, anthropic_client: anthropic.Anthropic, tmp_path: Path) -> None:
    llm.queue_messages(
        claude_message([tool_use({"action": "left_click", "coordinate": [512, 288]}),
                        tool_use({"action": "type", "text": "hello"}),
                        tool_use({"action": "key", "text": "Return"})]),
        claude_message([tool_use({"action": "type", "text": "rm -rf ~/keep"}, id="toolu_rm")]),
        claude_message([text_block("Wrote hello; deleting was not approved.")]),
    )
    planner = AnthropicPlanner(anthropic_client, model="claude-haiku-4-5", sandbox_size=SCREEN,
                               max_retries=0)

    with FakeSandbox(size=SCREEN) as box:
        summary = run(planner, box, tmp_path / "audit.db", "write hello")
        executed = list(box.executed)

    assert summary.outcome == "done", summary.reason
    assert executed == [Click(x=960, y=540), TypeText(text="hello"), Key(keys=["enter"])]
    assert (summary.executed, summary.denied) == (3, 1)
    second, third = llm.requests[1].body, llm.requests[2].body
    results = [b for b in second["messages"][-1]["content"] if b["type"] == "tool_result"]
    assert [r.get("is_error", False) for r in results] == [False, False, False]
    [refused] = [b for b in third["messages"][-1]["content"] if b["type"] == "tool_result"]
    assert refused["tool_use_id"] == "toolu_rm"
    assert refused["is_error"] is True
    assert "not approve" in refused["content"][0]["text"]
    assert llm.requests[2].images()[-1] == (1024, 576)


def test_a_safety_check_is_escalated_and_not_acknowledged_when_nobody_approves(
        llm: LoopbackLLM, openai_client: openai.OpenAI, tmp_path: Path) -> None:
    check = safety_check("This site may be impersonating your bank.", id="sc_bank")
    llm.queue_responses(
        response([computer_call({"type": "click", "button": "left", "x": 10, "y": 10},
                                call_id="c1", safety_checks=[check])], id="r1"),
        response([output_message("FAILED: I was not allowed to continue.")], id="r2"),
    )
    planner = OpenAIComputerUsePlanner(openai_client, sandbox_size=SCREEN, max_retries=0)

    with FakeSandbox(size=SCREEN) as box:
        summary = run(planner, box, tmp_path / "audit.db", "log in to the bank")
        executed = list(box.executed)

    assert executed == []  # the click was allowed by policy, but the check forced an ask
    assert summary.denied == 1
    assert summary.outcome == "failed"
    [output, note] = llm.requests[1].body["input"]
    assert output["call_id"] == "c1"
    assert "acknowledged_safety_checks" not in output
    # nothing ran, so the screen is the one already sent: a placeholder and one note
    texts = [part["text"] for part in note["content"]]
    assert "unchanged since step 0" in texts[0]
    assert "did not run" in texts[1]
