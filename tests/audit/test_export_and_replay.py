"""Replay in the terminal, re-run on a fresh sandbox, export to HTML (in Chromium) and GIF."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageStat
from rich.console import Console

from audit import synthetic
from audit.export import export_gif, export_html
from audit.log import AuditLog
from audit.replay import TerminalReplay, frame_difference, rerun
from policies.decision import Decision
from sandbox.actions import Action, Click, TypeText
from sandbox.fake import FakeSandbox

MAX_HTML_BYTES = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def hundred_steps(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("hundred") / "audit.db"
    with AuditLog.open(path) as log:
        session_id = synthetic.record_session(log, 100)
    return path, session_id


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("Chromium is not installed (Debian package `chromium`)")
    return found


def _screenshot(page: str, out: Path, profile: Path) -> Image.Image:
    subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--no-first-run",
         f"--user-data-dir={profile}", "--window-size=1400,1000", f"--screenshot={out}", page],
        check=True, capture_output=True, timeout=120)
    with Image.open(out) as shot:
        return shot.convert("RGB")


def test_a_hundred_step_export_is_small_and_renders_in_chromium(
        hundred_steps: tuple[Path, str], tmp_path: Path) -> None:
    db_path, session_id = hundred_steps
    page = tmp_path / "session.html"
    with AuditLog.open(db_path) as log:
        stats = export_html(log, session_id, page)
    assert stats.bytes <= MAX_HTML_BYTES
    assert (stats.steps, stats.frames) == (100, 101)
    assert 1 <= stats.keyframes < stats.frames  # most frames are patches on the one before
    first = _screenshot(page.as_uri(), tmp_path / "first.png", tmp_path / "profile")
    later = _screenshot(page.as_uri() + "#60", tmp_path / "later.png", tmp_path / "profile")
    screen = (20, 80, 1000, 650)  # where the canvas sits at this window size
    for shot in (first, later):
        stats_of_screen = ImageStat.Stat(shot.crop(screen))
        assert max(stats_of_screen.stddev) > 20, "the frame area is blank"
        assert max(stats_of_screen.mean) > 60, "the frame area is black"
    share, _ = frame_difference(first.crop(screen), later.crop(screen))
    assert share > 0.01, "step 60 looks exactly like step 0"


def test_a_gif_has_one_frame_per_step(hundred_steps: tuple[Path, str], tmp_path: Path) -> None:
    db_path, session_id = hundred_steps
    with AuditLog.open(db_path) as log:
        stats = export_gif(log, session_id, tmp_path / "s.gif", width=320)
    with Image.open(tmp_path / "s.gif") as gif:
        assert (getattr(gif, "n_frames", 1), gif.width, stats.frames) == (100, 320, 100)


def test_the_replay_prints_every_step_when_not_interactive(recorded: tuple[Path, str]) -> None:
    db_path, session_id = recorded
    out = io.StringIO()
    console = Console(file=out, width=160, color_system="truecolor", force_terminal=True)
    with AuditLog.open(db_path) as log:
        TerminalReplay(log, session_id[:6], console, columns=60).print_all()
    text = out.getvalue()
    assert text.count("▀") >= 12 * 60 * 10  # a picture per step
    for expected in ("click at (400, 200)", "type 'note 1'", "gui.allow",
                     "approved by ana@tty via terminal", "12/12"):
        assert expected in text


def test_a_replay_without_colour_names_frames_instead_of_drawing(
        recorded: tuple[Path, str]) -> None:
    db_path, session_id = recorded
    out = io.StringIO()
    with AuditLog.open(db_path) as log:
        TerminalReplay(log, session_id, Console(file=out, width=120)).print_all()
    assert "▀" not in out.getvalue()
    assert out.getvalue().count("frame ") >= 12


def test_stepping_through_with_keys(recorded: tuple[Path, str]) -> None:
    db_path, session_id = recorded
    keys = iter(["n", "n", "p", "G", "q"])
    out = io.StringIO()
    with AuditLog.open(db_path) as log:
        replay = TerminalReplay(log, session_id, Console(file=out, width=160), columns=40)
        replay.interactive(lambda: next(keys))
    shown = [line for line in out.getvalue().splitlines() if "/12 " in line]
    assert [line.split("/12")[0].split()[-1] for line in shown] == ["1", "2", "3", "2", "12"]


ALLOW = Decision(effect="allow", rule_ids=("gui.allow",), reason="ok", policy_sha256="ab" * 32)


def _record_on(log: AuditLog, sandbox: FakeSandbox) -> str:
    session_id = log.start_session(synthetic.session_info())
    before = log.put_frame(sandbox.screenshot())
    actions: list[Action] = [Click(x=50, y=60), TypeText(text="hello"),
                             TypeText(text="hunter2-secret")]
    for index, action in enumerate(actions):
        secret = "secret" in getattr(action, "text", "")
        step_id = log.record_intent(session_id, index=index, action=action,
                                    proposed_raw=None, validation_error=None, decision=ALLOW,
                                    frame_before_sha256=before, secret=secret)
        result = sandbox.execute(action)
        after = log.put_frame(result.frame)
        log.record_result(step_id, status="done", output=result.output, error=None,
                          frame_after_sha256=after, timings_ms={})
        before = after
    log.end_session(session_id, outcome="done", reason="ok")
    return session_id


def test_rerun_on_a_fresh_sandbox_reports_frame_differences(log: AuditLog) -> None:
    with FakeSandbox() as original:
        session_id = _record_on(log, original)
    with FakeSandbox() as fresh:
        diffs = rerun(log, session_id, fresh)
        ran = list(fresh.executed)
    assert [d.action for d in diffs[:2]] == ["click at (50, 60)", "type 'hello'"]
    assert diffs[0].identical
    assert diffs[1].identical
    assert diffs[2].skipped == "secret text is not stored"
    assert len(ran) == 2


def test_frame_difference_measures_share_and_mean() -> None:
    black = Image.new("RGB", (10, 10))
    half = black.copy()
    half.paste((255, 255, 255), (0, 0, 10, 5))
    assert frame_difference(black, black) == (0.0, 0.0)
    assert frame_difference(black, half) == (0.5, 127.5)
    assert frame_difference(black, Image.new("RGB", (5, 5))) == (1.0, 255.0)
