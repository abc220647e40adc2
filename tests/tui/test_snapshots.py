"""How the main screens look (SVG snapshots; `pytest --snapshot-update` to accept changes).

Session ids and start times are random and clock-dependent; the screens read
the real audit log through :class:`StableLog`, which renames sessions and
spaces their start times a minute apart, so a snapshot only changes when the
screen does.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from textual.pilot import Pilot
from textual.widgets import Input

from agent.loop import StepReport
from agent.planners.base import Turn
from audit.log import AuditLog
from audit.records import (
    ApprovalRecord,
    ApprovalRequest,
    EventRecord,
    Scope,
    SessionInfo,
    SessionRecord,
    StepRecord,
    Usage,
)
from policies.decision import Decision
from sandbox.actions import Click, TypeText
from sandbox.base import Frame
from sandbox.fake import FakeSandbox
from tests.audit.undo_session import CHECKPOINTED, UNDONE_BEFORE, record_undo_session
from tests.tui.conftest import make_settings
from tui.app import DeskhandApp, TuiOptions
from tui.bench import build_sessions_db
from tui.run_messages import FrameCaptured, StepReported, TurnPlanned
from tui.runner import RunServices
from tui.screens.live import LiveScreen
from tui.screens.replay import ReplayScreen
from tui.screens.sessions import SessionsScreen
from tui.screens.undo_confirm import UndoConfirmScreen
from tui.step_undo import UndoTarget
from tui.store import TuiStore
from tui.widgets.approval_queue import ApprovalQueue
from tui.widgets.timeline import StepTimeline

SnapCompare = Callable[..., bool]
SIZE = (140, 40)
BASE_TIME = datetime(2026, 1, 1, 9, 0).timestamp()
TEN_DAYS_S = 864000.0
TASK = "Clean up ~/keep"
POLICY_SHA = "0" * 64


class StableLog:
    """The real audit log, read with fixed session ids and start times."""

    def __init__(self, log: AuditLog) -> None:
        self.log = log
        self.path = log.path
        oldest_first = sorted(log.list_sessions(limit=None), key=lambda s: s.started_at)
        self._stable_id = {s.id: f"{n + 1:04d}" * 8 for n, s in enumerate(oldest_first)}
        self._real_id = {v: k for k, v in self._stable_id.items()}
        self._started = {s.id: BASE_TIME + 60 * n for n, s in enumerate(oldest_first)}

    def list_sessions(self, *, outcome: str | None = None, since: Any = None,
                      until: datetime | float | None = None, text: str | None = None,
                      limit: int | None = 50) -> list[SessionRecord]:
        records = [self._session(s) for s in self.log.list_sessions(outcome=outcome,
                                                                     limit=None)]
        if until is not None:
            records = [r for r in records if r.started_at < float(until)]  # type: ignore[arg-type]
        return records[:limit]

    def get_session(self, id_or_prefix: str) -> SessionRecord:
        return self._session(self.log.get_session(self._real_id.get(id_or_prefix,
                                                                     id_or_prefix)))

    def steps(self, session_id: str) -> list[StepRecord]:
        real = self._real_id.get(session_id, session_id)
        return [dataclasses.replace(step, session_id=session_id)
                for step in self.log.steps(real)]

    def pending_approvals(self, session_id: str | None = None) -> list[ApprovalRequest]:
        return [dataclasses.replace(request, session_id=self._stable_id.get(
                    request.session_id, request.session_id))
                for request in self.log.pending_approvals(session_id)]

    def answer_approval(self, approval_id: int, *, approved: bool, scope: Scope,
                        approver: str, channel: str) -> bool:
        return self.log.answer_approval(approval_id, approved=approved, scope=scope,
                                        approver=approver, channel=channel)

    def get_frame_image(self, sha256: str) -> Image.Image:
        return self.log.get_frame_image(sha256)

    def events(self, session_id: str) -> list[EventRecord]:
        return self.log.events(self._real_id.get(session_id, session_id))

    def approvals(self, session_id: str) -> list[ApprovalRecord]:
        return [dataclasses.replace(approval, session_id=session_id)
                for approval in self.log.approvals(self._real_id.get(session_id, session_id))]

    def record_event(self, session_id: str, kind: str, data: dict[str, Any]) -> None:
        self.log.record_event(self._real_id.get(session_id, session_id), kind, data)

    def _session(self, record: SessionRecord) -> SessionRecord:
        started = self._started.get(record.id, BASE_TIME)
        ended = None if record.ended_at is None else started + 42
        return dataclasses.replace(record, id=self._stable_id.get(record.id, record.id),
                                   started_at=started, ended_at=ended)


@pytest.fixture
def stable_app(tmp_path: Path, db_path: Path) -> Iterator[Callable[[], DeskhandApp]]:
    """Builds the app on the test's database, read through :class:`StableLog`."""
    logs: list[AuditLog] = []

    def build() -> DeskhandApp:
        log = AuditLog.open(db_path)
        logs.append(log)
        # No OCR of the approval crop: its words arrive from a thread, whenever.
        options = TuiOptions(settings=make_settings(tmp_path, db_path), user="tester",
                             script=Path("examples/terminal-note.yaml"),
                             read_screen_words=False)
        return DeskhandApp(options, TuiStore(StableLog(log)), services=RunServices())

    yield build
    for log in logs:
        log.close()


