"""Screenshots a client accepts, and coordinates that map back exactly."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image

from agent.mcp.requests import propose_in_screenshot_space
from agent.mcp.screen import MAX_IMAGE_BYTES, MAX_LONG_SIDE_PX, ScreenSpace, screenshot_size
from agent.wire_actions import CoordinateScaler
from audit.log import AuditLog
from sandbox.actions import Click, Drag, MouseMove, Zoom
from sandbox.base import Frame, Size
from tests.mcpserver.conftest import data_of, image_of, stdio_session, text_of

pytestmark = pytest.mark.anyio


def _noise_frame(size: Size) -> Frame:
    pixels = os.urandom(size.width * size.height * 3)
    image = Image.frombytes("RGB", (size.width, size.height), pixels)
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return Frame.from_png(out.getvalue(), size.width, size.height)


@pytest.mark.parametrize("screen", [Size(1280, 800), Size(1920, 1200), Size(3840, 2160),
                                    Size(800, 3000)])
def test_screenshot_size_fits_the_limits_and_keeps_the_aspect(screen: Size) -> None:
    shot = screenshot_size(screen)
    assert max(shot.width, shot.height) <= MAX_LONG_SIDE_PX
    assert shot.width <= screen.width
    assert abs(shot.width / shot.height - screen.width / screen.height) < 0.01


def test_a_screen_that_does_not_fit_in_a_megabyte_as_png_is_sent_as_jpeg() -> None:
    space = ScreenSpace(Size(1920, 1200))
    image = space.encode(_noise_frame(Size(1920, 1200)))
    assert image.media_type == "image/jpeg"
    assert len(image.data) <= MAX_IMAGE_BYTES
    assert Image.open(io.BytesIO(image.data)).size == (space.size.width, space.size.height)


def test_points_in_screenshot_space_become_sandbox_pixels() -> None:
    space = ScreenSpace(Size(1920, 1200))
    scaler = CoordinateScaler(space.screen, space.size)
    click = propose_in_screenshot_space({"type": "click", "x": 1000, "y": 500}, space).action
    drag = propose_in_screenshot_space({"type": "drag", "path": [[0, 0], {"x": 99, "y": 50}]},
                                       space).action
    zoom = propose_in_screenshot_space({"type": "zoom", "x0": 10, "y0": 10, "x1": 110,
                                        "y1": 60}, space).action
    assert isinstance(click, Click)
    assert (click.x, click.y) == scaler.to_sandbox(1000, 500)
    assert scaler.to_model(click.x or 0, click.y or 0) == (1000, 500)
    assert isinstance(drag, Drag)
    assert (drag.path[1].x, drag.path[1].y) == scaler.to_sandbox(99, 50)
    assert isinstance(zoom, Zoom)
    assert (zoom.x0, zoom.y0, zoom.x1, zoom.y1) == scaler.region_to_sandbox((10, 10, 110, 60))


def test_a_point_off_the_screenshot_is_refused_with_the_reason() -> None:
    space = ScreenSpace(Size(1920, 1200))
    proposed = propose_in_screenshot_space({"type": "click", "x": space.size.width + 40,
                                            "y": 5}, space)
    assert proposed.action is None
    assert "outside" in proposed.error
    text = propose_in_screenshot_space({"type": "click", "x": "ten", "y": 5}, space)
    assert "screenshot pixels" in text.error


@pytest.mark.x11
async def test_a_large_screen_is_shown_scaled_and_pointed_at_exactly(
        tmp_path: Path, db_path: Path) -> None:
    args = ["--sandbox", "local", "--screen", "1920x1200", "--db", str(db_path),
            "--no-perception"]
    expected = screenshot_size(Size(1920, 1200))
    scaler = CoordinateScaler(Size(1920, 1200), expected)
    async with stdio_session(args, tmp_path / "server.log") as session:
        shot = await session.call_tool("screenshot", {})
        moved = await session.call_tool("computer", {"action": {
            "type": "mouse_move", "x": 1000, "y": 500}, "screenshot": False})
        where = await session.call_tool("computer", {"action": {"type": "cursor_position"}})
        session_id = data_of(await session.call_tool("session", {}))["session_id"]
    data, image = image_of(shot)
    assert image.size == (expected.width, expected.height)
    assert len(data) <= MAX_IMAGE_BYTES
    assert data_of(shot)["screen_size"] == "1920x1200"
    assert not moved.isError, text_of(moved)
    assert (data_of(where)["x"], data_of(where)["y"]) == (1000, 500)
    with AuditLog.open(db_path) as log:
        move = next(s for s in log.steps(session_id) if s.action_type == "mouse_move")
    assert isinstance(move.action, MouseMove)
    assert (move.action.x, move.action.y) == scaler.to_sandbox(1000, 500)
