"""A sandbox frame shown in the terminal, with the action drawn on it.

Two renderers with one API, :meth:`FrameView.show`:

* :class:`FrameView` paints half blocks (``▀``, two pixels per cell) through
  the line API.  The frame is shrunk with Pillow to the widget's cell grid
  first, and the resulting strips are kept until the picture or the widget's
  size changes, so an unchanged frame is never painted twice.
* :class:`GraphicsFrameView` hands the picture to ``textual-image`` (Kitty
  graphics or Sixel) when :mod:`tui.graphics` found the terminal able to show
  real pixels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from PIL import Image
from rich.segment import Segment
from textual.app import ComposeResult
from textual.strip import Strip
from textual.widget import Widget

from audit.render import draw_action
from policies.decision import TargetElement
from sandbox.actions import Action
from tui.imaging import HalfBlockPainter, downscale, fit_cells

GRAPHICS_MAX_WIDTH = 960


@dataclass(frozen=True, slots=True)
class Picture:
    """What to show: an RGB image (sandbox pixels from ``offset``) and an action.

    ``key`` names the content (frame hash plus anything drawn on it): two
    pictures with the same key look the same, so showing one again is free.
    """

    key: str
    image: Image.Image = field(compare=False)
    action: Action | None = field(default=None, compare=False)
    offset: tuple[int, int] = (0, 0)
    target: TargetElement | None = field(default=None, compare=False)
    """The element the action lands on, outlined (box in sandbox pixels)."""


@dataclass(slots=True)
class _Painted:
    key: str
    width: int
    height: int
    strips: list[Strip]
    left: int
    top: int


class FrameView(Widget):
    """Shows one :class:`Picture` as half blocks, fitted and centred."""

    def __init__(self, *, placeholder: str = "no frame yet", name: str | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.placeholder = placeholder
        self._picture: Picture | None = None
        self._painted: _Painted | None = None
        self._painter = HalfBlockPainter()
        self.paint_count = 0
        # When a picture was last painted (perf_counter seconds), for the benchmark.
        self.painted_at: float | None = None

    @property
    def picture(self) -> Picture | None:
        return self._picture

    def show(self, picture: Picture | None) -> None:
        """Show ``picture`` (``None`` shows the placeholder); a no-op if already shown."""
        if picture == self._picture:
            return
        self._picture = picture
        self._painted = None
        self.refresh()

    def on_resize(self) -> None:
        self._painted = None

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        painted = self._paint()
        if painted is None:
            return self._placeholder_line(y, width)
        row = y - painted.top
        if not 0 <= row < len(painted.strips):
            return Strip.blank(width, self.rich_style)
        pad = Segment(" " * painted.left, self.rich_style)
        return Strip([pad, *painted.strips[row]]).extend_cell_length(width, self.rich_style)

    def _placeholder_line(self, y: int, width: int) -> Strip:
        if y != self.size.height // 2:
            return Strip.blank(width, self.rich_style)
        text = self.placeholder[:width].center(width)
        return Strip([Segment(text, self.rich_style)], width)

    def _paint(self) -> _Painted | None:
        picture, size = self._picture, self.size
        if picture is None or size.width <= 0 or size.height <= 0:
            return None
        cached = self._painted
        if cached and (cached.key, cached.width, cached.height) == \
                (picture.key, size.width, size.height):
            return cached
        self._painted = self._paint_now(picture, size.width, size.height)
        return self._painted

    def _paint_now(self, picture: Picture, width: int, height: int) -> _Painted:
        image = picture.image
        cols, rows = fit_cells(image.width, image.height, width, height)
        small = downscale(image, cols, rows)
        small = draw_action(small, picture.action, scale=cols / image.width,
                            offset=picture.offset, caption=False, target=picture.target)
        self.paint_count += 1
        self.painted_at = time.perf_counter()
        return _Painted(picture.key, width, height, self._painter.strips(small),
                        left=(width - cols) // 2, top=(height - rows) // 2)


class GraphicsFrameView(Widget):
    """Shows a :class:`Picture` with terminal graphics through ``textual-image``."""

    def __init__(self, *, placeholder: str = "no frame yet", name: str | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.placeholder = placeholder
        self._picture: Picture | None = None

    def compose(self) -> ComposeResult:
        from textual_image.widget import Image as TerminalImage

        yield TerminalImage(None, id="terminal-image")

    def show(self, picture: Picture | None) -> None:
        """Show ``picture``; a no-op if it is already shown."""
        if picture == self._picture:
            return
        self._picture = picture
        target = self.query_one("#terminal-image")
        if picture is None:
            target.image = None  # type: ignore[attr-defined]
            return
        # Encoding a full-size frame for the terminal on every change is slow;
        # a terminal window rarely shows more than this many pixels anyway.
        image = picture.image
        scale = min(1.0, GRAPHICS_MAX_WIDTH / image.width)
        small = image.resize((max(1, round(image.width * scale)),
                              max(1, round(image.height * scale))), Image.Resampling.BOX)
        target.image = draw_action(small, picture.action, scale=scale,  # type: ignore[attr-defined]
                                   offset=picture.offset, caption=False,
                                   target=picture.target)


AnyFrameView = FrameView | GraphicsFrameView


def make_frame_view(graphics: str, *, id: str | None = None,
                    placeholder: str = "no frame yet") -> AnyFrameView:
    """The frame view for a graphics mode from :func:`tui.graphics.detect_graphics`."""
    if graphics in {"kitty", "sixel"}:
        return GraphicsFrameView(id=id, placeholder=placeholder)
    return FrameView(id=id, placeholder=placeholder)
