"""How fast the TUI opens and replays a large audit log.

``run_benchmarks()`` builds a database of 1,000 recorded sessions (a few
steps each, real frames from the fake sandbox, written through the real
:class:`~audit.log.AuditLog`), then measures, headless through Textual's
Pilot:

* the sessions browser's first paint on an open database (the F2 path),
* the same from a cold start: open the database, start the app, paint,
* loading the next page of the list,
* opening one session's replay with its frame painted,
* painting one 1280x800 frame as half blocks.

One dict per figure: ``{"name", "value", "unit", "target"}``.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from agent.settings import Settings
from audit.log import AuditLog
from audit.records import Outcome, SessionInfo
from policies.decision import Decision
from sandbox.actions import Action, Click, Drag, Key, Point, TypeText
from sandbox.base import Size
from sandbox.fake import FakeSandbox
from tui.app import DeskhandApp, TuiOptions
from tui.screens.replay import ReplayScreen
from tui.screens.sessions import SessionsScreen
from tui.store import TuiStore
from tui.widgets.frame_view import FrameView, Picture
from tui.widgets.session_table import SessionTable

SESSIONS = 1000
STEPS_PER_SESSION = 4
REPEATS = 5
TERMINAL = (160, 48)
POLICY_SHA = "0" * 64
OUTCOMES: tuple[Outcome, ...] = ("done", "done", "done", "failed", "denied", "interrupted")

Figure = dict[str, Any]


# -- a database of recorded sessions --------------------------------------------

def build_sessions_db(path: Path, *, sessions: int = SESSIONS,
                      steps: int = STEPS_PER_SESSION) -> list[str]:
    """Record ``sessions`` sessions of ``steps`` steps each into ``path``; returns their ids."""
    with AuditLog.open(path) as log:
        frames = _frame_pool(log, steps + 1)
        return [record_session(log, frames, number, steps) for number in range(sessions)]


def _frame_pool(log: AuditLog, count: int) -> list[str]:
    """Store ``count`` distinct fake-desktop frames; sessions share them, as
    sessions of the same task share most of their screens."""
    shas = []
    with FakeSandbox(size=Size(1280, 800)) as box:
        frame = box.screenshot()
        for seed in range(count):
            shas.append(log.put_frame(frame))
            frame = box.execute(sample_action(seed)).frame
    return shas


def record_session(log: AuditLog, frames: list[str], number: int, steps: int) -> str:
    """One finished session whose steps ran through ``frames`` (stored frame hashes)."""
    session_id = log.start_session(_session_info(f"task {number}: tidy folder {number % 37}"))
    decision = Decision(effect="allow", rule_ids=("ui.allow",), reason="ordinary work",
                        policy_sha256=POLICY_SHA)
    for index in range(steps):
        step_id = log.record_intent(session_id, index=index,
                                    action=sample_action(index),
                                    proposed_raw=None, validation_error=None,
                                    decision=decision, frame_before_sha256=frames[index],
                                    secret=False)
        log.record_result(step_id, status="done", output={}, error=None,
                          frame_after_sha256=frames[index + 1],
                          timings_ms={"total_ms": 12.0})
    outcome = OUTCOMES[number % len(OUTCOMES)]
    log.end_session(session_id, outcome=outcome, reason=f"{outcome} (benchmark)")
    return session_id


def sample_action(seed: int) -> Action:
    """A mix of the actions real sessions hold."""
    kind = seed % 4
    if kind == 0:
        return Click(x=100 + seed % 900, y=100 + seed % 500)
    if kind == 1:
        return TypeText(text=f"note {seed}\n")
    if kind == 2:
        return Drag(path=[Point(x=50, y=60), Point(x=400, y=300)])
    return Key(keys=["ctrl", "s"])


def _session_info(task: str) -> SessionInfo:
    return SessionInfo(task=task, planner="script", model="bench.yaml", policy_name="default",
                       policy_sha256=POLICY_SHA, sandbox_kind="fake", sandbox_image="",
                       screen_width=1280, screen_height=800, network=False)


# -- measurements -------------------------------------------------------------------

def _app(log: AuditLog, db: Path) -> DeskhandApp:
    settings = Settings(home=db.parent, db=db, sandbox="fake")
    return DeskhandApp(TuiOptions(settings=settings), TuiStore(log))


async def _sessions_first_paint_ms(log: AuditLog, db: Path) -> float:
    app = _app(log, db)
    async with app.run_test(size=TERMINAL) as pilot:
        await _settle(pilot)
        started = time.perf_counter()
        await app.push_screen(SessionsScreen(app.store))
        table = app.screen.query_one(SessionTable)
        return (await _painted_after(lambda: table.painted_at, started) - started) * 1000


async def _cold_open_ms(db: Path) -> float:
    gc.collect()
    started = time.perf_counter()
    with AuditLog.open(db) as log:
        app = _app(log, db)
        async with app.run_test(size=TERMINAL):
            await app.push_screen(SessionsScreen(app.store))
            table = app.screen.query_one(SessionTable)
            return (await _painted_after(lambda: table.painted_at, started) - started) * 1000


async def _next_page_ms(log: AuditLog, db: Path) -> float:
    app = _app(log, db)
    async with app.run_test(size=TERMINAL) as pilot:
        screen = SessionsScreen(app.store)
        await app.push_screen(screen)
        await _settle(pilot)
        table = screen.query_one(SessionTable)
        started = time.perf_counter()
        screen.load_next_page()
        painted = await _painted_after(lambda: table.painted_at, started)
        assert screen.loaded == 2 * screen.page_size, "the second page did not load"
        return (painted - started) * 1000


async def _replay_open_ms(log: AuditLog, db: Path, session_id: str) -> float:
    app = _app(log, db)
    async with app.run_test(size=TERMINAL) as pilot:
        await _settle(pilot)
        started = time.perf_counter()
        await app.push_screen(ReplayScreen(app.store, session_id))
        view = app.screen.query_one("#replay-frame", FrameView)
        return (await _painted_after(lambda: view.painted_at, started) - started) * 1000


async def _settle(pilot: Pilot[None]) -> None:
    """Let the app finish starting, and drop the garbage of earlier runs: the
    benchmark starts many apps in one process, and a full collection of their
    leftovers landing inside a measurement would measure the benchmark itself."""
    await pilot.pause()
    gc.collect()


async def _painted_after(painted_at: Callable[[], float | None], since: float) -> float:
    """Wait for a paint later than ``since``; returns when it happened."""
    give_up = time.perf_counter() + 30
    while (stamp := painted_at()) is None or stamp < since:
        if time.perf_counter() > give_up:
            raise AssertionError("nothing was painted")
        await asyncio.sleep(0.001)
    return stamp


def _halfblock_paint_ms() -> float:
    with FakeSandbox(size=Size(1280, 800)) as box:
        box.execute(TypeText(text="a frame with some text on it\n" * 20))
        frame = box.screenshot()
    from tui.imaging import decode_png

    image = decode_png(frame.png)
    view = FrameView()
    started = time.perf_counter()
    view._paint_now(Picture(key=frame.sha256, image=image), 96, 40)
    return (time.perf_counter() - started) * 1000


def _median(measure: Callable[[], float], repeats: int = REPEATS) -> float:
    return round(statistics.median(measure() for _ in range(repeats)), 1)


def _figure(name: str, value: float, target: float) -> Figure:
    return {"name": name, "value": value, "unit": "ms", "target": target}


def run_benchmarks(sessions: int = SESSIONS) -> list[Figure]:
    """Build the database, measure, return one figure per measurement."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        ids = build_sessions_db(db, sessions=sessions)
        with AuditLog.open(db) as log:
            first = _median(lambda: asyncio.run(_sessions_first_paint_ms(log, db)))
            page = _median(lambda: asyncio.run(_next_page_ms(log, db)))
            replay = _median(lambda: asyncio.run(_replay_open_ms(log, db, ids[len(ids) // 2])))
        cold = _median(lambda: asyncio.run(_cold_open_ms(db)))
    return [
        _figure(f"tui.sessions.first_paint_{sessions}", first, 300),
        _figure(f"tui.sessions.cold_open_{sessions}", cold, 300),
        _figure("tui.sessions.next_page", page, 100),
        _figure("tui.replay.open", replay, 300),
        _figure("tui.frame.halfblock_paint_1280x800", _median(_halfblock_paint_ms, 9), 30),
    ]


if __name__ == "__main__":
    for row in run_benchmarks():
        print(row)
