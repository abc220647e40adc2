"""Checkpoints and rollbacks on every timeline: the marks, the terminal replay, the HTML export."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from rich.console import Console

from audit.export import export_html
from audit.log import AuditLog
from audit.replay import TerminalReplay
from audit.undo_marks import undo_marks
from tests.audit.undo_session import (
    CHECKPOINTED,
    REFUSED_BEFORE,
    SKIPPED,
    UNDONE_BEFORE,
    record_undo_session,
)


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "audit.db"
    with AuditLog.open(path) as log:
        return path, record_undo_session(log)


def test_marks_sit_beside_the_step_they_precede_or_that_served_them(
        recorded: tuple[Path, str]) -> None:
    path, session_id = recorded
    with AuditLog.open_read_only(path) as log:
        marks = undo_marks(log.events(session_id), log.steps(session_id))
    placed = [(m.kind, m.step, m.position) for m in marks]
    assert placed == [("checkpoint", CHECKPOINTED, CHECKPOINTED), ("skipped", SKIPPED, SKIPPED),
                      ("rollback", CHECKPOINTED, UNDONE_BEFORE), ("refused", 0, REFUSED_BEFORE)]
    checkpoint, skipped, rollback, refused = (m.text for m in marks)
    assert checkpoint.startswith("before step 1: 4 files, 1.51 MB (1.51 MB new), 0.4 s, ")
    assert skipped == "before step 2: skipped: reading it out took over 30 s"
    assert rollback == "files put back as before step 1 (4 files)"
    assert refused == "undo refused: step 0 has no checkpoint; nothing was changed"
    assert (marks[0].files, marks[0].size) == (4, 1_512_003)


def test_the_terminal_replay_shows_each_mark_in_its_steps_panel(
        recorded: tuple[Path, str]) -> None:
    path, session_id = recorded
    out = io.StringIO()
    with AuditLog.open_read_only(path) as log:
        TerminalReplay(log, session_id, Console(file=out, width=200, color_system=None),
                       columns=40).print_all()
    panels = re.split(r"─ \d/5 ─", out.getvalue())[1:]
    assert len(panels) == 5
    assert "checkpoint" not in panels[0]
    assert "checkpoint before step 1: 4 files, 1.51 MB" in panels[1]
    assert "checkpoint before step 2: skipped: reading it out took over 30 s" in panels[2]
    assert "rollback files put back as before step 1 (4 files)" in panels[3]
    assert "rollback undo refused: step 0 has no checkpoint" in panels[4]


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("Chromium is not installed (Debian package `chromium`)")
    return found


def _rendered(page: str, profile: Path) -> str:
    """The page's DOM after its script ran, as Chromium built it."""
    done = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update",
         f"--user-data-dir={profile}", "--dump-dom", page],
        check=True, capture_output=True, text=True, timeout=120)
    return done.stdout


def test_the_html_export_draws_the_marks_on_its_timeline(recorded: tuple[Path, str],
                                                         tmp_path: Path) -> None:
    path, session_id = recorded
    page = tmp_path / "session.html"
    with AuditLog.open_read_only(path) as log:
        export_html(log, session_id, page)
    data = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>',
                                page.read_text("utf-8"), re.S).group(1))  # type: ignore[union-attr]
    assert [(m["kind"], m["position"]) for m in data["undo"]] == [
        ("checkpoint", 1), ("skipped", 2), ("rollback", 3), ("refused", 4)]
    dom = _rendered(page.as_uri() + "#3", tmp_path / "profile")
    timeline = re.findall(r"<li[^>]*>(.*?)</li>", dom.split('id="timeline"')[1].split("</ol>")[0])
    assert [item for item in timeline if not item.startswith("#")] == [
        "◆ #1 type 'note 1'", "◇ #2 key enter",
        "⟲ files put back as before step 1 (4 files)",
        "⟲ undo refused: step 0 has no checkpoint; nothing was changed"]
    assert timeline.index("⟲ files put back as before step 1 (4 files)") == \
        timeline.index(next(t for t in timeline if t.startswith("#3 "))) - 1
    details = dom.split('id="details"')[1].split("</table>")[0]
    assert "<td>rollback</td><td class=\"rollback\">files put back as before step 1" in details
