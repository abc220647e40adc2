"""A click at bare coordinates, from a model or a script, is judged by the element it lands
on: the default profile asks before pressing "Delete" (an approver says no: nothing runs)
and lets "Cancel" run; the target is in the step record and the approval request.

Fast: the fake desktop's accessibility tree (``FakeSandbox.a11y_elements``), the real loop,
policy, SQLite audit log and approval broker, Claude through the real ``anthropic`` SDK
against the loopback provider.  tests/docker/test_click_targets_docker.py does the same on
the real desktop.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest

from agent import runs
from agent.approvals import BrokerApprover
from agent.errors import ConfigError
from agent.loop import AgentLoop, LoopConfig, RunSummary
from agent.perception.elements import AccessibilityTree
from agent.perception.targets import FrameElements
from agent.planners.anthropic import AnthropicPlanner
from agent.planners.script import ScriptPlanner, load_script
from agent.registry import SandboxInputs
from agent.settings import Settings
from audit.log import AuditLog
from audit.records import ApprovalRequest, StepRecord, run_notes
from policies import load_profile
from policies.decision import TargetElement
from sandbox.actions import Click
from sandbox.base import Sandbox
from sandbox.fake import FakeSandbox
from tests.planners.loopback import (
    LoopbackLLM,
    RecordedRequest,
    ScriptedReply,
    claude_message,
    text_block,
    tool_use,
)

DIALOG_ELEMENTS = [
    {"role": "dialog", "name": "Delete 3 files?", "states": ["enabled"], "value": "",
     "box": [400, 250, 880, 550]},
    {"role": "label", "name": "Delete 3 files permanently?", "states": ["enabled"], "value": "",
     "box": [420, 270, 860, 300]},
    {"role": "push button", "name": "Cancel", "states": ["enabled", "focused"], "value": "",
     "box": [520, 480, 680, 530]},
    {"role": "push button", "name": "Delete", "states": ["enabled"], "value": "",
     "box": [700, 480, 860, 530]},
]
DELETE = TargetElement(role="push button", name="Delete", box=(700, 480, 860, 530),
                       source="a11y")
CANCEL = TargetElement(role="push button", name="Cancel", box=(520, 480, 680, 530),
                       source="a11y")


def dialog_desktop() -> FakeSandbox:
    box = FakeSandbox()
    box.a11y_elements.extend(DIALOG_ELEMENTS)
    return box


def listed_point(request: RecordedRequest, name_re: str) -> list[int]:
    """Where the latest element list of the request says the push button named like
    ``name_re`` is (an unchanged screen is sent as a line saying so: its list is the one
    sent with it before)."""
    lists = [t for m in request.body["messages"] if m["role"] == "user"
             for t in _texts(m["content"]) if t.startswith("Elements on screen")]
    assert lists, "no element list was sent"
    found = re.search(rf'^\d+ push button "{name_re}" (\d+),(\d+)', lists[-1], re.M)
    assert found is not None, f"/{name_re}/ is not in the element list:\n{lists[-1]}"
    return [int(found[1]), int(found[2])]


def _texts(blocks: list[dict[str, Any]]) -> Iterator[str]:
    for block in blocks:
        if block.get("type") == "text":
            yield block["text"]
        elif block.get("type") == "tool_result":
            yield from _texts(block["content"])


def clicks_where_listed(llm: LoopbackLLM, names_re: list[str], final: str) -> None:
    """The 'model': each turn it reads the element list it was sent and clicks the next
    button of ``names_re`` where the list says it is; then it ends with ``final``."""
    def reply(request: RecordedRequest) -> ScriptedReply | dict[str, Any]:
        turn = len(llm.requests_to("/v1/messages"))
        if turn > len(names_re):
            return claude_message([text_block(final)])
        point = listed_point(request, names_re[turn - 1])
        return claude_message([tool_use({"action": "left_click", "coordinate": point})])

    llm.respond_with("/v1/messages", reply)


def run_claude_with_a_denying_approver(box: Sandbox, llm: LoopbackLLM, db: Path, task: str, *,
                                       wait_s: float = 1.0,
                                       ) -> tuple[RunSummary, list[StepRecord],
                                                  list[ApprovalRequest]]:
    """Claude (``--elements text``) in the real loop on ``box``, its clicks judged by the
    tree's element under them, every approval denied by an approver attached elsewhere."""
    approver = DenyingApprover(db)
    with AuditLog.open(db) as log, \
            anthropic.Anthropic(api_key="test", base_url=llm.base_url, max_retries=0) as client:
        planner = AnthropicPlanner(client, model="claude-sonnet-4-6", sandbox_size=box.size,
                                   max_retries=0, elements="text")
        elements = FrameElements([AccessibilityTree(box)], wait_s=wait_s)
        loop = AgentLoop(sandbox=box, planner=planner, policy=load_profile("default"),
                         audit=log, approver=BrokerApprover(log), elements=elements,
                         config=LoopConfig(approval_timeout_s=60, max_turns=5,
                                           list_elements=True))
        approver.start()
        try:
            summary = loop.run(task)
        finally:
            approver.done.set()
            approver.join(10)
            elements.close()
        return summary, log.steps(summary.session_id), approver.seen


