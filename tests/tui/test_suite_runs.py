"""The sessions browser groups `deskhand test` attempts by run and case, with statuses,
and opens any attempt's replay."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Tree

from audit import synthetic
from audit.log import AuditLog
from audit.records import SessionRecord
from tests.tui.conftest import make_app, make_settings, wait_until
from tui.screens.replay import ReplayScreen
from tui.screens.sessions import SessionsScreen
from tui.screens.suite_runs import SuiteRunsScreen
from tui.suite_runs import group_suite_runs

pytestmark = pytest.mark.anyio

# (run, case, attempt, suite_result status)
ATTEMPTS = [
    ("run-aaaa1111", "save-edits", 1, "passed"),
    ("run-aaaa1111", "sometimes", 1, "failed"),
    ("run-aaaa1111", "sometimes", 2, "passed"),
    ("run-aaaa1111", "deletes", 1, "blocked_by_policy"),
    ("run-bbbb2222", "save-edits", 1, "failed"),
]


def _record_attempts(db_path: Path) -> dict[tuple[str, str, int], str]:
    ids = {}
    with AuditLog.open(db_path) as log:
        plain = synthetic.session_info("an ordinary run")
        log.end_session(log.start_session(plain), outcome="done", reason="done")
        for run_id, case, attempt, status in ATTEMPTS:
            info = synthetic.session_info(f"Editor: {case}")
            info.extra = {"suite": "Editor basics", "case": case, "attempt": attempt,
                          "repeat": 0, "run_id": run_id}
            session_id = log.start_session(info)
            log.record_event(session_id, "suite_result", {"status": status, "run_id": run_id})
            log.end_session(session_id, outcome="done", reason="attempt over")
            ids[(run_id, case, attempt)] = session_id
    return ids


def test_attempts_group_by_run_and_case_and_a_retried_pass_is_flaky(db_path: Path) -> None:
    _record_attempts(db_path)
    with AuditLog.open(db_path) as log:
        sessions = log.list_sessions(limit=None)

        def status_of(session: SessionRecord) -> str:
            [event] = [e for e in log.events(session.id) if e.kind == "suite_result"]
            return str(event.data["status"])

        runs = group_suite_runs(sessions, status_of)
    assert [run.run_id for run in runs] == ["run-bbbb2222", "run-aaaa1111"], "newest first"
    first = runs[1]
    statuses = {case.case: case.status for case in first.cases.values()}
    assert statuses == {"save-edits": "passed", "sometimes": "flaky",
                        "deletes": "blocked_by_policy"}
    assert [a.attempt for a in first.cases["sometimes"].attempts] == [1, 2]
    assert first.counts() == {"passed": 1, "flaky": 1, "blocked_by_policy": 1}


async def test_g_shows_the_suite_runs_and_enter_replays_an_attempt(
        tmp_path: Path, db_path: Path) -> None:
    ids = _record_attempts(db_path)
    with AuditLog.open(db_path) as log:
        app = make_app(log, make_settings(tmp_path, db_path))
        async with app.run_test(size=(140, 40)) as pilot:
            await app.push_screen(SessionsScreen(app.store))
            await pilot.pause()
            await pilot.press("g")
            await wait_until(pilot, lambda: isinstance(app.screen, SuiteRunsScreen),
                             what="the suite runs")
            tree = app.screen.query_one(Tree)
            runs = [str(node.label) for node in tree.root.children]
            assert len(runs) == 2
            assert runs[1].startswith("Editor basics  run run-aaaa")
            assert "1 flaky" in runs[1]
            cases = {str(node.label) for node in tree.root.children[1].children}
            assert cases == {"save-edits  passed", "sometimes  flaky",
                             "deletes  blocked_by_policy"}
            sometimes = next(n for n in tree.root.children[1].children
                             if str(n.label).startswith("sometimes"))
            second = sometimes.children[1]
            assert second.data == ids[("run-aaaa1111", "sometimes", 2)]
            tree.select_node(second)
            await wait_until(pilot, lambda: isinstance(app.screen, ReplayScreen),
                             what="the attempt's replay")
            assert app.screen.session_id == second.data  # type: ignore[attr-defined]
