"""Grounded script steps on a real desktop: the offline OCR finds the text."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.approvals import BrokerApprover
from agent.loop import AgentLoop, LoopConfig
from agent.planners.script import ScriptPlanner, load_script
from agent.runs import LazyPerception
from audit.log import AuditLog
from policies.engine import load_profile
from sandbox.actions import Click
from sandbox.local import LocalSandbox

pytestmark = pytest.mark.x11

SCRIPT = """\
task: find text on screen
steps:
  - key: ctrl+alt+t
  - wait: 1
  - type: "echo WORD\\n"
  - wait_for_text: {text: WORD, timeout: 10}
  - click_text: {text: WORD, count: 2}
"""


# KEEP-OK-42 is read by the OCR as KEEP-0K-42: found only when text is read as a person reads.
@pytest.mark.parametrize("word", ["grounded-ok", "KEEP-OK-42"])
def test_wait_for_text_and_click_text_find_what_the_terminal_shows(tmp_path: Path,
                                                                   word: str) -> None:
    path = tmp_path / "grounded.yaml"
    path.write_text(SCRIPT.replace("WORD", word), encoding="utf-8")
    perception = LazyPerception()
    with AuditLog.open(tmp_path / "audit.db") as log, LocalSandbox() as box:
        planner = ScriptPlanner(load_script(path), locator=perception)
        loop = AgentLoop(sandbox=box, planner=planner, policy=load_profile("default"),
                         audit=log, approver=BrokerApprover(log),
                         config=LoopConfig(approval_timeout_s=0, max_turns=100))
        summary = loop.run("find text on screen")
        steps = log.steps(summary.session_id)

    assert summary.outcome == "done", summary.reason
    clicks = [s.action for s in steps if s.action_type == "click"]
    assert len(clicks) == 1
    click = Click.model_validate(clicks[0])
    assert click.count == 2
    # The terminal prints the word on its second line, in the upper half of the screen.
    assert click.x is not None
    assert click.y is not None
    assert 0 < click.x < 1280
    assert 0 < click.y < 400
