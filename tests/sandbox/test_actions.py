"""Every action of the union, run in a real local sandbox against an app that logs its events."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PIL import Image

from sandbox.actions import (
    Click,
    CursorPosition,
    Drag,
    HoldKey,
    Key,
    MouseDown,
    MouseMove,
    MouseUp,
    Point,
    Screenshot,
    Scroll,
    TypeText,
    Wait,
    Zoom,
)
from sandbox.errors import ExecutorError, ExecutorTimeout
from sandbox.local import LocalSandbox

pytestmark = pytest.mark.x11

LOG = "events.jsonl"
APP_BOX = (100, 100, 800, 500)  # x, y, width, height of the event window
SHIFT, CONTROL = 1, 4  # X modifier state bits
BUTTON1 = 1 << 8
SHIFT_L, CONTROL_L, RETURN, TAB = 0xFFE1, 0xFFE3, 0xFF0D, 0xFF09


class EventLog:
    """The event app's log, read through the sandbox's own ``check``."""

    def __init__(self, box: LocalSandbox, poll: Callable[..., Any]) -> None:
        self.box = box
        self.poll = poll
        self.start = 0

    def read(self) -> list[dict[str, Any]]:
        result = self.box.check(["cat", LOG])
        return [json.loads(line) for line in result.stdout.splitlines()]

    def mark(self) -> None:
        self.start = len(self.read())

    def events_until(self, done: Callable[[list[dict[str, Any]]], object]) -> list[dict[str, Any]]:
        """The events since ``mark()``, once ``done`` accepts them."""
        def ready() -> list[dict[str, Any]] | None:
            new = self.read()[self.start:]
            return new if done(new) else None
        events: list[dict[str, Any]] = self.poll(ready, what="the app's events")
        return events

    def of(self, kind: str, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [event for event in events if event["type"] == kind]


@pytest.fixture(scope="module")
def box() -> Iterator[LocalSandbox]:
    with LocalSandbox() as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def _app(box: LocalSandbox, launch_app: Callable[..., None], poll: Callable[..., Any]) -> None:
    launch_app(box, "event_app.py", [LOG, *map(str, APP_BOX)])
    poll(lambda: box.check(["grep", "-c", "ready", LOG]).exit_code == 0, what="the event app")


@pytest.fixture
def log(box: LocalSandbox, _app: None, poll: Callable[..., Any]) -> EventLog:
    events = EventLog(box, poll)
    box.execute(MouseMove(x=500, y=350))  # the pointer rests inside the app window
    events.mark()
    return events


def keysyms_pressed(events: list[dict[str, Any]]) -> list[int]:
    modifiers = {SHIFT_L, CONTROL_L}
    return [e["keysym"] for e in events
            if e["type"] == "key_press" and e["keysym"] not in modifiers]


def expected_keysym(char: str) -> int:
    special = {"\n": RETURN, "\t": TAB}
    if char in special:
        return special[char]
    return ord(char) if ord(char) < 0x100 else 0x01000000 + ord(char)


# --- keys ---------------------------------------------------------------------------------------


def test_key_combo_holds_modifiers_while_the_key_goes_down(box: LocalSandbox,
                                                           log: EventLog) -> None:
    result = box.execute(Key(keys=["ctrl", "shift", "a"]))
    events = log.events_until(lambda new: len(log.of("key_release", new)) >= 3)
    presses = log.of("key_press", events)
    assert [e["keysym"] for e in presses] == [CONTROL_L, SHIFT_L, ord("A")]
    assert presses[-1]["state"] & (SHIFT | CONTROL) == SHIFT | CONTROL
    assert log.of("key_release", events)[0]["keysym"] == ord("A")
    assert result.settle.changed  # the app repainted once it handled the keys


def test_key_repeat_presses_the_combo_again(box: LocalSandbox, log: EventLog) -> None:
    box.execute(Key(keys=["tab"], repeat=3))
    events = log.events_until(lambda new: len(log.of("key_release", new)) >= 3)
    assert keysyms_pressed(events) == [TAB, TAB, TAB]


def test_a_key_that_needs_shift_gets_it(box: LocalSandbox, log: EventLog) -> None:
    box.execute(Key(keys=["!"]))
    events = log.events_until(lambda new: len(log.of("key_release", new)) >= 2)
    press = [e for e in log.of("key_press", events) if e["keysym"] == ord("!")]
    assert press, events
    assert press[0]["state"] & SHIFT


def test_a_key_missing_from_the_keymap_is_still_pressed(box: LocalSandbox, log: EventLog) -> None:
    box.execute(Key(keys=["f13"]))
    events = log.events_until(lambda new: log.of("key_release", new))
    assert keysyms_pressed(events) == [0xFFCA]  # F13


def test_hold_key_keeps_the_key_down_for_the_time_asked(box: LocalSandbox, log: EventLog) -> None:
    box.execute(HoldKey(keys=["shift"], seconds=0.3))
    events = log.events_until(lambda new: log.of("key_release", new))
    press, release = log.of("key_press", events)[0], log.of("key_release", events)[-1]
    assert press["keysym"] == release["keysym"] == SHIFT_L
    assert release["time"] - press["time"] >= 250  # X server milliseconds


# --- typing -------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "Hello, World! ~`'\"<>{}|\\",
    "héllo — 世界 ñ € ✓ Ωmega ß 😀",
    "line one\nline\ttwo\n",
])
def test_type_sends_exactly_the_text(box: LocalSandbox, log: EventLog, text: str) -> None:
    box.execute(TypeText(text=text))
    events = log.events_until(lambda new: len(keysyms_pressed(new)) >= len(text))
    assert keysyms_pressed(events) == [expected_keysym(char) for char in text]


def test_type_more_distinct_characters_than_spare_keycodes(box: LocalSandbox,
                                                           log: EventLog) -> None:
    text = "".join(chr(0x4E00 + 7 * i) for i in range(40)) + "ÀÉÎÕÜ"
    box.execute(TypeText(text=text))
    events = log.events_until(lambda new: len(keysyms_pressed(new)) >= len(text))
    assert keysyms_pressed(events) == [expected_keysym(char) for char in text]


# --- the pointer --------------------------------------------------------------------------------


def test_mouse_move_and_cursor_position_agree(box: LocalSandbox, log: EventLog) -> None:
    moved = box.execute(MouseMove(x=321, y=234))
    events = log.events_until(lambda new: log.of("motion", new))
    assert (events[-1]["x"], events[-1]["y"]) == (321, 234)
    assert moved.frame.cursor == (321, 234)
    asked = box.execute(CursorPosition())
    assert asked.output == {"x": 321, "y": 234}


@pytest.mark.parametrize(("button", "number"), [
    ("left", 1), ("middle", 2), ("right", 3), ("back", 8), ("forward", 9)])
def test_click_presses_the_button_at_the_point(box: LocalSandbox, log: EventLog, button: str,
                                               number: int) -> None:
    box.execute(Click(x=400, y=300, button=button))  # type: ignore[arg-type, unused-ignore]
    events = log.events_until(lambda new: log.of("button_release", new))
    press = log.of("button_press", events)[0]
    assert (press["button"], press["x"], press["y"]) == (number, 400, 300)


def test_triple_click_with_a_modifier(box: LocalSandbox, log: EventLog) -> None:
    box.execute(Click(x=450, y=320, count=3, modifiers=["ctrl"]))
    events = log.events_until(lambda new: len(log.of("button_release", new)) >= 3)
    presses = log.of("button_press", events)
    assert len(presses) == 3
    assert all(p["state"] & CONTROL for p in presses)


def test_click_without_a_point_clicks_where_the_pointer_is(box: LocalSandbox,
                                                           log: EventLog) -> None:
    box.execute(MouseMove(x=610, y=410))
    box.execute(Click())
    events = log.events_until(lambda new: log.of("button_release", new))
    press = log.of("button_press", events)[0]
    assert (press["x"], press["y"]) == (610, 410)


def test_mouse_down_and_up_bracket_a_move(box: LocalSandbox, log: EventLog) -> None:
    box.execute(MouseDown())
    box.execute(MouseMove(x=520, y=380))
    box.execute(MouseUp())
    events = log.events_until(lambda new: log.of("button_release", new))
    kinds = [e["type"] for e in events]
    assert kinds.index("button_press") < kinds.index("motion") < kinds.index("button_release")
    assert log.of("motion", events)[-1]["state"] & BUTTON1


def test_drag_presses_moves_along_the_path_and_releases(box: LocalSandbox,
                                                        log: EventLog) -> None:
    path = [Point(x=200, y=200), Point(x=300, y=250), Point(x=500, y=400)]
    box.execute(Drag(path=path))
    events = log.events_until(lambda new: log.of("button_release", new))
    press, release = log.of("button_press", events)[0], log.of("button_release", events)[0]
    assert (press["x"], press["y"]) == (200, 200)
    assert (release["x"], release["y"]) == (500, 400)
    dragged = [(e["x"], e["y"]) for e in log.of("motion", events) if e["state"] & BUTTON1]
    assert (300, 250) in dragged
    assert len(dragged) >= 10  # intermediate steps, not one jump


def test_scroll_sends_wheel_notches_with_modifiers(box: LocalSandbox, log: EventLog) -> None:
    box.execute(Scroll(x=600, y=300, dx=-2, dy=3, modifiers=["shift"]))
    box.execute(Scroll(x=600, y=300, dx=1, dy=-1))
    events = log.events_until(lambda new: len(log.of("button_release", new)) >= 7)
    presses = log.of("button_press", events)
    assert [p["button"] for p in presses] == [5, 5, 5, 6, 6, 4, 7]
    assert all(p["state"] & SHIFT for p in presses[:5])
    assert not any(p["state"] & SHIFT for p in presses[5:])
    assert {(p["x"], p["y"]) for p in presses} == {(600, 300)}


# --- observing ----------------------------------------------------------------------------------


def test_wait_returns_a_frame_after_the_time(box: LocalSandbox) -> None:
    started = time.monotonic()
    result = box.execute(Wait(seconds=0.2))
    assert time.monotonic() - started >= 0.2
    assert result.frame.size == box.size


def test_wait_past_the_deadline_is_a_timeout(box: LocalSandbox) -> None:
    with pytest.raises(ExecutorTimeout):
        box.execute(Wait(seconds=5), deadline_s=0.3)
    assert box.screenshot().width == 1280  # still serving


@pytest.mark.usefixtures("_app")
def test_screenshot_action_and_zoom_show_the_same_pixels(box: LocalSandbox) -> None:
    full = box.execute(Screenshot()).frame
    zoomed = box.execute(Zoom(x0=90, y0=90, x1=290, y1=190)).frame
    assert (zoomed.width, zoomed.height) == (200, 100)
    region = Image.open(io.BytesIO(full.png)).convert("RGB").crop((90, 90, 290, 190))
    assert Image.open(io.BytesIO(zoomed.png)).convert("RGB").tobytes() == region.tobytes()


def test_points_off_the_screen_are_refused_by_the_executor(box: LocalSandbox) -> None:
    with pytest.raises(ExecutorError) as caught:
        box.execute(Click(x=2000, y=10))
    assert caught.value.code == "bad_action"
    assert "outside the 1280x800 screen" in caught.value.message
