"""The screen's elements beside a screenshot, for model planners (``--elements``).

``text``
    a compact numbered list after the screenshot: role, name, centre in the
    coordinates the model clicks in, and the states worth knowing::

        Elements on screen (accessibility tree): number role "name" x,y [states]
        1 push button "Save" 512,300
        2 check box "Wrap lines" 80,122 checked

``marks``
    the same list, and each number drawn on the screenshot at its element
    (set-of-marks), for vision models that ground a visible label better than
    a coordinate.

The centres are mapped with the planner's own
:class:`~agent.wire_actions.CoordinateScaler`, so a click at a listed point maps
back inside the element.  The loop gives the elements (agent/perception/targets.py)
in :attr:`~agent.planners.base.Observation.elements`: none while a frame is
withheld, none over a redacted region.  Planners call :class:`ElementBrief` and
add what it returns; old lists are hidden together with their screenshots.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from PIL import Image, ImageDraw, ImageFont

from agent.perception.elements import Element, normalize_role
from agent.perception.targets import is_container
from agent.planners.base import Observation
from audit.render import SOURCE_WORDS
from sandbox.base import Frame

if TYPE_CHECKING:
    from agent.wire_actions import CoordinateScaler

ElementsMode = Literal["off", "text", "marks"]
ELEMENTS_MODES: tuple[ElementsMode, ...] = ("off", "text", "marks")
MAX_LISTED = 60
MAX_NAME_CHARS = 60
# States a model can act on; "enabled", "showing" and the like hold for nearly everything.
SHOWN_STATES = ("focused", "checked", "pressed", "selected", "expanded", "indeterminate")
HEADER = "Elements on screen"
HIDDEN_ELEMENT_LIST = "[older element list removed with its screenshot]"
CHARS_PER_TOKEN = 4  # a common rule of thumb for English text and numbers
MARK_FILL = (230, 0, 120)
MARK_TEXT = (255, 255, 255)

def check_mode(mode: str) -> ElementsMode:
    """``mode`` as an :data:`ElementsMode`; ValueError naming the choices otherwise."""
    for known in ELEMENTS_MODES:
        if mode == known:
            return known
    raise ValueError(f"--elements {mode!r}: choose one of {', '.join(ELEMENTS_MODES)}")


def listable(elements: Sequence[Element]) -> list[Element]:
    """The elements worth a line: on screen, not a bare container, named or in a state
    that matters (a focused unnamed field); at most :data:`MAX_LISTED`."""
    kept = [e for e in elements if e.box[2] > e.box[0] and e.box[3] > e.box[1]
            and not is_container(e) and (e.name.strip() or _states(e))]
    return kept[:MAX_LISTED]


def element_list(elements: Sequence[Element], scaler: CoordinateScaler) -> str:
    """The numbered list of ``elements`` (already :func:`listable`), centres in the
    model's coordinates."""
    sources = sorted({SOURCE_WORDS.get(e.source, e.source) for e in elements if e.source})
    seen = f" ({', '.join(sources)})" if sources else ""
    lines = [f"{HEADER}{seen}: number role \"name\" x,y [states]. Click at x,y."]
    for number, element in enumerate(elements, start=1):
        x, y = scaler.to_model(*element.center)
        states = _states(element)
        lines.append(f"{number} {normalize_role(element.role)} {_name(element.name)} {x},{y}"
                     + (f" {','.join(states)}" if states else ""))
    return "\n".join(lines)


def estimate_tokens(text: str) -> int:
    """Input tokens a list costs, estimated at :data:`CHARS_PER_TOKEN` bytes a token."""
    return math.ceil(len(text.encode("utf-8")) / CHARS_PER_TOKEN)


def is_element_list(text: object) -> bool:
    return isinstance(text, str) and text.startswith(HEADER)


def marked_frame(frame: Frame, elements: Sequence[Element]) -> Frame:
    """``frame`` with each element outlined and its list number drawn at its top-left."""
    with Image.open(io.BytesIO(frame.png)) as image:
        canvas = image.convert("RGB")
    draw = ImageDraw.Draw(canvas)
    size = max(12, canvas.height // 60)
    font = ImageFont.load_default(size=size)
    for number, element in enumerate(elements, start=1):
        x0, y0, x1, y1 = element.box
        draw.rectangle((x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)), outline=MARK_FILL, width=1)
        label = str(number)
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        width, height = right - left + 4, bottom - top + 2
        tx, ty = x0, max(0, y0 - height)  # above the element, where it hides nothing of it
        draw.rectangle((tx, ty, tx + width, ty + height), fill=MARK_FILL)
        draw.text((tx + 2 - left, ty + 1 - top), label, fill=MARK_TEXT, font=font)
    out = io.BytesIO()
    canvas.save(out, format="PNG", compress_level=1)
    return Frame.from_png(out.getvalue(), canvas.width, canvas.height,
                          window_title=frame.window_title, cursor=frame.cursor)


class ElementBrief:
    """What one planner sends of the screen's elements beside each screenshot."""

    def __init__(self, mode: ElementsMode, scaler: CoordinateScaler) -> None:
        self.mode = mode
        self.scaler = scaler
        self._marked: tuple[str, Frame] | None = None

    def frame(self, observation: Observation) -> Frame:
        """The frame to encode: with the list's numbers drawn on it in ``marks`` mode."""
        shown = self._shown(observation)
        if self.mode != "marks" or not shown:
            return observation.frame
        key = observation.frame.sha256 + "|" + self.text(observation)
        if self._marked is None or self._marked[0] != key:
            self._marked = (key, marked_frame(observation.frame, shown))
        return self._marked[1]

    def text(self, observation: Observation) -> str:
        """The list to send after the screenshot; empty when there is none to send."""
        shown = self._shown(observation)
        return element_list(shown, self.scaler) if shown else ""

    def _shown(self, observation: Observation) -> list[Element]:
        if self.mode == "off" or observation.withheld:
            return []
        return listable(observation.elements)


def _states(element: Element) -> list[str]:
    states = {normalize_role(s) for s in element.states}
    shown = [s for s in SHOWN_STATES if s in states]
    if element.source == "a11y" and not states & {"enabled", "sensitive"}:
        shown.append("disabled")
    return shown


def _name(name: str) -> str:
    flat = " ".join(name.split())
    if len(flat) > MAX_NAME_CHARS:
        flat = flat[:MAX_NAME_CHARS - 1] + "…"
    return json.dumps(flat, ensure_ascii=False)
