"""The executor's pure parts, checked against deskhand's own contracts (no X server needed)."""

from __future__ import annotations

import io
import json
import struct
from typing import Any

import pytest

from sandbox.actions import (
    MAX_DRAG_POINTS,
    MAX_HOLD_SECONDS,
    MAX_KEY_REPEAT,
    MAX_SCROLL_NOTCHES,
    MAX_TEXT_CHARS,
    MAX_WAIT_SECONDS,
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
    action_to_dict,
)
from sandbox.channel import SettleDefaults
from sandbox.executor import keyboard, settle, validate, wire
from sandbox.keys import CANONICAL_KEYS

_u32 = struct.Struct(">I")

EVERY_ACTION_AT_ITS_LIMITS: list[Action] = [
    Screenshot(), CursorPosition(), Wait(seconds=MAX_WAIT_SECONDS),
    Key(keys=["ctrl", "alt", "shift", "super", "f24", "kp_9"], repeat=MAX_KEY_REPEAT),
    HoldKey(keys=["shift"], seconds=MAX_HOLD_SECONDS),
    TypeText(text="é" * MAX_TEXT_CHARS),
    MouseMove(x=1279, y=799),
    Click(),
    Click(x=0, y=0, button="forward", count=3, modifiers=["ctrl", "alt", "shift", "super"]),
    MouseDown(button="middle"), MouseUp(button="back"),
    Drag(path=[Point(x=i % 1280, y=i % 800) for i in range(MAX_DRAG_POINTS)]),
    Scroll(x=5, y=5, dx=-MAX_SCROLL_NOTCHES, dy=MAX_SCROLL_NOTCHES, modifiers=["shift"]),
    Zoom(x0=0, y0=0, x1=1280, y1=800),
]


def test_every_canonical_key_has_its_own_keysym() -> None:
    keysyms = {key: keyboard.keysym_for_key(key) for key in CANONICAL_KEYS}
    assert all(keysym > 0 for keysym in keysyms.values())
    assert len(set(keysyms.values())) == len(keysyms)


@pytest.mark.parametrize("name", ["Return", "CTRL", "hyper", "", "é"])
def test_non_canonical_key_names_are_refused(name: str) -> None:
    with pytest.raises(wire.RequestError, match="unknown key"):
        keyboard.keysym_for_key(name)


@pytest.mark.parametrize(("char", "keysym"), [
    ("a", 0x61), ("A", 0x41), (" ", 0x20), ("é", 0xE9), ("€", 0x010020AC), ("世", 0x01004E16),
    ("😀", 0x0101F600), ("\n", 0xFF0D), ("\t", 0xFF09)])
def test_characters_map_to_latin1_or_unicode_keysyms(char: str, keysym: int) -> None:
    assert keyboard.keysym_for_char(char) == keysym


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x7f", "\x85", "\ud800"])
def test_control_characters_and_surrogates_cannot_be_typed(char: str) -> None:
    with pytest.raises(wire.RequestError):
        keyboard.keysym_for_char(char)


def test_carriage_returns_type_as_one_return_per_line() -> None:
    assert validate.text("text", "a\r\nb\rc") == [0x61, 0xFF0D, 0x62, 0xFF0D, 0x63]


@pytest.mark.parametrize("action", EVERY_ACTION_AT_ITS_LIMITS, ids=lambda a: a.type)
def test_the_executor_accepts_everything_the_action_models_allow(action: Action) -> None:
    checked = validate.validate_action(action_to_dict(action), 1280, 800)
    assert checked["type"] == action.type


def test_every_action_type_is_known_to_the_executor() -> None:
    assert {action.type for action in EVERY_ACTION_AT_ITS_LIMITS} == set(validate.ACTION_FIELDS)


def test_settle_defaults_follow_the_action_type() -> None:
    defaults = SettleDefaults()
    assert defaults.args_for("mouse_move")["change_timeout_ms"] == 150
    assert defaults.args_for("click")["change_timeout_ms"] == 1000
    assert defaults.args_for("zoom")["enabled"] is False
    assert defaults.args_for("type", enabled=False)["enabled"] is False
    host = settle.settle_params(defaults.args_for("key"), "key")
    executor_own = settle.settle_params(None, "key")
    assert host == executor_own  # the two sides agree when the host says nothing


def frame(header: Any, body: bytes = b"") -> bytes:
    data = header if isinstance(header, bytes) else json.dumps(header).encode()
    return _u32.pack(len(data)) + data + _u32.pack(len(body)) + body


def test_frames_round_trip() -> None:
    out = io.BytesIO()
    wire.write_message(out, {"id": 3, "ok": True, "result": {"title": "世界"}}, b"\x89PNG")
    data = out.getvalue()
    header_len = _u32.unpack(data[:4])[0]
    assert json.loads(data[4:4 + header_len]) == {"id": 3, "ok": True, "result": {"title": "世界"}}
    assert data[4 + header_len + 4:] == b"\x89PNG"
    request = wire.read_request(
        io.BytesIO(frame({"id": 1, "op": "hello", "deadline_ms": 5}, b"xy")))
    assert request is not None
    assert (request.id, request.op, request.args, request.body, request.error) == \
        (1, "hello", {}, b"xy", None)


def test_reading_stops_cleanly_between_frames_only() -> None:
    assert wire.read_request(io.BytesIO(b"")) is None
    with pytest.raises(wire.FramingError, match="truncated"):
        wire.read_request(io.BytesIO(frame({"id": 1, "op": "hello"})[:-2]))


def test_an_oversize_response_header_becomes_an_error() -> None:
    out = io.BytesIO()
    wire.write_message(out, {"id": 9, "ok": True, "result": {"blob": "x" * (2 << 20)}}, b"png")
    data = out.getvalue()
    header = json.loads(data[4:4 + _u32.unpack(data[:4])[0]])
    assert header["id"] == 9
    assert header["error"]["code"] == "too_large"
    assert data.endswith(_u32.pack(0))
