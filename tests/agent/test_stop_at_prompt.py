"""Ctrl-C, SIGTERM, SIGHUP or a closed terminal at the approval prompt of `deskhand run`
deny that step *and* stop the run: the session ends interrupted with the cause named,
exit 130, nothing left pending, no later step run.  Driven through a real pty."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pexpect
import pytest

from audit.log import AuditLog

ASKING_SCRIPT = """\
task: try something destructive, then carry on
steps:
  - screenshot
  - type: "rm -rf ~/keep\\n"
  - type: "echo carried on\\n"
"""


def start_run(tmp_path: Path, *extra: str) -> pexpect.spawn:
    script = tmp_path / "asks.yaml"
    script.write_text(ASKING_SCRIPT, encoding="utf-8")
    return pexpect.spawn(
        sys.executable,
        ["-m", "agent", "run", "--script", str(script), "--sandbox", "fake",
         "--db", str(tmp_path / "audit.db"), "--no-perception", *extra],
        env={**os.environ, "DESKHAND_HOME": str(tmp_path), "COLUMNS": "200"},
        encoding="utf-8", timeout=60, dimensions=(40, 200),
    )


def wait_for_prompt(child: pexpect.spawn) -> None:
    child.expect("approval needed: type")
    child.expect(r"\] deny")


def finish(child: pexpect.spawn) -> tuple[int, str]:
    child.expect(pexpect.EOF)
    output = str(child.before)
    child.close()
    assert child.exitstatus is not None, f"killed by signal {child.signalstatus}: {output}"
    return child.exitstatus, output


def ctrl_c(child: pexpect.spawn) -> None:
    child.sendintr()


def sigterm(child: pexpect.spawn) -> None:
    child.kill(signal.SIGTERM)


def sighup(child: pexpect.spawn) -> None:
    child.kill(signal.SIGHUP)


def end_of_input(child: pexpect.spawn) -> None:
    child.sendeof()


@pytest.mark.parametrize(
    ("stop", "cause"),
    [(ctrl_c, "Ctrl-C (SIGINT)"), (sigterm, "SIGTERM"), (sighup, "SIGHUP"),
     (end_of_input, "the terminal closed")],
)
def test_a_stop_at_the_prompt_denies_the_step_and_ends_the_run(
        tmp_path: Path, stop: Callable[[pexpect.spawn], None], cause: str) -> None:
    child = start_run(tmp_path)
    wait_for_prompt(child)
    stop(child)
    code, output = finish(child)

    assert code == 130, output
    with AuditLog.open(tmp_path / "audit.db") as log:
        [session] = log.list_sessions()
        steps = log.steps(session.id)
        approvals = log.approvals(session.id)
    assert session.outcome == "interrupted", session
    assert cause in (session.reason or "")
    assert [s.status for s in steps] == ["done", "denied"], "the run went on after the stop"
    assert cause in (steps[1].error or "")
    [approval] = approvals
    assert approval.status == "denied"
    assert "carried on" not in output


def test_a_second_ctrl_c_during_clean_up_leaves_nothing_pending(tmp_path: Path) -> None:
    child = start_run(tmp_path)
    wait_for_prompt(child)
    child.sendintr()
    child.sendintr()
    child.kill(signal.SIGTERM)
    code, output = finish(child)

    assert code == 130, output
    with AuditLog.open(tmp_path / "audit.db") as log:
        [session] = log.list_sessions()
        steps = log.steps(session.id)
        approvals = log.approvals(session.id)
    assert session.outcome == "interrupted"
    assert "interrupted by" in (session.reason or "")
    assert "pending" not in [s.status for s in steps]
    assert "pending" not in [a.status for a in approvals]
