"""The loop rebuilds the shell line across actions and reads what a paste inserts
(fake sandbox, real policy, real SQLite audit log)."""

from __future__ import annotations

from pathlib import Path

from agent.approvals import BrokerApprover
from agent.loop import AgentLoop, LoopConfig
from audit.log import AuditLog
from policies import load_profile
from sandbox.actions import Click, Key, TypeText
from sandbox.base import Size
from sandbox.fake import FakeSandbox
from tests.agent.test_loop import ListPlanner, proposals, run


def test_a_command_split_over_two_types_is_asked_when_it_is_submitted(tmp_path: Path) -> None:
    planner = ListPlanner(proposals(TypeText(text="rm -"), TypeText(text="rf ~/keep"),
                                    Key(keys=["Return"])))
    summary, box, log = run(tmp_path, planner)
    assert box.executed == [TypeText(text="rm -"), TypeText(text="rf ~/keep")]
    submit = log.steps(summary.session_id)[2]
    assert (submit.decision_effect, submit.status) == ("ask", "denied")
    assert "shell.command.destructive" in submit.rule_ids
    assert (submit.decision_reason or "").endswith("[the line it submits: 'rm -rf ~/keep']")


def test_a_denied_fragment_does_not_become_part_of_the_line(tmp_path: Path) -> None:
    # "rm -rf x" is refused, so the Return that follows submits only "ls".
    planner = ListPlanner(proposals(TypeText(text="ls"), TypeText(text=" ; rm -rf x"),
                                    Key(keys=["Return"])))
    summary, box, log = run(tmp_path, planner)
    assert box.executed == [TypeText(text="ls"), Key(keys=["enter"])]
    steps = log.steps(summary.session_id)
    assert [(s.status, s.rule_ids) for s in steps] == [
        ("done", ("ui.allow",)),
        ("denied", ("shell.command.destructive", "shell.destructive")),
        ("done", ("ui.allow",))]


def test_a_paste_is_read_judged_like_typed_text_and_recorded(tmp_path: Path) -> None:
    log = AuditLog.open(tmp_path / "audit.db")
    box = FakeSandbox(size=Size(640, 400))
    box.start()
    box.selections["clipboard"] = "rm -rf ~/keep\n"
    box.selections["primary"] = "echo hello"
    planner = ListPlanner(proposals(Click(x=10, y=10, button="middle"),
                                    Key(keys=["ctrl", "shift", "v"])))
    loop = AgentLoop(sandbox=box, planner=planner, policy=load_profile("default"), audit=log,
                     approver=BrokerApprover(log), config=LoopConfig(approval_timeout_s=0))
    summary = loop.run("paste")
    steps = log.steps(summary.session_id)
    assert [(s.decision_effect, s.status) for s in steps] == [("allow", "done"),
                                                              ("ask", "denied")]
    assert "shell.destructive" in steps[1].rule_ids
    pastes = [e.data for e in log.events(summary.session_id) if e.kind == "paste_read"]
    assert pastes == [{"selection": "primary", "chars": 10, "text": "echo hello"},
                      {"selection": "clipboard", "chars": 14, "text": "rm -rf ~/keep\n"}]


def test_a_pasted_secret_is_judged_and_stored_masked(tmp_path: Path) -> None:
    log = AuditLog.open(tmp_path / "audit.db")
    box = FakeSandbox(size=Size(640, 400))
    box.start()
    secret = "export ANTHROPIC_API_KEY=sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz012345\n"
    box.selections["clipboard"] = secret
    loop = AgentLoop(sandbox=box, planner=ListPlanner(proposals(Key(keys=["ctrl", "v"]))),
                     policy=load_profile("default"), audit=log, approver=BrokerApprover(log),
                     config=LoopConfig(approval_timeout_s=0))
    summary = loop.run("paste")
    step = log.steps(summary.session_id)[0]
    events = [e.data for e in log.events(summary.session_id) if e.kind == "paste_read"]
    assert (step.decision_effect, step.status) == ("ask", "denied")
    assert "text.secret" in step.rule_ids
    submits = f"[the line it submits: {len(secret) - 1} characters, secret]"
    assert (step.decision_reason or "").endswith(submits)
    assert events == [{"selection": "clipboard", "chars": len(secret), "text": "••••"}]
    assert "sk-ant" not in str(step.decision_reason)
