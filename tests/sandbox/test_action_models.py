"""The action union: parsing, limits and screen bounds."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.actions import (
    MAX_TEXT_CHARS,
    ActionError,
    Click,
    Key,
    TypeText,
    parse_action,
    parse_action_json,
    validate_for_screen,
)


def test_key_names_are_normalised_from_every_dialect() -> None:
    action = parse_action({"type": "key", "keys": ["Control_L", "Return"]})
    assert isinstance(action, Key)
    assert action.keys == ["ctrl", "enter"]
    combo = parse_action({"type": "key", "keys": ["CTRL", "ALT", "T"]})
    assert isinstance(combo, Key)
    assert combo.keys == ["ctrl", "alt", "t"]


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"type": "key", "keys": ["hyper_x"]}, "unknown key 'hyper_x'"),
        ({"type": "click", "x": 5}, "give both x and y"),
        ({"type": "type", "text": ""}, "text"),
        ({"type": "type", "text": "a" * (MAX_TEXT_CHARS + 1)}, "text"),
        ({"type": "wait", "seconds": 3600}, "seconds"),
        ({"type": "click", "x": 1, "y": 1, "approved": True}, "approved"),
        ({"type": "launch_missiles"}, "type"),
        ({"type": "zoom", "x0": 10, "y0": 0, "x1": 5, "y1": 10}, "x1 > x0"),
        ({"type": "drag", "path": [{"x": 1, "y": 1}]}, "path"),
    ],
)
def test_malformed_actions_are_rejected_with_a_reason(data: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ActionError, match="invalid action") as caught:
        parse_action(data)
    assert fragment in str(caught.value)


def test_points_outside_the_screen_are_rejected() -> None:
    with pytest.raises(ActionError, match=r"outside the 1280x800 screen"):
        validate_for_screen(Click(x=1280, y=10), 1280, 800)
    validate_for_screen(Click(x=1279, y=799), 1280, 800)


def test_unicode_text_round_trips_through_json() -> None:
    action = TypeText(text="Grüße — 世界 ñ €\n")
    assert parse_action_json(action.model_dump_json()) == action


_actions_as_data = st.fixed_dictionaries(
    {"type": st.sampled_from(["click", "mouse_move", "scroll", "drag", "zoom", "key", "type"])},
    optional={
        "x": st.integers(-5, 3000), "y": st.integers(-5, 3000),
        "x0": st.integers(-5, 3000), "y0": st.integers(-5, 3000),
        "x1": st.integers(-5, 3000), "y1": st.integers(-5, 3000),
        "dy": st.integers(-100, 100),
        "keys": st.lists(st.sampled_from(["ctrl", "a", "Return", "bogus", "F13", "f25"]),
                         max_size=3),
        "text": st.text(max_size=20),
        "path": st.lists(st.fixed_dictionaries({"x": st.integers(-5, 3000),
                                                "y": st.integers(-5, 3000)}), max_size=3),
    },
)


@given(_actions_as_data)
def test_an_accepted_action_is_always_inside_the_screen(data: dict[str, Any]) -> None:
    try:
        action = parse_action(data)
        validate_for_screen(action, 1280, 800)
    except ActionError:
        return
    assert all(p.x < 1280 and p.y < 800 for p in action.points())
