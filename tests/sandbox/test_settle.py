"""Settling: the frame after an action shows its effect even when the effect comes late."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image

from sandbox.actions import Click
from sandbox.local import LocalSandbox

pytestmark = [pytest.mark.x11, pytest.mark.slow]

# Must match tests/sandbox/apps/late_redraw_app.py.
PALETTE = [0xD62728, 0x2CA02C, 0x1F77B4, 0xFF7F0E, 0x9467BD, 0x17BECF, 0x8C564B]
WINDOW = (200, 150, 400, 300)
CLICKS = 100


def rgb(color: int) -> tuple[int, int, int]:
    return (color >> 16) & 0xFF, (color >> 8) & 0xFF, color & 0xFF


def test_late_redraws_are_in_the_settled_frame(launch_app: Callable[..., None],
                                               poll: Callable[..., Any]) -> None:
    x, y, width, height = WINDOW
    centre = (x + width // 2, y + height // 2)
    with LocalSandbox() as box:
        launch_app(box, "late_redraw_app.py", [*map(str, WINDOW), "20240601"])
        poll(lambda: pixel(box.screenshot().png, centre) == rgb(PALETTE[0]), what="the app")
        shown = [pixel(box.execute(Click(x=centre[0], y=centre[1])).frame.png, centre)
                 for _ in range(CLICKS)]
    expected = [rgb(PALETTE[n % len(PALETTE)]) for n in range(1, CLICKS + 1)]
    right = sum(got == want for got, want in zip(shown, expected, strict=True))
    assert right >= 0.99 * CLICKS, f"{CLICKS - right} of {CLICKS} frames predate the redraw"


def pixel(png: bytes, point: tuple[int, int]) -> tuple[int, int, int]:
    value = Image.open(io.BytesIO(png)).convert("RGB").getpixel(point)
    assert isinstance(value, tuple)
    return value[0], value[1], value[2]
