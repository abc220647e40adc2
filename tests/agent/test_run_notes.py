"""What a run tells its front end is kept in the audit log: the notes said before the
session exists (which desktop ``auto`` chose, and why) are recorded once it does, later
ones as they come, and the replay prints them.

Real parts: the run builder, the loop, the SQLite audit log, ``deskhand replay`` in a
subprocess; the desktop is the fake one whatever ``auto`` resolves to.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from agent import runs
from agent.registry import SandboxInputs
from agent.run_notes import RunNotes
from agent.settings import Settings
from audit.log import AuditLog
from audit.records import EventRecord, run_notes
from audit.verify import verify
from sandbox.base import Sandbox
from sandbox.fake import FakeSandbox

SCRIPT = """\
task: type a word
steps:
  - type: "hello"
"""


class Events:
    """An event log kept in memory: what RunNotes records."""

    def __init__(self) -> None:
        self.recorded: list[tuple[str, str, dict[str, object]]] = []

    def record_event(self, session_id: str, kind: str, data: dict[str, object]) -> None:
        self.recorded.append((session_id, kind, data))


def test_notes_said_before_the_session_wait_for_it_and_later_ones_go_in_at_once() -> None:
    said: list[str] = []
    notes, events = RunNotes(said.append), Events()
    notes("sandbox: local Xvfb (no engine)")
    assert said == ["sandbox: local Xvfb (no engine)"]
    assert events.recorded == []
    notes.start(events, "s1")
    notes("no accessibility tree: the fake desktop has no tree")
    notes.close()
    notes("said after the log closed")
    assert said[-1] == "said after the log closed"
    assert events.recorded == [
        ("s1", "run_note", {"text": "sandbox: local Xvfb (no engine)"}),
        ("s1", "run_note", {"text": "no accessibility tree: the fake desktop has no tree"})]


def test_the_sandbox_auto_chose_is_in_the_session_s_log_and_its_replay(tmp_path: Path) -> None:
    script = tmp_path / "word.yaml"
    script.write_text(SCRIPT, encoding="utf-8")
    kinds: list[str] = []

    def make_sandbox(kind: str, inputs: SandboxInputs) -> Sandbox:
        kinds.append(kind)
        return FakeSandbox(size=inputs.size)

    said: list[str] = []
    settings = Settings(home=tmp_path, db=tmp_path / "audit.db", sandbox="auto",
                        planner="script", perception=False)
    plan = runs.plan_run(settings, script=script)
    options = runs.RunOptions(unattended=True, note=said.append,
                              services=runs.RunServices(make_sandbox=make_sandbox))
    with runs.open_run(plan, options) as run:
        summary = run.loop.run(plan.task)
    with AuditLog.open(settings.db_path) as log:
        events: list[EventRecord] = log.events(summary.session_id)

    (kind,) = kinds
    assert said
    assert said[0].startswith("sandbox: docker (" if kind == "docker" else "sandbox: local Xvfb (")
    assert run_notes(events) == said
    replay = subprocess.run(
        [sys.executable, "-m", "agent", "replay", summary.session_id, "--db",
         str(settings.db_path)], capture_output=True, text=True, timeout=120,
        env={**os.environ, "COLUMNS": "200"})
    assert replay.returncode == 0, replay.stderr
    assert f"note: {said[0]}" in replay.stdout
    assert verify(settings.db_path).ok