def _desktop_frame() -> tuple[Frame, FakeSandbox]:
    box = FakeSandbox()
    box.start()
    box.execute(TypeText(text="$ ls ~/keep\nnotes.txt  photos  taxes-2025.pdf\n"
                              "Delete all files in ~/keep?    [ Delete ]    [ Cancel ]\n"))
    return box.screenshot(), box


REPORTS = [
    StepReport(index=0, description="key ctrl+alt+t", effect="allow", status="done",
               rule_ids=("ui.allow",), reason="", elapsed_ms=41, settle_ms=30),
    StepReport(index=1, description="type '$ ls ~/keep\\n'", effect="allow", status="done",
               rule_ids=("ui.allow",), reason="", elapsed_ms=63),
    StepReport(index=2, description="key ctrl+alt+f1", effect="deny", status="denied",
               rule_ids=("keys.vt-switch",), reason="would leave the sandboxed desktop",
               elapsed_ms=2),
    StepReport(index=3, description="type 'rm -rf ~/keep\\n'", effect="ask", status="done",
               rule_ids=("shell.destructive",), reason="destructive shell command",
               elapsed_ms=4210, approver="tester@tui"),
    StepReport(index=4, description="invalid action", effect="invalid", status="invalid",
               rule_ids=(), reason="click: point (2000, 10) is outside the screen",
               elapsed_ms=1),
    StepReport(index=5, description="click at (230, 58)", effect="allow", status="error",
               rule_ids=("ui.allow",), reason="executor timed out", elapsed_ms=30000),
]


async def _show_live(pilot: Pilot[None], frame: Frame, *, usage: Usage | None = None) -> None:
    app = pilot.app
    assert isinstance(app, DeskhandApp)
    screen = LiveScreen(app.store, app.options.approver, prepared=None)
    await app.push_screen(screen)
    screen.show_running(TASK)
    screen.post_message(FrameCaptured(frame))
    for report in REPORTS:
        screen.post_message(StepReported(report))
    if usage is not None:
        screen.post_message(TurnPlanned(Turn(usage=usage)))
    await _until(pilot, lambda: screen.query_one(StepTimeline).row_count == len(REPORTS))