class DenyingApprover(threading.Thread):
    """An approver attached to the database elsewhere: says no to every request, and keeps
    what it was shown."""

    def __init__(self, db: Path) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.seen: list[ApprovalRequest] = []
        self.done = threading.Event()

    def run(self) -> None:
        with AuditLog.open(self.db) as log:
            while not self.done.is_set():
                for request in log.pending_approvals():
                    self.seen.append(request)
                    log.answer_approval(request.id, approved=False, scope="once",
                                        approver="tester@tui", channel="tui-attach")
                self.done.wait(0.02)  # polling the database for requests, as the TUI does


def test_claudes_click_on_delete_is_asked_about_and_denied_cancel_runs(tmp_path: Path) -> None:
    with LoopbackLLM() as llm, dialog_desktop() as box:
        clicks_where_listed(llm, ["Delete", "Cancel"], "Kept the files: deleting was refused.")
        summary, steps, seen = run_claude_with_a_denying_approver(
            box, llm, tmp_path / "audit.db", "tidy the folder, but keep the files")

    assert summary.outcome == "done", summary.reason
    [cancel_click] = box.executed  # Delete never ran
    assert isinstance(cancel_click, Click)
    assert 520 <= (cancel_click.x or 0) < 680
    assert 480 <= (cancel_click.y or 0) < 530
    assert [(s.decision_effect, s.status) for s in steps] == [("ask", "denied"),
                                                              ("allow", "done")]
    assert steps[0].rule_ids == ("ui.click.consequential",)
    assert (steps[0].target_element, steps[1].target_element) == (DELETE, CANCEL)
    assert "(push button 'Delete')" in (steps[0].decision_reason or "")
    [asked] = seen
    assert asked.summary.endswith("on push button 'Delete'")
    assert steps[0].approval is not None
    assert steps[0].approval.answer is not None
    assert steps[0].approval.answer.approver == "tester@tui"


SCRIPT = """\
task: close the dialog
steps:
  - click: [780, 505]
  - click: [600, 505]
"""


def test_a_scripts_bare_click_is_judged_by_the_tree_wired_by_the_run_builder(
        tmp_path: Path) -> None:
    script = tmp_path / "dialog.yaml"
    script.write_text(SCRIPT, encoding="utf-8")
    made: list[FakeSandbox] = []

    def make_sandbox(kind: str, inputs: SandboxInputs) -> Sandbox:
        made.append(dialog_desktop())
        return made[-1]

    settings = Settings(home=tmp_path, db=tmp_path / "audit.db", sandbox="fake",
                        planner="script", parser="a11y")
    plan = runs.plan_run(settings, script=script)
    options = runs.RunOptions(unattended=True,  # nobody attached: asked means denied at once
                              services=runs.RunServices(make_sandbox=make_sandbox))
    with runs.open_run(plan, options) as run:
        assert run.loop.elements is not None
        summary: RunSummary = run.loop.run(plan.task)
    with AuditLog.open(settings.db_path) as log:
        steps = log.steps(summary.session_id)

    assert made[0].executed == [Click(x=600, y=505)]
    assert [s.status for s in steps] == ["denied", "done"]
    assert [s.target_element for s in steps] == [DELETE, CANCEL]


