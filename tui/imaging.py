"""Pictures for the terminal: fit a frame to a cell grid, turn it into
half-block lines, crop around an action's target and draw the action on it.

Everything here is pure Pillow + Rich and knows nothing of widgets, so the
same code renders the live screen, the approval crop and the replay view.

Half-block rendering puts two pixels in one terminal cell: ``▀`` with the
upper pixel as foreground colour and the lower one as background.  A cell is
about twice as tall as it is wide, so each pixel comes out roughly square.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from PIL import Image
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from sandbox.actions import Action, Point

UPPER_HALF = "▀"

MAX_CACHED_STYLES = 65536

RGB = tuple[int, int, int]


def decode_png(png: bytes) -> Image.Image:
    """Decode PNG bytes into an RGB image."""
    with Image.open(io.BytesIO(png)) as image:
        return image.convert("RGB")


def fit_cells(width: int, height: int, max_cols: int, max_rows: int) -> tuple[int, int]:
    """The largest cell grid (cols, rows) that shows a ``width`` x ``height`` picture
    in at most ``max_cols`` x ``max_rows`` cells without distorting it."""
    if width <= 0 or height <= 0 or max_cols <= 0 or max_rows <= 0:
        return 0, 0
    scale = min(max_cols / width, (max_rows * 2) / height)
    cols = max(1, min(max_cols, round(width * scale)))
    rows = max(1, min(max_rows, round(height * scale / 2)))
    return cols, rows


# How far a half cell with detail in it (text) is pushed away from its mean,
# in standard deviations of the source pixels it covers.
INK_GAIN = 1.5


def downscale(image: Image.Image, cols: int, rows: int) -> Image.Image:
    """Shrink ``image`` to ``cols`` x ``2*rows`` pixels, one pixel per half cell,
    keeping text visible.

    An area average (BOX) of a terminal's thin dark glyphs on white is a
    near-white grey: the terminal shows as a blank rectangle.  So each target
    pixel is its area average pushed away from the background by the spread
    of the source pixels it covers (darker on light ground, lighter on dark):
    flat areas keep their colour exactly, areas with text come out as lines.
    """
    import numpy as np

    size = (cols, rows * 2)
    mean = np.asarray(image.resize(size, Image.Resampling.BOX), np.float32)
    gray = np.asarray(image.convert("L"), np.float32)
    gray_mean = _box_mean(gray, size)
    square_mean = _box_mean(gray * gray, size)
    spread = np.sqrt(np.maximum(0.0, square_mean - gray_mean * gray_mean))
    away = np.where(gray_mean >= 128, -INK_GAIN, INK_GAIN) * spread
    inked = np.clip(mean + away[..., None], 0, 255).astype(np.uint8)
    return Image.fromarray(inked, "RGB")


def _box_mean(values: Any, size: tuple[int, int]) -> Any:
    """Area means of a float array over the cells of a ``size`` grid (Pillow, 32-bit float)."""
    import numpy as np

    return np.asarray(Image.fromarray(values, "F").resize(size, Image.Resampling.BOX))


class HalfBlockPainter:
    """Turns small RGB images into Textual strips; remembers the styles it built."""

    def __init__(self) -> None:
        self._styles: dict[tuple[bytes, bytes], Style] = {}

    def strips(self, image: Image.Image) -> list[Strip]:
        """One strip per pair of pixel rows of ``image`` (which must be RGB)."""
        width, height = image.size
        data = image.tobytes()
        row_bytes = width * 3
        strips = []
        for top in range(0, height, 2):
            bottom = top + 1 if top + 1 < height else top
            upper = data[top * row_bytes:(top + 1) * row_bytes]
            lower = data[bottom * row_bytes:(bottom + 1) * row_bytes]
            strips.append(self._strip(upper, lower, width))
        return strips

    def _strip(self, upper: bytes, lower: bytes, width: int) -> Strip:
        segments: list[Segment] = []
        run_start = 0
        for x in range(1, width + 1):
            if x < width and upper[3 * x:3 * x + 3] == upper[3 * run_start:3 * run_start + 3] \
                    and lower[3 * x:3 * x + 3] == lower[3 * run_start:3 * run_start + 3]:
                continue
            style = self._style(upper[3 * run_start:3 * run_start + 3],
                                lower[3 * run_start:3 * run_start + 3])
            segments.append(Segment(UPPER_HALF * (x - run_start), style))
            run_start = x
        return Strip(segments, width)

    def _style(self, top: bytes, bottom: bytes) -> Style:
        key = (top, bottom)
        style = self._styles.get(key)
        if style is None:
            if len(self._styles) > MAX_CACHED_STYLES:
                self._styles.clear()
            style = Style(color=Color.from_rgb(*top), bgcolor=Color.from_rgb(*bottom))
            self._styles[key] = style
        return style


def crop_box(points: Sequence[Point], frame_size: tuple[int, int],
             crop_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """A ``crop_size`` box inside the frame, centred on the points' middle."""
    width, height = frame_size
    crop_w, crop_h = min(crop_size[0], width), min(crop_size[1], height)
    if points:
        cx = sum(p.x for p in points) // len(points)
        cy = sum(p.y for p in points) // len(points)
    else:
        cx, cy = width // 2, height // 2
    left = min(max(0, cx - crop_w // 2), width - crop_w)
    top = min(max(0, cy - crop_h // 2), height - crop_h)
    return left, top, left + crop_w, top + crop_h


def crop_around(image: Image.Image, action: Action | None,
                crop_size: tuple[int, int] = (320, 200)) -> tuple[Image.Image, tuple[int, int]]:
    """The part of ``image`` around the action's target, and where it starts.

    An action without a target (typing, a key) gets the whole frame: what
    matters then is which window has the focus.
    """
    points = action.points() if action is not None else []
    if not points:
        return image, (0, 0)
    box = crop_box(points, image.size, crop_size)
    return image.crop(box), (box[0], box[1])
