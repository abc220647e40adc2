"""The command that starts the TUI, and leaving it."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, Select
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


@pytest.mark.anyio
async def test_the_task_screen_offers_model_base_url_and_cost_for_model_planners(
        tmp_path: Path, db_path: Path, audit_log: AuditLog) -> None:
    app = make_app(audit_log, make_settings(tmp_path, db_path))
    async with app.run_test(size=(140, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, TaskScreen)
        model = screen.query_one("#task-model", Input)
        assert model.disabled, "a script planner has no model to pick"
        screen.query_one("#task-planner", Select).value = "openai"
        await pilot.pause()
        assert not model.disabled
        model.value = "qwen2.5-vl"
        screen.query_one("#task-base-url", Input).value = "http://127.0.0.1:8000/v1"
        screen.query_one("#task-max-cost", Input).value = "0.25"
        request = screen.request()
    assert (request.planner, request.model, request.base_url, request.max_cost_usd) == (
        "openai", "qwen2.5-vl", "http://127.0.0.1:8000/v1", 0.25)
