"""What an action looks like drawn on its frame: the marks replay and export share.

:func:`marks_for` turns a recorded action into a few shapes (a point with a
label, a path, a box, a caption); :func:`draw_marks` paints them with Pillow
(terminal replay, GIF) and :mod:`audit.export` turns the same shapes into
SVG.  Secret typed text was masked when it was stored, so it shows masked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from PIL import Image, ImageDraw, ImageFont

from sandbox.actions import Action, Click, Drag, Scroll, Zoom

MARK_COLOR = (255, 40, 90)
CAPTION_BACKGROUND = (20, 20, 28)
CAPTION_TEXT = (255, 255, 255)


@dataclass(frozen=True, slots=True)
class Mark:
    """One shape: ``point`` (a target), ``path`` (a drag), ``box`` (a zoom) or ``caption``."""

    kind: Literal["point", "path", "box", "caption"]
    points: tuple[tuple[int, int], ...] = ()
    text: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "points": [list(p) for p in self.points], "text": self.text}


def describe(action: Action | None) -> str:
    """The action in words, as the approval queue showed it."""
    return "(no valid action)" if action is None else action.describe()


def marks_for(action: Action | None) -> list[Mark]:
    """The shapes that show ``action`` on the screen it was proposed on."""
    if action is None:
        return []
    caption = Mark("caption", text=action.describe())
    if isinstance(action, Drag):
        return [Mark("path", tuple((p.x, p.y) for p in action.path)), caption]
    if isinstance(action, Zoom):
        return [Mark("box", ((action.x0, action.y0), (action.x1, action.y1))), caption]
    points = action.points()
    if not points:
        return [caption]
    return [Mark("point", ((points[0].x, points[0].y),), text=_point_label(action)), caption]


def _point_label(action: Action) -> str:
    if isinstance(action, Scroll):
        return f"scroll {action.dx:+d},{action.dy:+d}"
    if isinstance(action, Click) and action.count > 1:
        return f"x{action.count}"
    return ""


def draw_action(image: Image.Image, action: Action | None, *, scale: float = 1.0,
                offset: tuple[int, int] = (0, 0), caption: bool = True) -> Image.Image:
    """A copy of ``image`` with ``action`` drawn on it: the one drawing of an action.

    ``offset`` is where ``image`` starts in sandbox pixels (a crop) and
    ``scale`` how much it was shrunk (a terminal thumbnail); ``caption`` adds
    the action in words along the bottom edge.
    """
    marks = [m for m in marks_for(action) if caption or m.kind != "caption"]
    # A shrunk picture gets thinner lines, as the full frame would have shown them.
    unit = max(1, round(_unit_for(max(image.size) / scale) * scale)) if scale < 1 else None
    return draw_marks(image, [_placed(m, scale, offset) for m in marks], unit=unit)


def _placed(mark: Mark, scale: float, offset: tuple[int, int]) -> Mark:
    points = tuple((round((x - offset[0]) * scale), round((y - offset[1]) * scale))
                   for x, y in mark.points)
    return Mark(mark.kind, points, mark.text)


def _unit_for(longest_side: float) -> int:
    return max(2, int(longest_side) // 300)


def draw_marks(image: Image.Image, marks: list[Mark], *, unit: int | None = None) -> Image.Image:
    """A copy of ``image`` (as RGB) with ``marks`` painted on, sized to stay visible."""
    canvas = image.convert("RGB")
    draw = ImageDraw.Draw(canvas)
    unit = unit if unit is not None else _unit_for(max(canvas.size))
    font = ImageFont.load_default(size=max(12, unit * 6))
    for mark in marks:
        _draw_one(draw, mark, unit, font, canvas.size)
    return canvas


def _draw_one(draw: ImageDraw.ImageDraw, mark: Mark, unit: int,
              font: ImageFont.FreeTypeFont | ImageFont.ImageFont, size: tuple[int, int]) -> None:
    if mark.kind == "point":
        (x, y), radius = mark.points[0], unit * 6
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), outline=MARK_COLOR,
                     width=unit)
        draw.line((x - radius * 2, y, x + radius * 2, y), fill=MARK_COLOR, width=max(1, unit // 2))
        draw.line((x, y - radius * 2, x, y + radius * 2), fill=MARK_COLOR, width=max(1, unit // 2))
        if mark.text:
            draw.text((x + radius + unit, y - radius * 2), mark.text, fill=MARK_COLOR, font=font)
    elif mark.kind == "path":
        draw.line(list(mark.points), fill=MARK_COLOR, width=unit, joint="curve")
        for x, y in (mark.points[0], mark.points[-1]):
            draw.ellipse((x - unit * 3, y - unit * 3, x + unit * 3, y + unit * 3), fill=MARK_COLOR)
    elif mark.kind == "box":
        draw.rectangle((*mark.points[0], *mark.points[1]), outline=MARK_COLOR, width=unit)
    else:
        _caption(draw, mark.text, unit, font, size)


def _caption(draw: ImageDraw.ImageDraw, text: str, unit: int,
             font: ImageFont.FreeTypeFont | ImageFont.ImageFont, size: tuple[int, int]) -> None:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    pad = unit * 2
    x, y = pad, size[1] - (bottom - top) - pad * 3
    draw.rectangle((x - pad, y - pad, x + right - left + pad, y + bottom - top + pad),
                   fill=CAPTION_BACKGROUND, outline=MARK_COLOR, width=max(1, unit // 2))
    draw.text((x - left, y - top), text, fill=CAPTION_TEXT, font=font)