def test_deskhand_runs_wiring_gives_claude_the_trees_list_and_judges_its_clicks(
        tmp_path: Path) -> None:
    made: list[FakeSandbox] = []

    def make_sandbox(kind: str, inputs: SandboxInputs) -> Sandbox:
        made.append(dialog_desktop())
        return made[-1]

    with LoopbackLLM() as llm:
        clicks_where_listed(llm, ["Delete", "Cancel"], "Kept the files.")
        settings = Settings(home=tmp_path, db=tmp_path / "audit.db", sandbox="fake",
                            planner="anthropic", base_url=llm.base_url, parser="a11y",
                            elements="text", ANTHROPIC_API_KEY="test")
        plan = runs.plan_run(settings, task="tidy the folder, but keep the files")
        options = runs.RunOptions(unattended=True,
                                  services=runs.RunServices(make_sandbox=make_sandbox))
        with runs.open_run(plan, options) as run:
            assert run.loop.config.list_elements
            summary = run.loop.run(plan.task)
        first = llm.requests_to("/v1/messages")[0].body["messages"][0]["content"]
    with AuditLog.open(settings.db_path) as log:
        steps = log.steps(summary.session_id)

    assert summary.outcome == "done", summary.reason
    assert first[-1]["text"].startswith("Elements on screen (accessibility tree):")
    assert [(s.status, s.target_element) for s in steps] == [("denied", DELETE),
                                                             ("done", CANCEL)]
    assert len(made[0].executed) == 1


def test_a_bad_elements_mode_is_bad_input_before_anything_starts(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, sandbox="fake", planner="script", elements="all")
    script = tmp_path / "dialog.yaml"
    script.write_text(SCRIPT, encoding="utf-8")
    with pytest.raises(ConfigError, match="--elements 'all': choose one of off, text, "
                                               "marks"):
        runs.plan_run(settings, script=script)


def test_without_an_element_source_a_bare_click_has_no_target(tmp_path: Path) -> None:
    with AuditLog.open(tmp_path / "audit.db") as log, dialog_desktop() as box:
        planner_script = tmp_path / "dialog.yaml"
        planner_script.write_text(SCRIPT, encoding="utf-8")
        loop = AgentLoop(sandbox=box, planner=ScriptPlanner(load_script(planner_script)),
                         policy=load_profile("default"), audit=log,
                         approver=BrokerApprover(log), config=LoopConfig(approval_timeout_s=0))
        summary = loop.run("close the dialog")
        steps = log.steps(summary.session_id)
    assert [s.target_element for s in steps] == [None, None]
    assert [s.status for s in steps] == ["done", "done"]


ELEMENT_STEPS = """\
task: press two words
steps:
  - type: "Save me\\nOpen it"
  - click: {name: "Save me"}
  - click: {name: "Open it"}
"""


def test_parser_auto_says_once_per_run_why_the_tree_is_missing(tmp_path: Path) -> None:
    script = tmp_path / "steps.yaml"
    script.write_text(ELEMENT_STEPS, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "agent", "run", "--script", str(script), "--sandbox", "fake",
         "--parser", "auto", "--db", str(tmp_path / "audit.db")],
        capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stdout + done.stderr
    # Both element steps fell back to OCR's words (the fake desktop has no tree): the
    # reason is told, once.
    assert done.stderr.count("no accessibility tree: the fake desktop has no tree") == 1, \
        done.stderr
    # ... and kept in the session's log, once, naming the source.
    with AuditLog.open(tmp_path / "audit.db") as log:
        (session,) = log.list_sessions()
        notes = run_notes(log.events(session.id))
    assert [n for n in notes if "no accessibility tree" in n] == [
        "AccessibilityTree: no accessibility tree: the fake desktop has no tree"], notes