async def _until(pilot: Pilot[None], ready: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Let the app work until ``ready()``; a loaded machine may need several rounds."""
    deadline = time.monotonic() + timeout_s
    while not ready() and time.monotonic() < deadline:
        await pilot.pause(0.05)
    await pilot.pause()
    assert ready(), "the screen did not reach the state to snapshot"


@pytest.fixture
def running_log(db_path: Path) -> Iterator[AuditLog]:
    """The log of a run still in progress (its session lock held)."""
    with AuditLog.open(db_path) as log:
        yield log


def _request_approval(log: AuditLog, frame: Frame) -> None:
    session_id = log.start_session(SessionInfo(
        task=TASK, planner="script", model="cleanup.yaml", policy_name="default",
        policy_sha256=POLICY_SHA, sandbox_kind="fake", sandbox_image="",
        screen_width=1280, screen_height=800, network=False))
    log.put_frame(frame)
    decision = Decision(effect="ask", rule_ids=("ui.confirm-delete",),
                        reason="A button that deletes files.", policy_sha256=POLICY_SHA)
    step_id = log.record_intent(session_id, index=6, action=(
        Click(x=230, y=58)), proposed_raw=None, validation_error=None, decision=decision,
        frame_before_sha256=frame.sha256, secret=False)
    log.request_approval(step_id, frame_sha256=frame.sha256, summary="click at (230, 58)",
                         rule_ids=decision.rule_ids, reason=decision.reason,
                         timeout_s=TEN_DAYS_S)


async def _steady_cursors(pilot: Pilot[None]) -> None:
    # A focused input's cursor blinks every 0.5 s: under load the picture was
    # taken with it off.  Steady, it is always drawn.
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause()


def test_task_screen(snap_compare: SnapCompare, stable_app: Callable[[], DeskhandApp]) -> None:
    assert snap_compare(stable_app(), terminal_size=SIZE, run_before=_steady_cursors)


def test_live_session_with_a_timeline(snap_compare: SnapCompare,
                                      stable_app: Callable[[], DeskhandApp]) -> None:
    frame, _box = _desktop_frame()
    usage = Usage(input_tokens=18234, output_tokens=912, cost_usd=0.0683)

    async def show(pilot: Pilot[None]) -> None:
        await _show_live(pilot, frame, usage=usage)

    assert snap_compare(stable_app(), terminal_size=SIZE, run_before=show)


def test_approval_queue(snap_compare: SnapCompare, stable_app: Callable[[], DeskhandApp],
                        running_log: AuditLog) -> None:
    frame, _box = _desktop_frame()
    _request_approval(running_log, frame)

    async def show(pilot: Pilot[None]) -> None:
        await _show_live(pilot, frame)
        queue = pilot.app.screen.query_one(ApprovalQueue)
        await _until(pilot, lambda: queue.current is not None)

    assert snap_compare(stable_app(), terminal_size=SIZE, run_before=show)


def test_sessions_browser(snap_compare: SnapCompare, stable_app: Callable[[], DeskhandApp],
                          db_path: Path) -> None:
    build_sessions_db(db_path, sessions=8, steps=2)

    async def show(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, DeskhandApp)
        await app.push_screen(SessionsScreen(app.store))
        await pilot.pause()

    assert snap_compare(stable_app(), terminal_size=SIZE, run_before=show)


def test_replay(snap_compare: SnapCompare, stable_app: Callable[[], DeskhandApp],
                db_path: Path) -> None:
    build_sessions_db(db_path, sessions=1, steps=3)

    async def show(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, DeskhandApp)
        (session,) = app.store.sessions_before(None, 1)
        await app.push_screen(ReplayScreen(app.store, session.id))
        await pilot.pause()

    assert snap_compare(stable_app(), terminal_size=SIZE, run_before=show)


def test_replay_with_checkpoints_and_a_rollback(snap_compare: SnapCompare,
                                                stable_app: Callable[[], DeskhandApp],
                                                db_path: Path) -> None:
    with AuditLog.open(db_path) as log:
        record_undo_session(log)

    async def show(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, DeskhandApp)
        (session,) = app.store.sessions_before(None, 1)
        replay = ReplayScreen(app.store, session.id)
        await app.push_screen(replay)
        await pilot.press("n", "n", "n")
        await _until(pilot, lambda: replay.index == UNDONE_BEFORE)

    assert snap_compare(stable_app(), terminal_size=SIZE, run_before=show)


def test_undo_confirmation(snap_compare: SnapCompare, stable_app: Callable[[], DeskhandApp],
                           running_log: AuditLog) -> None:
    frame, _box = _desktop_frame()
    session_id = record_undo_session(running_log, end=False)

    async def show(pilot: Pilot[None]) -> None:
        await _show_live(pilot, frame)
        screen = pilot.app.screen
        assert isinstance(screen, LiveScreen)
        screen.undo.ask(UndoTarget(session_id, CHECKPOINTED, "type 'rm -rf ~/work\\n'"))
        await _until(pilot, lambda: isinstance(pilot.app.screen, UndoConfirmScreen))

    assert snap_compare(stable_app(), terminal_size=SIZE, run_before=show)
