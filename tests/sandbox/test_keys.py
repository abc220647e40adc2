from __future__ import annotations

import pytest

from sandbox.keys import UnknownKeyError, normalize_key, parse_combo


@pytest.mark.parametrize(
    ("combo", "keys"),
    [
        ("ctrl+s", ["ctrl", "s"]),
        ("Control_L+Shift_L+T", ["ctrl", "shift", "t"]),
        ("super+Return", ["super", "enter"]),
        ("ctrl++", ["ctrl", "+"]),
        ("ctrl+plus", ["ctrl", "+"]),
        ("Prior", ["pageup"]),
        ("KP_Enter", ["kp_enter"]),
        ("alt+F4", ["alt", "f4"]),
    ],
)
def test_combos_parse_to_canonical_keys(combo: str, keys: list[str]) -> None:
    assert parse_combo(combo) == keys


@pytest.mark.parametrize("bad", ["", "ctrl+", "+ctrl+a+", "hyper+x", "f25"])
def test_bad_combos_are_rejected(bad: str) -> None:
    with pytest.raises(UnknownKeyError):
        parse_combo(bad)


def test_space_and_case() -> None:
    assert normalize_key(" ") == "space"
    assert normalize_key("A") == "a"
    assert normalize_key("ESC") == "escape"
