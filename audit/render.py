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

from policies.decision import TargetElement
from sandbox.actions import Action, Click, Drag, Scroll, Zoom

MARK_COLOR = (255, 40, 90)
TARGET_COLOR = (255, 190, 0)
CAPTION_BACKGROUND = (20, 20, 28)
CAPTION_TEXT = (255, 255, 255)


@dataclass(frozen=True, slots=True)
class Mark:
    """One shape: ``point`` (where the action lands), ``path`` (a drag), ``box`` (a zoom),
    ``target`` (the element under a click, labelled with its role and name) or ``caption``."""

    kind: Literal["point", "path", "box", "target", "caption"]
    points: tuple[tuple[int, int], ...] = ()
    text: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "points": [list(p) for p in self.points], "text": self.text}


def describe(action: Action | None) -> str:
    """The action in words, as the approval queue showed it."""
    return "(no valid action)" if action is None else action.describe()


def describe_target(target: TargetElement) -> str:
    """The element under a click in words: role, name and who saw it."""
    seen = SOURCE_WORDS.get(target.source, target.source)
    return f"{target.describe()} ({seen})" if seen else target.describe()


SOURCE_WORDS = {"a11y": "accessibility tree", "ocr": "OCR", "vlm": "vision model"}


def marks_for(action: Action | None, target: TargetElement | None = None) -> list[Mark]:
    """The shapes that show ``action`` on the screen it was proposed on, with the box of
    the element it aims at (``target``) when that is known."""
    if action is None:
        return []
    if target is not None and target.box is not None:
        x0, y0, x1, y1 = target.box
        return [Mark("target", ((x0, y0), (x1, y1)), text=target.describe()),
                *marks_for(action)]
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
                offset: tuple[int, int] = (0, 0), caption: bool = True,
                target: TargetElement | None = None) -> Image.Image:
    """A copy of ``image`` with ``action`` drawn on it: the one drawing of an action.

    ``offset`` is where ``image`` starts in sandbox pixels (a crop) and
    ``scale`` how much it was shrunk (a terminal thumbnail); ``caption`` adds
    the action in words along the bottom edge; ``target`` outlines the element
    the action aims at.
    """
    marks = [m for m in marks_for(action, target) if caption or m.kind != "caption"]
    if scale < 1:  # a thumbnail has no room for the target's name (the card prints it)
        marks = [Mark(m.kind, m.points) if m.kind == "target" else m for m in marks]
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
    elif mark.kind == "target":
        (x0, y0), (x1, y1) = mark.points
        draw.rectangle((x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)), outline=TARGET_COLOR,
                       width=max(1, unit // 2))
        if mark.text:
            draw.text((x0, max(0, y0 - unit * 8)), mark.text, fill=TARGET_COLOR, font=font)
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
