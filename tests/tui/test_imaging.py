"""Pictures for the terminal: fitting, half blocks, crops and action markers."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image, ImageStat
from rich.color import Color

from audit.render import MARK_COLOR, draw_action
from sandbox.actions import Click, Drag, Key, Point, TypeText
from sandbox.base import Frame
from sandbox.local import LocalSandbox
from tests.sandbox.conftest import wait_until
from tui.imaging import (
    UPPER_HALF,
    HalfBlockPainter,
    crop_around,
    crop_box,
    downscale,
    fit_cells,
)
from tui.widgets.approval_card import time_left
from tui.widgets.frame_view import FrameView, Picture


@pytest.mark.parametrize(("size", "grid", "expected"), [
    ((1280, 800), (200, 50), (160, 50)),   # height-bound: 50 rows = 100 pixel rows
    ((1280, 800), (80, 100), (80, 25)),    # width-bound
    ((100, 100), (10, 10), (10, 5)),
    ((0, 100), (10, 10), (0, 0)),
])
def test_fit_cells_keeps_the_aspect_ratio(size: tuple[int, int], grid: tuple[int, int],
                                          expected: tuple[int, int]) -> None:
    assert fit_cells(*size, *grid) == expected


def test_half_blocks_carry_the_upper_pixel_as_foreground_and_the_lower_as_background() -> None:
    image = Image.new("RGB", (3, 2), (0, 0, 255))
    image.putpixel((0, 0), (255, 0, 0))
    (strip,) = HalfBlockPainter().strips(image)
    segments = list(strip)
    assert strip.cell_length == 3
    assert segments[0].text == UPPER_HALF
    assert segments[0].style is not None
    assert segments[0].style.color == Color.from_rgb(255, 0, 0)
    assert segments[0].style.bgcolor == Color.from_rgb(0, 0, 255)
    # The two identical cells after it are one run.
    assert segments[1].text == UPPER_HALF * 2


def test_an_odd_last_row_repeats_itself_below() -> None:
    image = Image.new("RGB", (1, 3), (10, 20, 30))
    strips = HalfBlockPainter().strips(image)
    assert len(strips) == 2
    style = next(iter(strips[1])).style
    assert style is not None
    assert style.bgcolor == Color.from_rgb(10, 20, 30)


def test_crop_box_stays_inside_the_frame() -> None:
    assert crop_box([Point(x=5, y=5)], (1280, 800), (320, 200)) == (0, 0, 320, 200)
    assert crop_box([Point(x=1279, y=799)], (1280, 800), (320, 200)) == (960, 600, 1280, 800)
    assert crop_box([Point(x=640, y=400)], (1280, 800), (320, 200)) == (480, 300, 800, 500)


def test_crop_around_a_click_is_centred_on_it_and_a_typing_action_keeps_the_frame() -> None:
    frame = Image.new("RGB", (1280, 800))
    crop, offset = crop_around(frame, Click(x=640, y=400), (320, 200))
    assert (crop.size, offset) == ((320, 200), (480, 300))
    whole, origin = crop_around(frame, TypeText(text="rm -rf ~\n"), (320, 200))
    assert (whole.size, origin) == ((1280, 800), (0, 0))


def test_draw_action_marks_the_click_in_crop_coordinates() -> None:
    crop = Image.new("RGB", (320, 200))
    marked = draw_action(crop, Click(x=640, y=400), offset=(480, 300), caption=False)
    assert marked.getpixel((160 + 12, 100)) == MARK_COLOR
    assert crop.getpixel((172, 100)) == (0, 0, 0), "the original is left alone"


def test_draw_action_draws_a_drag_path() -> None:
    image = Image.new("RGB", (400, 400))
    drag = Drag(path=[Point(x=50, y=200), Point(x=350, y=200)])
    marked = draw_action(image, drag, caption=False)
    assert marked.getpixel((200, 200)) == MARK_COLOR


@pytest.mark.parametrize(("seconds", "text"), [
    (29.6, "30 s"), (119, "119 s"), (600, "10 min"), (864000, "240 h"),
])
def test_time_left_is_as_precise_as_it_needs_to_be(seconds: float, text: str) -> None:
    assert time_left(seconds) == text


@pytest.mark.anyio
async def test_frame_view_paints_a_picture_once_until_it_changes() -> None:
    from textual.app import App, ComposeResult

    class Viewer(App[None]):
        def compose(self) -> ComposeResult:
            yield FrameView(id="view")

    image = Image.new("RGB", (1280, 800), (40, 40, 40))
    app = Viewer()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(FrameView)
        view.show(Picture(key="a", image=image))
        await pilot.pause()
        painted = view.paint_count
        view.show(Picture(key="a", image=image))
        view.refresh()
        await pilot.pause()
        assert painted == 1
        assert view.paint_count == 1, "an unchanged frame is not painted again"
        view.show(Picture(key="b", image=image))
        await pilot.pause()
        assert view.paint_count == 2


@pytest.mark.anyio
@pytest.mark.parametrize("graphics", ["kitty", "sixel"])
# textual-image 0.12 (the last for Python 3.11) still calls a Pillow API that
# Pillow 13 deprecates.
@pytest.mark.filterwarnings("ignore:Image.Image.getdata is deprecated:DeprecationWarning")
async def test_terminal_graphics_views_take_a_shrunk_picture(graphics: str) -> None:
    from textual.app import App, ComposeResult

    from tui.widgets.frame_view import GraphicsFrameView, make_frame_view

    class Viewer(App[None]):
        def compose(self) -> ComposeResult:
            yield make_frame_view(graphics, id="view")

    app = Viewer()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(GraphicsFrameView)
        view.show(Picture(key="a", image=Image.new("RGB", (1920, 1080)),
                          action=Click(x=960, y=540)))
        await pilot.pause()
        shown = view.query_one("#terminal-image").image  # type: ignore[attr-defined]
        assert isinstance(shown, Image.Image)
        assert shown.width == 960, "shrunk before it is encoded for the terminal"
        assert shown.getpixel((480 + 6, 270)) == MARK_COLOR


def _text_area_contrast(small: Image.Image, frame_size: tuple[int, int],
                        box: tuple[int, int, int, int]) -> float:
    """Luminance spread of ``small`` over the part showing ``box`` of the frame."""
    scale_x, scale_y = small.width / frame_size[0], small.height / frame_size[1]
    left, top = int(box[0] * scale_x), int(box[1] * scale_y)
    right, bottom = int(box[2] * scale_x) + 1, int(box[3] * scale_y) + 1
    gray = small.convert("L").crop((left, top, right, bottom))
    return float(ImageStat.Stat(gray).stddev[0])


@pytest.mark.x11
def test_a_terminal_with_text_is_not_a_blank_rectangle_in_half_blocks() -> None:
    poll: Callable[..., Any] = wait_until
    with LocalSandbox() as box:
        box.execute(Key(keys=["ctrl", "alt", "t"]))
        poll(lambda: box.screenshot().window_title == "xterm", what="the terminal")
        box.execute(TypeText(text="for i in 1 2 3 4 5 6; do echo line $i of some output; done\n"))
        frame = poll(lambda: _frame_with_text(box), what="the output on screen")
    image = Image.open(io.BytesIO(frame.png)).convert("RGB")
    text_box = _terminal_text_box(image)
    cols, rows = fit_cells(image.width, image.height, 100, 30)
    ours = _text_area_contrast(downscale(image, cols, rows), image.size, text_box)
    plain = _text_area_contrast(image.resize((cols, rows * 2), Image.Resampling.BOX),
                                image.size, text_box)
    assert ours > 45, f"text area spread {ours:.1f} (plain area average: {plain:.1f})"
    assert ours > 1.6 * plain


def _terminal_text_box(image: Image.Image) -> tuple[int, int, int, int]:
    """The box around the dark glyphs on the terminal's white ground (rows mostly white)."""
    gray = image.convert("L")
    width = gray.width
    rows = [y for y in range(gray.height)
            if sum(1 for v in gray.crop((0, y, width, y + 1)).tobytes() if v > 240) > width / 2]
    white = gray.crop((0, min(rows), width, max(rows) + 1)).point(
        lambda v: 255 if v > 240 else 0).getbbox()
    assert white is not None
    body = (white[0] + 4, min(rows) + 4, white[2] - 4, max(rows) - 4)
    ink = gray.crop(body).point(lambda v: 255 if v < 100 else 0).getbbox()
    assert ink is not None
    return ink[0] + body[0], ink[1] + body[1], ink[2] + body[0], ink[3] + body[1]


def _frame_with_text(box: LocalSandbox) -> Frame | None:
    frame = box.screenshot()
    image = Image.open(io.BytesIO(frame.png)).convert("L")
    dark_in_white = sum(1 for v in image.crop((200, 200, 1080, 500)).tobytes() if v < 100)
    return frame if dark_in_white > 2000 else None


def test_downscaling_keeps_flat_areas_exactly() -> None:
    flat = Image.new("RGB", (640, 400), (200, 100, 50))
    assert downscale(flat, 40, 10).getcolors() == [(800, (200, 100, 50))]
