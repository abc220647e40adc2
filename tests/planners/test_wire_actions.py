"""Wire dialects to canonical actions and back, and exact coordinate scaling."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.planners.screenshots import recommended_model_size
from agent.wire_actions import (
    CoordinateScaler,
    WireError,
    action_from_anthropic,
    action_from_chat,
    action_from_openai,
    action_to_anthropic,
    action_to_openai,
    calls_in_text,
    propose_from_anthropic,
    propose_from_chat,
    propose_from_openai,
)
from sandbox.actions import (
    Action,
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
from sandbox.base import Size

SCREEN = Size(1280, 800)
SAME = CoordinateScaler(SCREEN, SCREEN)
WIDE = CoordinateScaler(Size(1920, 1080), Size(1365, 768))
CURSOR = (5, 6)

sizes = st.builds(Size, st.integers(64, 4096), st.integers(64, 4096))


# -- coordinate scaling --------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(sandbox=sizes, data=st.data())
def test_model_points_survive_the_round_trip_exactly(sandbox: Size, data: st.DataObject) -> None:
    scaler = CoordinateScaler(sandbox, recommended_model_size(sandbox))
    x = data.draw(st.integers(0, scaler.model.width - 1))
    y = data.draw(st.integers(0, scaler.model.height - 1))

    sx, sy = scaler.to_sandbox(x, y)

    assert 0 <= sx < sandbox.width
    assert 0 <= sy < sandbox.height
    assert scaler.to_model(sx, sy) == (x, y)


@settings(max_examples=300, deadline=None)
@given(sandbox=sizes, data=st.data())
def test_sandbox_points_move_at_most_half_a_model_pixel(sandbox: Size,
                                                       data: st.DataObject) -> None:
    scaler = CoordinateScaler(sandbox, recommended_model_size(sandbox))
    x = data.draw(st.integers(0, sandbox.width - 1))
    y = data.draw(st.integers(0, sandbox.height - 1))

    back = scaler.to_sandbox(*scaler.to_model(x, y))

    ratio_x = sandbox.width / scaler.model.width
    ratio_y = sandbox.height / scaler.model.height
    assert abs(back[0] - x) <= max(1, math.ceil(ratio_x / 2))
    assert abs(back[1] - y) <= max(1, math.ceil(ratio_y / 2))


@settings(max_examples=200, deadline=None)
@given(sandbox=st.builds(Size, st.integers(64, 1600), st.integers(64, 1200)), data=st.data())
def test_a_finer_model_grid_keeps_sandbox_points_exact(sandbox: Size,
                                                       data: st.DataObject) -> None:
    scaler = CoordinateScaler(sandbox, Size(2000, 2000))
    x = data.draw(st.integers(0, sandbox.width - 1))
    y = data.draw(st.integers(0, sandbox.height - 1))

    assert scaler.to_sandbox(*scaler.to_model(x, y)) == (x, y)


def test_recommended_screens_are_within_one_sandbox_pixel() -> None:
    for sandbox in (Size(1920, 1080), Size(2560, 1600), Size(1600, 1200), Size(1440, 900)):
        scaler = CoordinateScaler(sandbox, recommended_model_size(sandbox))
        for x in range(0, sandbox.width, 7):
            back_x, _ = scaler.to_sandbox(*scaler.to_model(x, 0))
            assert abs(back_x - x) <= 1


def test_points_off_the_screen_are_clamped_near_the_edge_and_rejected_beyond() -> None:
    assert WIDE.to_sandbox(1365, 768) == (1919, 1079)
    assert WIDE.to_sandbox(-1, 0) == (0, 0)
    with pytest.raises(WireError, match="outside the 1365x768 screen"):
        WIDE.to_sandbox(1400, 10)
    with pytest.raises(WireError):
        WIDE.to_sandbox(10, -50)


def test_regions_cover_the_model_region() -> None:
    assert WIDE.region_to_sandbox([0, 0, 1365, 768]) == (0, 0, 1920, 1080)
    x0, y0, x1, y1 = WIDE.region_to_sandbox([100, 100, 101, 101])
    # one model pixel spans 1.41 sandbox pixels, which touch 2 or 3 sandbox pixels
    assert {x1 - x0, y1 - y0} <= {2, 3}
    # mapped there and back, a region still covers itself, one model pixel wider at most
    back = WIDE.region_to_model(WIDE.region_to_sandbox([10, 20, 300, 200]))
    assert all(abs(a - b) <= 1 for a, b in zip(back, (10, 20, 300, 200), strict=True))
    assert back[0] <= 10
    assert back[1] <= 20
    assert back[2] >= 300
    assert back[3] >= 200


# -- anthropic -----------------------------------------------------------------------

ANTHROPIC_CASES: list[tuple[dict[str, Any], Action]] = [
    ({"action": "key", "text": "Return"}, Key(keys=["enter"])),
    ({"action": "key", "text": "ctrl+shift+t"}, Key(keys=["ctrl", "shift", "t"])),
    ({"action": "key", "text": "Down Down Down"}, Key(keys=["down"], repeat=3)),
    ({"action": "key", "text": " "}, Key(keys=["space"])),
    ({"action": "hold_key", "text": "shift", "duration": 2}, HoldKey(keys=["shift"], seconds=2)),
    ({"action": "type", "text": "héllo\nworld"}, TypeText(text="héllo\nworld")),
    ({"action": "mouse_move", "coordinate": [10, 20]}, MouseMove(x=10, y=20)),
    ({"action": "left_click"}, Click()),
    ({"action": "left_click", "coordinate": [10, 20], "text": "ctrl+shift"},
     Click(x=10, y=20, modifiers=["ctrl", "shift"])),
    ({"action": "right_click", "coordinate": [1, 2]}, Click(x=1, y=2, button="right")),
    ({"action": "middle_click", "coordinate": [1, 2]}, Click(x=1, y=2, button="middle")),
    ({"action": "double_click", "coordinate": [1, 2]}, Click(x=1, y=2, count=2)),
    ({"action": "triple_click", "coordinate": [1, 2]}, Click(x=1, y=2, count=3)),
    ({"action": "left_click_drag", "start_coordinate": [1, 2], "coordinate": [30, 40]},
     Drag(path=[Point(x=1, y=2), Point(x=30, y=40)])),
    ({"action": "left_click_drag", "coordinate": [30, 40]},
     Drag(path=[Point(x=5, y=6), Point(x=30, y=40)])),
    ({"action": "left_mouse_down"}, MouseDown()),
    ({"action": "left_mouse_up"}, MouseUp()),
    ({"action": "scroll", "coordinate": [100, 200], "scroll_direction": "down",
      "scroll_amount": 5}, Scroll(x=100, y=200, dy=5)),
    ({"action": "scroll", "scroll_direction": "left", "scroll_amount": 2, "text": "shift"},
     Scroll(x=5, y=6, dx=-2, modifiers=["shift"])),
    ({"action": "wait", "duration": 2}, Wait(seconds=2)),
    ({"action": "zoom", "region": [0, 0, 640, 400]}, Zoom(x0=0, y0=0, x1=640, y1=400)),
    ({"action": "screenshot"}, Screenshot()),
    ({"action": "cursor_position"}, CursorPosition()),
]


@pytest.mark.parametrize(("data", "expected"), ANTHROPIC_CASES)
def test_every_anthropic_action_translates(data: dict[str, Any], expected: Action) -> None:
    assert action_from_anthropic(data, SAME, cursor=CURSOR) == expected


@pytest.mark.parametrize(("data", "problem"), [
    ({"action": "key", "text": "ctrl+a BackSpace"}, "one key combination"),
    ({"action": "key"}, "missing 'text'"),
    ({"action": "left_click", "coordinate": [10]}, "must be [x, y]"),
    ({"action": "left_click", "coordinate": ["a", 1]}, "must be a number"),
    ({"action": "left_click", "coordinate": [True, 1]}, "must be a number"),
    ({"action": "mouse_move", "coordinate": [float("nan"), 1]}, "finite"),
    ({"action": "scroll", "coordinate": [1, 1], "scroll_direction": "sideways"}, "up, down"),
    ({"action": "scroll", "coordinate": [1, 1], "scroll_direction": "up",
      "scroll_amount": -2}, "whole number"),
    ({"action": "wait", "duration": 999}, "less than or equal"),
    ({"action": "left_mouse_down", "coordinate": [1, 1]}, "move the mouse first"),
    ({"action": "zoom", "region": [10, 10, 5, 20]}, "x1 > x0"),
    ({"action": "type", "text": "x" * 5000}, "at most 4000"),
    ({"text": "no action"}, "needs an 'action'"),
])
def test_malformed_anthropic_input_is_explained(data: dict[str, Any], problem: str) -> None:
    with pytest.raises(WireError, match=re.escape(problem)):
        action_from_anthropic(data, SAME)
    proposed = propose_from_anthropic("toolu_1", data, SAME)
    assert proposed.action is None
    assert problem in proposed.error
    assert proposed.call_id == "toolu_1"
    assert proposed.raw == data


def test_older_tool_versions_refuse_newer_actions() -> None:
    with pytest.raises(WireError, match="not part of computer_20250124"):
        action_from_anthropic({"action": "zoom", "region": [0, 0, 9, 9]}, SAME,
                              tool_version="computer_20250124")
    with pytest.raises(WireError, match="not part of computer_20241022"):
        action_from_anthropic({"action": "scroll", "scroll_direction": "up"}, SAME,
                              tool_version="computer_20241022")


@pytest.mark.parametrize("action", [case[1] for case in ANTHROPIC_CASES])
def test_anthropic_rendering_round_trips(action: Action) -> None:
    start = action.path[0] if isinstance(action, Drag) else None
    cursor = (start.x, start.y) if start else CURSOR
    data = action_to_anthropic(action, SAME)
    assert action_from_anthropic(data, SAME, cursor=cursor) == action


def test_anthropic_rendering_scales_to_the_model_space() -> None:
    assert action_to_anthropic(Click(x=961, y=540), WIDE) == {"action": "left_click",
                                                              "coordinate": [683, 384]}
    with pytest.raises(WireError):
        action_to_anthropic(Click(x=1, y=1, button="back"), WIDE)


# -- openai computer_use_preview -----------------------------------------------------

OPENAI_CASES: list[tuple[dict[str, Any], Action]] = [
    ({"type": "click", "button": "left", "x": 1, "y": 2}, Click(x=1, y=2)),
    ({"type": "click", "button": "right", "x": 1, "y": 2, "keys": ["SHIFT"]},
     Click(x=1, y=2, button="right", modifiers=["shift"])),
    ({"type": "click", "button": "wheel", "x": 1, "y": 2}, Click(x=1, y=2, button="middle")),
    ({"type": "click", "button": "back", "x": 1, "y": 2}, Click(x=1, y=2, button="back")),
    ({"type": "click", "button": "forward", "x": 1, "y": 2},
     Click(x=1, y=2, button="forward")),
    ({"type": "double_click", "x": 3, "y": 4}, Click(x=3, y=4, count=2)),
    ({"type": "drag", "path": [{"x": 1, "y": 2}, {"x": 5, "y": 6}, {"x": 9, "y": 9}]},
     Drag(path=[Point(x=1, y=2), Point(x=5, y=6), Point(x=9, y=9)])),
    ({"type": "keypress", "keys": ["CTRL", "C"]}, Key(keys=["ctrl", "c"])),
    ({"type": "keypress", "keys": ["ctrl+shift+ESC"]}, Key(keys=["ctrl", "shift", "escape"])),
    ({"type": "keypress", "keys": ["ARROWLEFT"]}, Key(keys=["left"])),
    ({"type": "move", "x": 7, "y": 8}, MouseMove(x=7, y=8)),
    ({"type": "scroll", "x": 10, "y": 20, "scroll_x": 0, "scroll_y": 250},
     Scroll(x=10, y=20, dy=2)),
    ({"type": "scroll", "x": 10, "y": 20, "scroll_x": -30, "scroll_y": 0},
     Scroll(x=10, y=20, dx=-1)),
    ({"type": "type", "text": "hello"}, TypeText(text="hello")),
    ({"type": "wait"}, Wait(seconds=1.0)),
    ({"type": "screenshot"}, Screenshot()),
]


@pytest.mark.parametrize(("data", "expected"), OPENAI_CASES)
def test_every_openai_action_translates(data: dict[str, Any], expected: Action) -> None:
    assert action_from_openai(data, SAME) == expected


@pytest.mark.parametrize("action", [case[1] for case in OPENAI_CASES])
def test_openai_rendering_round_trips(action: Action) -> None:
    assert action_from_openai(action_to_openai(action, SAME), SAME) == action


@pytest.mark.parametrize(("data", "problem"), [
    ({"type": "click", "button": "thumb", "x": 1, "y": 2}, "button must be one of"),
    ({"type": "drag", "path": [{"x": 1, "y": 2}]}, "at least 2"),
    ({"type": "drag", "path": "north"}, "list of points"),
    ({"type": "keypress", "keys": []}, "empty"),
    ({"type": "keypress", "keys": "CTRL"}, None),
    ({"type": "scroll", "x": 1, "y": 1, "scroll_y": "lots"}, "must be a number"),
    ({"type": "move", "x": 99999, "y": 1}, "outside"),
    ({"kind": "click"}, "needs a 'type'"),
])
def test_malformed_openai_actions_are_explained(data: dict[str, Any],
                                                problem: str | None) -> None:
    proposed = propose_from_openai("call_1", data, SAME)
    if problem is None:  # a lone string is accepted as one key
        assert proposed.action == Key(keys=["ctrl"])
        return
    assert proposed.action is None
    assert problem in proposed.error


def test_openai_has_no_equivalent_for_some_actions() -> None:
    for action in (HoldKey(keys=["a"], seconds=1), Zoom(x0=0, y0=0, x1=2, y1=2),
                   Click(x=1, y=1, count=3), Key(keys=["a"], repeat=2), Click()):
        with pytest.raises(WireError, match="openai has no"):
            action_to_openai(action, SAME)


# -- chat functions ------------------------------------------------------------------

@pytest.mark.parametrize(("name", "arguments", "expected"), [
    ("click", {"x": 1, "y": 2}, Click(x=1, y=2)),
    ("click", {"x": 1, "y": 2, "button": "right", "clicks": 2},
     Click(x=1, y=2, button="right", count=2)),
    ("click", {"x": "1", "y": "2", "hold_keys": ["ctrl"]}, Click(x=1, y=2, modifiers=["ctrl"])),
    ("left_click", {"coordinate": [3, 4]}, Click(x=3, y=4)),
    ("double_click", {"x": 1, "y": 2}, Click(x=1, y=2, count=2)),
    ("type_text", {"text": "hi"}, TypeText(text="hi")),
    ("type", {"text": "hi"}, TypeText(text="hi")),
    ("press_keys", {"keys": ["ctrl", "s"]}, Key(keys=["ctrl", "s"])),
    ("hotkey", {"keys": "ctrl+s"}, Key(keys=["ctrl", "s"])),
    ("scroll", {"x": 5, "y": 5, "direction": "up", "amount": 4}, Scroll(x=5, y=5, dy=-4)),
    ("move_mouse", {"x": 5, "y": 5}, MouseMove(x=5, y=5)),
    ("drag", {"from_x": 1, "from_y": 2, "to_x": 3, "to_y": 4},
     Drag(path=[Point(x=1, y=2), Point(x=3, y=4)])),
    ("wait", {"seconds": 0.5}, Wait(seconds=0.5)),
])
def test_chat_functions_translate(name: str, arguments: dict[str, Any],
                                  expected: Action) -> None:
    assert action_from_chat(name, arguments, SAME) == expected


def test_chat_arguments_may_arrive_as_json_text() -> None:
    assert propose_from_chat("c", "click", '{"x": 4, "y": 5}', SAME).action == Click(x=4, y=5)
    assert propose_from_chat("c", "screenshot", "", SAME).action == Screenshot()
    assert "JSON object" in propose_from_chat("c", "click", "[1, 2]", SAME).error


def test_calls_in_text_finds_every_common_shape() -> None:
    text = ('Thinking... <tool_call>{"name": "click", "arguments": {"x": 1, "y": 2}}</tool_call>'
            ' then {"action": "type_text", "text": "a"} and [nonsense] {broken')
    assert calls_in_text(text) == [("click", {"x": 1, "y": 2}), ("type_text", {"text": "a"})]
    assert calls_in_text("I am done, the file is saved.") == []
    assert calls_in_text('{"tool_calls": [{"function": {"name": "wait", "arguments": "{}"}}]}') \
        == [("wait", "{}")]


# -- never an exception --------------------------------------------------------------

values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8,
)
ANTHROPIC_NAMES = [case[0]["action"] for case in ANTHROPIC_CASES] + ["bogus"]
ANTHROPIC_KEYS = ["coordinate", "start_coordinate", "text", "duration", "scroll_direction",
                  "scroll_amount", "region"]
OPENAI_NAMES = [case[0]["type"] for case in OPENAI_CASES]
OPENAI_KEYS = ["x", "y", "button", "keys", "path", "scroll_x", "scroll_y", "text"]


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(ANTHROPIC_NAMES),
       args=st.dictionaries(st.sampled_from(ANTHROPIC_KEYS), values, max_size=4))
def test_any_anthropic_input_yields_an_action_or_an_error(name: str,
                                                          args: dict[str, Any]) -> None:
    proposed = propose_from_anthropic("t", {"action": name, **args}, WIDE, cursor=(1, 1))
    assert (proposed.action is None) == bool(proposed.error)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(OPENAI_NAMES),
       args=st.dictionaries(st.sampled_from(OPENAI_KEYS), values, max_size=4))
def test_any_openai_input_yields_an_action_or_an_error(name: str,
                                                       args: dict[str, Any]) -> None:
    proposed = propose_from_openai("c", {"type": name, **args}, WIDE)
    assert (proposed.action is None) == bool(proposed.error)


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet='{}[]":,xyname0123 clickargumentsaction', max_size=80))
def test_any_text_is_scanned_without_an_exception(text: str) -> None:
    for name, arguments in calls_in_text(text):
        proposed = propose_from_chat("c", name, arguments, SAME)
        assert (proposed.action is None) == bool(proposed.error)
