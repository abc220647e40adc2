"""The command that starts the TUI, and leaving it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app as deskhand
from audit.log import AuditLog
from tests.tui.conftest import make_app, make_settings
from tui.graphics import detect_graphics
from tui.screens.attach import AttachScreen
from tui.screens.task import TaskScreen


def test_deskhand_has_a_tui_command_with_its_options() -> None:
    result = CliRunner().invoke(deskhand, ["tui", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--db", "--attach", "--policy", "--sandbox", "--script", "--graphics"):
        assert option in result.output


def test_an_unknown_graphics_mode_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(deskhand, ["tui", "--db", str(tmp_path / "a.db"),
                                           "--graphics", "ascii-art"])
    assert result.exit_code == 2


def test_graphics_fall_back_to_half_blocks_off_a_terminal() -> None:
    assert detect_graphics("auto") == "halfblock"  # pytest's stdout is not a terminal
    assert detect_graphics("sixel") == "sixel"


@pytest.mark.anyio
@pytest.mark.parametrize(("attach", "first_screen"), [(False, TaskScreen),
                                                      (True, AttachScreen)])
async def test_the_app_opens_on_its_first_screen_and_ctrl_q_quits(
        tmp_path: Path, db_path: Path, audit_log: AuditLog, attach: bool,
        first_screen: type) -> None:
    app = make_app(audit_log, make_settings(tmp_path, db_path), attach=attach)
    async with app.run_test(size=(120, 40)) as pilot:
        assert isinstance(app.screen, first_screen)
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert not app.is_running
