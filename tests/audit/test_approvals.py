"""Approvals: any process attached to the database may answer; the first answer wins."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from audit import synthetic
from audit.log import AuditLog
from policies.decision import Decision
from sandbox.actions import Key

ASK = Decision(effect="ask", rule_ids=("shell.ask",), reason="runs a shell command",
               policy_sha256="ab" * 32)

ANSWER_FROM_ANOTHER_PROCESS = """
import sys
from pathlib import Path
from audit.log import AuditLog
with AuditLog.open(Path(sys.argv[1])) as log:
    won = log.answer_approval(int(sys.argv[2]), approved=sys.argv[3] == "yes", scope="session",
                              approver=sys.argv[4], channel="tui")
print("won" if won else "lost")
"""


def _ask(log: AuditLog, timeout_s: float = 30.0) -> tuple[int, int]:
    session_id = log.start_session(synthetic.session_info())
    step_id = log.record_intent(session_id, index=0, action=Key(keys=["enter"]),
                                proposed_raw=None, validation_error=None, decision=ASK,
                                frame_before_sha256=None, secret=False)
    approval_id = log.request_approval(step_id, frame_sha256="f" * 64, summary="key enter",
                                       rule_ids=ASK.rule_ids, reason=ASK.reason,
                                       timeout_s=timeout_s)
    return step_id, approval_id


def _answer_elsewhere(db_path: Path, approval_id: int, approved: bool,
                      who: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", ANSWER_FROM_ANOTHER_PROCESS, str(db_path), str(approval_id),
         "yes" if approved else "no", who], stdout=subprocess.PIPE, text=True)


def test_the_first_answer_wins(log: AuditLog) -> None:
    _, approval_id = _ask(log)
    assert log.answer_approval(approval_id, approved=False, scope="once", approver="a",
                               channel="terminal")
    assert not log.answer_approval(approval_id, approved=True, scope="once", approver="b",
                                   channel="tui")
    answer = log.wait_for_answer(approval_id, timeout_s=0)
    assert answer is not None
    assert (answer.approved, answer.approver) == (False, "a")


def test_an_answer_from_another_process_reaches_the_waiting_run(log: AuditLog,
                                                                db_path: Path) -> None:
    _, approval_id = _ask(log)
    assert [p.id for p in log.pending_approvals()] == [approval_id]
    other = _answer_elsewhere(db_path, approval_id, True, "ana@tui")
    answer = log.wait_for_answer(approval_id, timeout_s=60)
    assert other.communicate(timeout=60)[0].strip() == "won"
    assert answer is not None
    assert (answer.approved, answer.scope, answer.approver, answer.channel) == (
        True, "session", "ana@tui", "tui")
    assert log.pending_approvals() == []


def test_racing_approvers_in_two_processes_get_one_winner(log: AuditLog, db_path: Path) -> None:
    _, approval_id = _ask(log)
    racers = {who: _answer_elsewhere(db_path, approval_id, who == "yes@a", who)
              for who in ("yes@a", "no@b")}
    results = {who: proc.communicate(timeout=60)[0].strip() for who, proc in racers.items()}
    assert sorted(results.values()) == ["lost", "won"]
    winner = next(who for who, result in results.items() if result == "won")
    answer = log.wait_for_answer(approval_id, timeout_s=0)
    assert answer is not None
    assert answer.approver == winner


def test_a_wait_that_times_out_expires_the_request(log: AuditLog) -> None:
    _, approval_id = _ask(log)
    assert log.wait_for_answer(approval_id, timeout_s=0.1, poll_s=0.02) is None
    assert log.approval(approval_id).status == "expired"
    assert not log.answer_approval(approval_id, approved=True, scope="once", approver="late",
                                   channel="tui")


def test_a_zero_timeout_poll_leaves_the_question_open(log: AuditLog) -> None:
    _, approval_id = _ask(log)
    assert log.wait_for_answer(approval_id, timeout_s=0) is None
    assert log.approval(approval_id).status == "pending"
    assert log.answer_approval(approval_id, approved=True, scope="once", approver="ana",
                               channel="tui")


def test_a_request_with_no_time_to_answer_is_denied_at_once(log: AuditLog) -> None:
    _, approval_id = _ask(log, timeout_s=0)
    assert log.pending_approvals() == []
    assert log.wait_for_answer(approval_id, timeout_s=0) is None
    assert log.approval(approval_id).status == "expired"


class SteppedClock:
    """Wall-clock time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_an_answer_after_the_deadline_is_refused(db_path: Path) -> None:
    clock = SteppedClock()
    with AuditLog.open(db_path, clock=clock) as log:
        _, approval_id = _ask(log, timeout_s=30)
        clock.now += 29.9
        assert log.approval(approval_id).status == "pending"
        clock.now += 0.2
        assert not log.answer_approval(approval_id, approved=True, scope="once",
                                       approver="late", channel="tui")
        assert log.approval(approval_id).status == "expired"
