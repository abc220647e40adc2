"""deskhand executor: performs desktop actions on one X display, for one sandbox.

Runs *inside* the sandbox as one long-lived process; the host talks to it over
the process's stdin/stdout (or any byte stream a backend connects to them).
Self-contained on purpose: standard library + python-xlib + mss + Pillow, no
deskhand imports, so a backend can copy this one file anywhere and run::

    python3 executor.py [--display :N] [--connect-timeout SECONDS]

Wire protocol (version 1)
=========================

Every message, in both directions, is one frame::

    uint32 big-endian H | H bytes UTF-8 JSON header | uint32 big-endian B | B bytes body

``H`` is at most 1 MiB in both directions; a request body is at most 1 MiB.

Request header::

    {"id": int, "op": str, "args": {...}, "deadline_ms": int}

``deadline_ms`` is an absolute wall-clock time in Unix milliseconds (host and
sandbox share the kernel clock).  A request that arrives after its deadline is
refused; long work (typing, waits, holds, ``run``) checks it as it goes and
answers ``deadline_exceeded``.  Settling never fails a request: it stops early
at the deadline and reports ``stable: false``, because the action already ran.

Response header::

    {"id": int, "ok": true, "result": {...}}
    {"id": int | null, "ok": false, "error": {"code": str, "message": str}}

A response body carries PNG bytes when the result has a ``frame``.

Ops:

``hello``
    ``{"protocol": 1, "width", "height", "pid"}``
``screenshot``
    ``{"frame": meta}`` + PNG body.
``execute``
    args ``{"action": {...}, "settle": {"enabled", "change_timeout_ms",
    "stable_ms", "min_stable_ms", "max_ms"}}`` (every settle field optional), where the action
    is the JSON of a deskhand action (``type`` plus its fields) →
    ``{"output": {...}, "settle": {"changed", "stable", "settle_ms"},
    "frame": meta, "duration_ms"}`` + PNG body of the settled screen.  For
    ``zoom`` the body (and ``frame``) is the zoomed region; ``cursor_position``
    returns ``output: {"x", "y"}``.  Settling (skipped for screenshot,
    cursor_position, zoom and wait) polls the screen every 5 ms: it waits up to
    ``change_timeout_ms`` (default 1000, 150 for mouse_move) for any change,
    then until the screen stays unchanged, give or take a blinking caret, for a
    quiet window of twice the time the screen took to react, at least
    ``min_stable_ms`` (default 12) and at most ``stable_ms`` (default 60), all
    capped by ``max_ms`` (default 3000).
``run``
    args ``{"argv": [str, ...], "timeout_s": float, "stdin": str?}`` →
    ``{"exit_code", "stdout", "stderr", "truncated"}``.  An argument list, never
    a shell string; runs in the sandbox home, in its own process group.
``shutdown``
    ``{}``; the executor answers, then exits 0.

Frame meta: ``{"width", "height", "sha256" (of the PNG body), "window_title"
(the active window's _NET_WM_NAME, "" if none), "cursor": [x, y],
"captured_at" (Unix seconds)}``.

Errors and what the executor does next
--------------------------------------

A well-framed request that is wrong in any way (unknown op, unknown action
type, unknown key, coordinates off the screen, bad arguments, a failing
command) gets an error response and the executor keeps serving.  Codes:
``bad_request``, ``unknown_op``, ``bad_action``, ``too_large``,
``deadline_exceeded``, ``run_failed``, ``internal``, ``x_connection_lost``,
``bad_frame``.

Framing is only trusted while it is self-consistent:

* header longer than 1 MiB: the stream cannot be trusted (it is most likely not
  a frame at all) → one error response with ``id: null``, code ``too_large``,
  then exit status 2;
* header that is not a JSON object, with a body of at most 1 MiB: the lengths
  held, so the frame is skipped → ``bad_request`` with ``id: null``, keep serving;
* valid header with a body over 1 MiB: the body is read and discarded →
  ``too_large`` with the request's id, keep serving;
* invalid header *and* an oversize body, or end of stream inside a frame →
  ``bad_frame`` with ``id: null`` (when the stream is still writable), exit 2;
* end of stream between frames: exit 0.  Losing the X connection: answer
  ``x_connection_lost``, exit 3.

Stdout protection: before anything else the executor moves the channel to
private file descriptors and points fd 0 at /dev/null and fd 1 (and
``sys.stdout``) at stderr, so a library that prints (python-xlib does) cannot
corrupt the channel.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import io
import itertools
import json
import math
import os
import signal
import struct
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TypeGuard

import mss
from PIL import Image, ImageChops
from Xlib import XK, X, Xatom
from Xlib import display as xdisplay
from Xlib import error as xerror
from Xlib.ext import xtest

PROTOCOL_VERSION = 1
MAX_HEADER_BYTES = 1 << 20
MAX_BODY_BYTES = 1 << 20
MAX_OUTPUT_CHARS = 64 * 1024  # per run stream; keeps a response header well under 1 MiB

EXIT_OK = 0
EXIT_BAD_FRAME = 2
EXIT_X_LOST = 3

# Limits the executor enforces on its own; the host is stricter, this is a backstop.
MAX_TEXT_CHARS = 20_000
MAX_WAIT_S = 60.0
MAX_HOLD_S = 30.0
MAX_REPEAT = 100
MAX_NOTCHES = 100
MAX_PATH_POINTS = 1000
MAX_ARGV = 1000

FRAME_INTERVAL_S = 0.005  # settle polls the screen this often; a grab costs ~1 ms
ENCODE_RESERVE_S = 0.040  # time kept back from the deadline to encode the final frame
CARET_MAX_W = 24  # a difference inside a box this small is a caret, not a change
CARET_MAX_H = 48
SPARE_REUSE_S = 0.100  # a borrowed keycode is re-mapped only this long after its last press
DRAG_STEP_PX = 20  # drags move in steps no longer than this, so toolkits see the motion

_u32 = struct.Struct(">I")


class RequestError(Exception):
    """A request that cannot be served; becomes an error response."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class FramingError(Exception):
    """The byte stream stopped being a sequence of frames; the executor must exit."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class XConnectionLost(Exception):
    """The X server went away; nothing more can be served."""


# --- framing ----------------------------------------------------------------------------------


@dataclass
class Request:
    """One parsed request, or the reason it was refused (``error``)."""

    id: int | None
    op: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    deadline_ms: float = 0.0
    body: bytes = b""
    error: RequestError | None = None


def read_exact(reader: BinaryIO, size: int) -> bytes:
    """Read exactly ``size`` bytes or raise :class:`EOFError`."""
    chunks: list[bytes] = []
    missing = size
    while missing:
        chunk = reader.read(missing)
        if not chunk:
            raise EOFError(f"stream ended {missing} bytes short")
        chunks.append(chunk)
        missing -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def discard(reader: BinaryIO, size: int) -> None:
    while size:
        chunk = reader.read(min(size, 1 << 16))
        if not chunk:
            raise EOFError("stream ended inside a discarded body")
        size -= len(chunk)


def read_request(reader: BinaryIO) -> Request | None:
    """Read one frame; ``None`` at a clean end of stream between frames."""
    first = reader.read(4)
    if not first:
        return None
    try:
        return _read_rest_of_frame(first, reader)
    except EOFError as exc:
        raise FramingError("bad_frame", f"truncated frame: {exc}") from None


def _read_rest_of_frame(first: bytes, reader: BinaryIO) -> Request:
    header_len = _u32.unpack(first + read_exact(reader, 4 - len(first)))[0]
    if header_len > MAX_HEADER_BYTES:
        raise FramingError("too_large", f"header of {header_len} bytes exceeds 1 MiB")
    header = _decode_header(read_exact(reader, header_len))
    body_len = _u32.unpack(read_exact(reader, 4))[0]
    if body_len > MAX_BODY_BYTES:
        if header is None:
            raise FramingError("bad_frame", "invalid header followed by an oversize body")
        discard(reader, body_len)
        return Request(id=_request_id(header), error=RequestError(
            "too_large", f"request body of {body_len} bytes exceeds 1 MiB"))
    body = read_exact(reader, body_len)
    if header is None:
        return Request(id=None, error=RequestError("bad_request", "header is not a JSON object"))
    return parse_request(header, body)


def _decode_header(data: bytes) -> dict[str, Any] | None:
    try:
        header = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return header if isinstance(header, dict) else None


def _request_id(header: dict[str, Any]) -> int | None:
    value = header.get("id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_request(header: dict[str, Any], body: bytes) -> Request:
    """Check the header's fields; a bad one yields a refused :class:`Request`."""
    request = Request(id=_request_id(header), body=body)
    op, args, deadline = header.get("op"), header.get("args", {}), header.get("deadline_ms")
    if request.id is None:
        request.error = RequestError("bad_request", "id must be an integer")
    elif not isinstance(op, str):
        request.error = RequestError("bad_request", "op must be a string")
    elif not isinstance(args, dict):
        request.error = RequestError("bad_request", "args must be an object")
    elif not _is_number(deadline):
        request.error = RequestError("bad_request", "deadline_ms must be a number")
    else:
        request.op, request.args, request.deadline_ms = op, args, float(deadline)
    return request


_WRITE_LOCK = threading.Lock()  # replies and the shell gate's events share the stream


def write_message(writer: BinaryIO, header: dict[str, Any], body: bytes = b"") -> None:
    """Write one frame and flush it."""
    with _WRITE_LOCK:
        _write_frame(writer, header, body)


def _write_frame(writer: BinaryIO, header: dict[str, Any], body: bytes) -> None:
    data = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if len(data) > MAX_HEADER_BYTES:
        header = error_header(header.get("id"), RequestError(
            "too_large", f"response header of {len(data)} bytes exceeds 1 MiB"))
        data, body = json.dumps(header).encode("utf-8"), b""
    writer.write(_u32.pack(len(data)) + data + _u32.pack(len(body)))
    if body:
        writer.write(body)
    writer.flush()


def error_header(request_id: int | None, error: RequestError | FramingError) -> dict[str, Any]:
    return {"id": request_id, "ok": False,
            "error": {"code": error.code, "message": error.message}}


# --- deadlines --------------------------------------------------------------------------------


class Deadline:
    """An absolute deadline from a request, checked as long work proceeds."""

    def __init__(self, deadline_ms: float) -> None:
        self._at = deadline_ms / 1000.0

    def remaining(self) -> float:
        return self._at - time.time()

    def check(self, doing: str) -> None:
        if self.remaining() <= 0:
            raise RequestError("deadline_exceeded", f"deadline passed while {doing}")

    def sleep(self, seconds: float, doing: str) -> None:
        """Sleep, but answer ``deadline_exceeded`` instead of sleeping past the deadline."""
        if seconds > self.remaining():
            time.sleep(max(0.0, self.remaining()))
            raise RequestError("deadline_exceeded", f"deadline passed while {doing}")
        time.sleep(seconds)


# --- the X display ----------------------------------------------------------------------------


class Desktop:
    """One python-xlib connection: XTest input, pointer and active-window queries."""

    def __init__(self, display: Any) -> None:
        self.display = display
        if not display.has_extension("XTEST"):
            raise RuntimeError("the X server has no XTEST extension")
        screen = display.screen()
        self.root = screen.root
        self.width: int = screen.width_in_pixels
        self.height: int = screen.height_in_pixels
        self._active = display.intern_atom("_NET_ACTIVE_WINDOW")
        self._wm_name = display.intern_atom("_NET_WM_NAME")
        self._utf8 = display.intern_atom("UTF8_STRING")
        display.set_error_handler(_log_x_error)

    @classmethod
    def connect(cls, name: str, timeout_s: float) -> Desktop:
        """Connect to display ``name``, retrying while the server comes up."""
        give_up = time.monotonic() + timeout_s
        while True:
            try:
                return cls(xdisplay.Display(name))
            except (xerror.DisplayError, xerror.ConnectionClosedError, OSError):
                if time.monotonic() >= give_up:
                    raise
                time.sleep(0.05)

    def key(self, keycode: int, down: bool) -> None:
        xtest.fake_input(self.display, X.KeyPress if down else X.KeyRelease, keycode)

    def button(self, number: int, down: bool) -> None:
        xtest.fake_input(self.display, X.ButtonPress if down else X.ButtonRelease, number)

    def move(self, x: int, y: int) -> None:
        xtest.fake_input(self.display, X.MotionNotify, x=x, y=y)

    def flush(self) -> None:
        self.display.flush()

    def sync(self) -> None:
        """Wait until the server has processed every request sent so far."""
        self.display.sync()

    def pointer(self) -> tuple[int, int]:
        reply = self.root.query_pointer()
        return int(reply.root_x), int(reply.root_y)

    def active_window_title(self) -> str:
        try:
            window = self._active_window()
            return "" if window is None else self._title_of(window)
        except xerror.XError:  # the window closed between the two queries
            return ""

    def _active_window(self) -> Any:
        prop = self.root.get_full_property(self._active, X.AnyPropertyType)
        if prop is None or len(prop.value) == 0 or int(prop.value[0]) == 0:
            return None
        return self.display.create_resource_object("window", int(prop.value[0]))

    def _title_of(self, window: Any) -> str:
        prop = window.get_full_property(self._wm_name, self._utf8)
        if prop is not None:
            return _text(prop.value, "utf-8")
        prop = window.get_full_property(Xatom.WM_NAME, X.AnyPropertyType)
        return "" if prop is None else _text(prop.value, "latin-1")

    def drain_events(self) -> bool:
        """Consume queued events; true when the keyboard mapping changed."""
        changed = False
        while self.display.pending_events():
            event = self.display.next_event()
            changed |= event.type == X.MappingNotify
        return changed


def _text(value: Any, encoding: str) -> str:
    return value.decode(encoding, "replace") if isinstance(value, bytes) else str(value)


def _log_x_error(error: Any, request: Any = None) -> None:
    print(f"executor: X error: {error}", file=sys.stderr, flush=True)


# --- keys -------------------------------------------------------------------------------------

MODIFIER_KEYSYMS = {"ctrl": "Control_L", "alt": "Alt_L", "shift": "Shift_L", "super": "Super_L"}

NAMED_KEYSYMS: dict[str, str] = {
    "enter": "Return", "escape": "Escape", "tab": "Tab", "backspace": "BackSpace",
    "delete": "Delete", "insert": "Insert", "space": "space", "home": "Home", "end": "End",
    "pageup": "Prior", "pagedown": "Next", "up": "Up", "down": "Down", "left": "Left",
    "right": "Right", "menu": "Menu", "printscreen": "Print", "pause": "Pause",
    "capslock": "Caps_Lock", "numlock": "Num_Lock", "scrolllock": "Scroll_Lock",
    "kp_enter": "KP_Enter", "kp_add": "KP_Add", "kp_subtract": "KP_Subtract",
    "kp_multiply": "KP_Multiply", "kp_divide": "KP_Divide", "kp_decimal": "KP_Decimal",
    **{f"kp_{d}": f"KP_{d}" for d in range(10)},
    **{f"f{n}": f"F{n}" for n in range(1, 25)},
}

# Not in python-xlib's default keysym tables; values from X11/XF86keysym.h.
MEDIA_KEYSYMS = {"volumedown": 0x1008FF11, "volumemute": 0x1008FF12, "volumeup": 0x1008FF13}

PRINTABLE_KEYS = frozenset(
    "abcdefghijklmnopqrstuvwxyz0123456789!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
)


def keysym_for_key(name: str) -> int:
    """The X keysym of one canonical deskhand key name (see sandbox/keys.py)."""
    if name in PRINTABLE_KEYS:
        return ord(name)  # ASCII keysyms equal their code points
    if name in MEDIA_KEYSYMS:
        return MEDIA_KEYSYMS[name]
    symbol = MODIFIER_KEYSYMS.get(name) or NAMED_KEYSYMS.get(name)
    keysym = XK.string_to_keysym(symbol) if symbol else X.NoSymbol
    if keysym == X.NoSymbol:
        raise RequestError("bad_action", f"unknown key {name!r}")
    return int(keysym)


def keysym_for_char(char: str) -> int:
    """The keysym that types ``char``: Latin-1 keysyms equal code points, others are Unicode."""
    if char == "\n":
        return int(XK.XK_Return)
    if char == "\t":
        return int(XK.XK_Tab)
    point = ord(char)
    if point < 0x20 or 0x7F <= point < 0xA0:
        raise RequestError("bad_action", f"cannot type control character U+{point:04X}")
    if 0xD800 <= point <= 0xDFFF:
        raise RequestError("bad_action", f"cannot type lone surrogate U+{point:04X}")
    return point if point < 0x100 else 0x01000000 + point


class Keyboard:
    """Presses keysyms through XTest, borrowing unused keycodes for keysyms the map lacks.

    A character such as ``é`` or ``世`` has no key on the server's keymap, so a
    spare (empty) keycode is re-mapped to its keysym, pressed, and later given
    back.  Clients read the new mapping only when they handle the event, so a
    keycode already pressed for another character is re-mapped only after
    ``catch_up`` returned (the executor waits there for the screen to settle,
    the sign that the focused client handled the keys) and at least
    ``SPARE_REUSE_S`` after its last press.
    """

    def __init__(self, desktop: Desktop,
                 catch_up: Callable[[Deadline], None] = lambda deadline: None) -> None:
        self._desktop = desktop
        self._catch_up = catch_up
        self._codes: dict[int, tuple[int, int]] = {}  # keysym -> (keycode, level 0|1)
        self._spares: list[int] = []
        self._borrowed: dict[int, int] = {}  # keycode -> keysym it carries now
        self._last_press: dict[int, float] = {}
        self._load_mapping(find_spares=True)
        self._shift = self._codes[int(XK.XK_Shift_L)][0]

    def _load_mapping(self, *, find_spares: bool = False) -> None:
        info = self._desktop.display.display.info
        first, last = int(info.min_keycode), int(info.max_keycode)
        rows = self._desktop.display.get_keyboard_mapping(first, last - first + 1)
        self._codes.clear()
        for keycode, row in enumerate(rows, start=first):
            if find_spares and keycode > 8 and not any(row):
                self._spares.append(keycode)
            if keycode not in self._borrowed:
                self._index_row(keycode, row)

    def _index_row(self, keycode: int, row: Any) -> None:
        for level in (0, 1):  # group 1 only: reachable with or without shift
            keysym = int(row[level]) if len(row) > level else 0
            if keysym and (keysym not in self._codes or self._codes[keysym][1] > level):
                self._codes[keysym] = (keycode, level)

    def refresh(self) -> None:
        """Re-read the server's keymap (another client changed it)."""
        self._load_mapping()

    def resolve(self, keysym: int, deadline: Deadline) -> tuple[int, bool]:
        """Keycode for ``keysym`` and whether shift must be held for it."""
        for keycode, carried in self._borrowed.items():
            if carried == keysym:
                return keycode, False
        if keysym in self._codes:
            keycode, level = self._codes[keysym]
            return keycode, level == 1
        return self._borrow(keysym, deadline), False

    def _borrow(self, keysym: int, deadline: Deadline) -> int:
        if not self._spares:
            raise RequestError("bad_action", f"no spare keycode to type keysym 0x{keysym:x}")
        keycode = min(self._spares, key=lambda code: self._last_press.get(code, 0.0))
        if keycode in self._borrowed:
            self._desktop.flush()
            self._catch_up(deadline)
        wait = self._last_press.get(keycode, 0.0) + SPARE_REUSE_S - time.monotonic()
        if wait > 0:
            deadline.sleep(wait, "typing")
        self._desktop.display.change_keyboard_mapping(keycode, [(keysym, keysym)])
        self._borrowed[keycode] = keysym
        return keycode

    def tap(self, keysym: int, deadline: Deadline) -> None:
        keycode, shift = self.resolve(keysym, deadline)
        if shift:
            self._desktop.key(self._shift, True)
        self.press(keycode, True)
        self.press(keycode, False)
        if shift:
            self._desktop.key(self._shift, False)
        self._desktop.flush()

    def press(self, keycode: int, down: bool) -> None:
        self._desktop.key(keycode, down)
        self._last_press[keycode] = time.monotonic()

    @contextmanager
    def held(self, keysyms: list[int], deadline: Deadline) -> Iterator[None]:
        """Hold ``keysyms`` down in order (plus shift where a key needs it); release in reverse."""
        codes: list[int] = []
        try:
            for keysym in keysyms:
                keycode, shift = self.resolve(keysym, deadline)
                if shift and self._shift not in codes:
                    codes.insert(0, self._shift)
                    self.press(self._shift, True)
                codes.append(keycode)
                self.press(keycode, True)
            self._desktop.flush()
            yield
        finally:
            for keycode in reversed(codes):
                self.press(keycode, False)
            self._desktop.flush()

    def give_back(self, *, wait: bool = True) -> None:
        """Return every borrowed keycode to NoSymbol; with ``wait``, only once clients had
        ``SPARE_REUSE_S`` to read them."""
        if not self._borrowed:
            return
        latest = max(self._last_press.get(code, 0.0) for code in self._borrowed)
        if wait:
            time.sleep(max(0.0, latest + SPARE_REUSE_S - time.monotonic()))
        for keycode in self._borrowed:
            self._desktop.display.change_keyboard_mapping(keycode, [(X.NoSymbol, X.NoSymbol)])
        self._borrowed.clear()
        self._desktop.sync()


# --- the screen -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Capture:
    """Raw BGRX pixels of one grab."""

    raw: bytearray
    width: int
    height: int
    at: float  # time.monotonic() of the grab
    wall: float  # time.time() of the grab


class Screen:
    """Grabs the X screen with mss and encodes grabs as PNG."""

    def __init__(self, display_name: str, width: int, height: int) -> None:
        factory = getattr(mss, "MSS", None) or mss.mss  # mss >= 10.2 renamed the factory
        self._mss = factory(display=display_name)
        self.display_name = display_name
        self.width, self.height = width, height
        # One worker: zlib releases the GIL, so encoding overlaps the grabs of settling.
        self._encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="png")
        self._last: tuple[Capture, bytes] | None = None  # screens often repeat between requests

    def grab(self, left: int = 0, top: int = 0, width: int = 0, height: int = 0) -> Capture:
        width, height = width or self.width, height or self.height
        wall, at = time.time(), time.monotonic()
        shot = self._mss.grab({"left": left, "top": top, "width": width, "height": height})
        return Capture(raw=shot.raw, width=width, height=height, at=at, wall=wall)

    def png(self, capture: Capture) -> bytes:
        """The capture as PNG; a screen identical to the last one encoded costs nothing."""
        last = self._last
        if last is not None and (last[0].width, last[0].height, last[0].raw) == \
                (capture.width, capture.height, capture.raw):
            return last[1]
        png = encode_png(capture)
        self.remember(capture, png)
        return png

    def remember(self, capture: Capture, png: bytes) -> None:
        self._last = (capture, png)

    def encode_later(self, capture: Capture) -> Future[bytes]:
        return self._encoder.submit(encode_png, capture)

    def close(self) -> None:
        self._encoder.shutdown(cancel_futures=True)
        self._mss.close()


def encode_png(capture: Capture) -> bytes:
    image = Image.frombytes("RGB", (capture.width, capture.height), capture.raw, "raw", "BGRX")
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=1)
    return out.getvalue()


def _as_image(capture: Capture) -> Image.Image:
    # Channel order does not matter for a difference; RGBX keeps getbbox on every band.
    return Image.frombuffer("RGBX", (capture.width, capture.height), capture.raw,
                            "raw", "RGBX", 0, 1)


def looks_unchanged(a: Capture, b: Capture) -> bool:
    """Equal, or different only inside a caret-sized box (a blinking cursor)."""
    if a.raw == b.raw:
        return True
    box = ImageChops.difference(_as_image(a), _as_image(b)).getbbox()
    return box is None or (box[2] - box[0] <= CARET_MAX_W and box[3] - box[1] <= CARET_MAX_H)


@dataclass
class Settled:
    capture: Capture
    png: Future[bytes] | None  # the capture's PNG, when settling already started encoding it
    changed: bool
    stable: bool

    def encoded(self, screen: Screen) -> bytes:
        if self.png is None:
            return screen.png(self.capture)
        png = self.png.result()
        screen.remember(self.capture, png)
        return png


@dataclass(frozen=True)
class SettleParams:
    enabled: bool
    change_timeout_s: float
    stable_s: float
    max_s: float
    min_stable_s: float = 0.012

    def quiet_window(self, reaction_s: float) -> float:
        """How long the screen must stay put, given how long it took to react.

        An app that reacted at once (a terminal echoing a key) finishes drawing
        at once too; one that took long (a window opening) may paint in stages,
        so it gets the full ``stable_s``.
        """
        return min(self.stable_s, max(self.min_stable_s, 2 * reaction_s))


# Before a spare keycode is re-mapped, typing waits for the app to draw what it
# has; a fixed window, since a half-drawn screen here means a wrong character.
CATCH_UP = SettleParams(enabled=True, change_timeout_s=0.25, stable_s=0.03, max_s=1.0,
                        min_stable_s=0.03)


def settle(screen: Screen, before: Capture, params: SettleParams, deadline: Deadline) -> Settled:
    """Wait for the screen to react to an action, then to stop changing.

    First wait (up to the change timeout) for any difference from ``before``;
    then until frames stay unchanged, give or take a caret, for ``stable_s``.
    The frame returned is the first of the stable run, so it never predates an
    effect that was seen.  The whole wait is capped by ``max_s`` and the deadline.
    """
    start = time.monotonic()
    limit = start + max(0.0, min(params.max_s, deadline.remaining() - ENCODE_RESERVE_S))
    latest = screen.grab()
    while latest.raw == before.raw:
        if latest.at >= min(start + params.change_timeout_s, limit):
            return Settled(latest, None, changed=False, stable=latest.at < limit)
        latest = _grab_after(screen, latest)
    quiet = params.quiet_window(latest.at - start)
    return _wait_until_stable(screen, latest, quiet, limit)


def _wait_until_stable(screen: Screen, first: Capture, stable_s: float, limit: float) -> Settled:
    candidate, latest = first, first
    png: Future[bytes] | None = None
    while latest.at - candidate.at < stable_s:
        if latest.at >= limit:
            _drop(png)
            return Settled(latest, None, changed=True, stable=False)
        if png is None and latest is not candidate:
            png = screen.encode_later(candidate)  # likely the answer: encode while waiting
        latest = _grab_after(screen, latest)
        if not looks_unchanged(candidate, latest):
            _drop(png)
            candidate, png = latest, None
    return Settled(candidate, png, changed=True, stable=True)


def _drop(png: Future[bytes] | None) -> None:
    if png is not None:
        png.cancel()  # stops it unless it already runs; then it finishes unused


def _grab_after(screen: Screen, previous: Capture) -> Capture:
    time.sleep(max(0.0, previous.at + FRAME_INTERVAL_S - time.monotonic()))
    return screen.grab()


# --- validating actions -----------------------------------------------------------------------

REQUIRED = object()
Check = Callable[[str, Any], Any]
BUTTONS = {"left": 1, "middle": 2, "right": 3, "back": 8, "forward": 9}


def _bad(name: str, why: str) -> RequestError:
    return RequestError("bad_action", f"{name}: {why}")


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def integer(low: int, high: int) -> Check:
    def check(name: str, value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise _bad(name, f"must be an integer in {low}..{high}")
        return value
    return check


def number(low: float, high: float) -> Check:
    def check(name: str, value: Any) -> float:
        if not _is_number(value) or not low <= value <= high:
            raise _bad(name, f"must be a number in {low:g}..{high:g}")
        return float(value)
    return check


def optional(inner: Check) -> Check:
    def check(name: str, value: Any) -> Any:
        return None if value is None else inner(name, value)
    return check


def key_list(low: int, high: int) -> Check:
    def check(name: str, value: Any) -> list[int]:
        if not isinstance(value, list) or not low <= len(value) <= high:
            raise _bad(name, f"must be a list of {low}..{high} key names")
        if not all(isinstance(key, str) for key in value):
            raise _bad(name, "key names must be strings")
        return [keysym_for_key(key) for key in value]
    return check


def button(name: str, value: Any) -> int:
    if value not in BUTTONS:
        raise _bad(name, f"must be one of {', '.join(BUTTONS)}")
    return BUTTONS[value]


def text(name: str, value: Any) -> list[int]:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_TEXT_CHARS:
        raise _bad(name, f"must be a string of 1..{MAX_TEXT_CHARS} characters")
    return [keysym_for_char(char) for char in value.replace("\r\n", "\n").replace("\r", "\n")]


def point_list(name: str, value: Any) -> list[tuple[int, int]]:
    if not isinstance(value, list) or not 2 <= len(value) <= MAX_PATH_POINTS:
        raise _bad(name, f"must be a list of 2..{MAX_PATH_POINTS} points")
    coordinate = integer(0, 1 << 16)
    points = []
    for point in value:
        if not isinstance(point, dict) or set(point) != {"x", "y"}:
            raise _bad(name, 'each point must be {"x": int, "y": int}')
        points.append((coordinate(name, point["x"]), coordinate(name, point["y"])))
    return points


COORD = integer(0, 1 << 16)
MOUSE_BUTTON: tuple[Check, Any] = (button, "left")
MODIFIER_LIST: tuple[Check, Any] = (key_list(0, 4), [])

ACTION_FIELDS: dict[str, dict[str, tuple[Check, Any]]] = {
    "screenshot": {},
    "cursor_position": {},
    "wait": {"seconds": (number(0, MAX_WAIT_S), 1.0)},
    "key": {"keys": (key_list(1, 6), REQUIRED), "repeat": (integer(1, MAX_REPEAT), 1)},
    "hold_key": {"keys": (key_list(1, 6), REQUIRED), "seconds": (number(0, MAX_HOLD_S), REQUIRED)},
    "type": {"text": (text, REQUIRED)},
    "mouse_move": {"x": (COORD, REQUIRED), "y": (COORD, REQUIRED)},
    "click": {"x": (optional(COORD), None), "y": (optional(COORD), None), "button": MOUSE_BUTTON,
              "count": (integer(1, 3), 1), "modifiers": MODIFIER_LIST},
    "mouse_down": {"button": MOUSE_BUTTON},
    "mouse_up": {"button": MOUSE_BUTTON},
    "drag": {"path": (point_list, REQUIRED), "button": MOUSE_BUTTON},
    "scroll": {"x": (COORD, REQUIRED), "y": (COORD, REQUIRED),
               "dx": (integer(-MAX_NOTCHES, MAX_NOTCHES), 0),
               "dy": (integer(-MAX_NOTCHES, MAX_NOTCHES), 0), "modifiers": MODIFIER_LIST},
    "zoom": {"x0": (COORD, REQUIRED), "y0": (COORD, REQUIRED),
             "x1": (COORD, REQUIRED), "y1": (COORD, REQUIRED)},
}

OBSERVING = frozenset({"screenshot", "cursor_position", "zoom", "wait"})


def validate_action(data: Any, width: int, height: int) -> dict[str, Any]:
    """Check an action's JSON field by field; returns the fields, converted for execution."""
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise RequestError("bad_action", "action must be an object with a string 'type'")
    kind = data["type"]
    if kind not in ACTION_FIELDS:
        raise RequestError("bad_action", f"unknown action type {kind!r}")
    fields = ACTION_FIELDS[kind]
    unknown = set(data) - set(fields) - {"type"}
    if unknown:
        raise RequestError("bad_action", f"{kind}: unknown field(s) {', '.join(sorted(unknown))}")
    action = {"type": kind}
    for name, (check, default) in fields.items():
        if name not in data and default is REQUIRED:
            raise _bad(f"{kind}.{name}", "is required")
        action[name] = check(f"{kind}.{name}", data[name]) if name in data else default
    _check_on_screen(action, width, height)
    return action


def _check_on_screen(action: dict[str, Any], width: int, height: int) -> None:
    if action["type"] == "click" and (action["x"] is None) != (action["y"] is None):
        raise _bad("click", "give both x and y, or neither")
    if action["type"] == "zoom":
        _check_zoom(action, width, height)
        return
    for x, y in _points(action):
        if x >= width or y >= height:
            raise _bad(action["type"], f"point ({x}, {y}) is outside the {width}x{height} screen")


def _points(action: dict[str, Any]) -> list[tuple[int, int]]:
    if action["type"] == "drag":
        return list(action["path"])
    if action.get("x") is not None and action.get("y") is not None:
        return [(action["x"], action["y"])]
    return []


def _check_zoom(action: dict[str, Any], width: int, height: int) -> None:
    if not (action["x0"] < action["x1"] <= width and action["y0"] < action["y1"] <= height):
        raise _bad("zoom", f"region must satisfy x0 < x1 <= {width} and y0 < y1 <= {height}")


def settle_params(data: Any, kind: str) -> SettleParams:
    """The settle request, with defaults that suit the action type."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RequestError("bad_request", "settle must be an object")
    default_change = 150 if kind == "mouse_move" else 1000
    enabled = data.get("enabled", kind not in OBSERVING)
    if not isinstance(enabled, bool):
        raise RequestError("bad_request", "settle.enabled must be a boolean")
    return SettleParams(
        enabled=enabled and kind not in OBSERVING,
        change_timeout_s=_milliseconds(data, "change_timeout_ms", default_change),
        stable_s=_milliseconds(data, "stable_ms", 60),
        max_s=_milliseconds(data, "max_ms", 3000),
        min_stable_s=min(_milliseconds(data, "min_stable_ms", 12),
                         _milliseconds(data, "stable_ms", 60)),
    )


def _milliseconds(data: dict[str, Any], name: str, default: float) -> float:
    value = data.get(name, default)
    if not _is_number(value) or not 0 <= value <= 60_000:
        raise RequestError("bad_request", f"settle.{name} must be a number in 0..60000")
    return float(value) / 1000.0


# --- performing actions -----------------------------------------------------------------------


class Actions:
    """Performs validated actions; each method returns the action's ``output``."""

    def __init__(self, desktop: Desktop, keyboard: Keyboard) -> None:
        self.desktop = desktop
        self.keyboard = keyboard

    def perform(self, action: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        method: Callable[[dict[str, Any], Deadline], dict[str, Any]] = getattr(
            self, "do_" + action["type"])
        output = method(action, deadline)
        self.desktop.sync()
        return output

    def do_screenshot(self, action: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        return {}

    def do_zoom(self, action: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        return {}

    def do_cursor_position(self, action: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        x, y = self.desktop.pointer()
        return {"x": x, "y": y}

    def do_wait(self, action: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        deadline.sleep(action["seconds"], "waiting")
        return {}

    def do_key(self, action: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        for _ in range(action["repeat"]):
            deadline.check("pressing keys")
            with self.keyboard.held(action["keys"], deadline):
                pass
        return {}

    def do_hold_key(self, action: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        with self.keyboard.held(action["keys"], deadline):
            deadline.sleep(action["seconds"], "holding keys")
        return {}

    def do_type(self, action: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        keysyms = action["text"]
        for done, keysym in enumerate(keysyms):
            if deadline.remaining() <= 0:
                raise RequestError("deadline_exceeded",
                                   f"deadline passed after typing {done} of {len(keysyms)} "
                                   "characters")
            self.keyboard.tap(keysym, deadline)
        return {}

    def do_mouse_move(self, action: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        self.desktop.move(action["x"], action["y"])
        return {}

    def do_click(self, action: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        if action["x"] is not None:
            self.desktop.move(action["x"], action["y"])
        with self.keyboard.held(action["modifiers"], deadline):
            for _ in range(action["count"]):
                self.desktop.button(action["button"], True)
                self.desktop.button(action["button"], False)
        return {}

    def do_mouse_down(self, action: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        self.desktop.button(action["button"], True)
        return {}

    def do_mouse_up(self, action: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        self.desktop.button(action["button"], False)
        return {}

    def do_drag(self, action: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        path = action["path"]
        self.desktop.move(*path[0])
        self.desktop.button(action["button"], True)
        try:
            for start, end in itertools.pairwise(path):
                for x, y in _steps(start, end):
                    deadline.check("dragging")
                    self.desktop.move(x, y)
                    self.desktop.flush()
                    time.sleep(0.001)  # distinct motion events, as a hand would make
        finally:
            self.desktop.button(action["button"], False)
        return {}

    def do_scroll(self, action: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        self.desktop.move(action["x"], action["y"])
        dx, dy = action["dx"], action["dy"]
        with self.keyboard.held(action["modifiers"], deadline):
            for wheel, notches in ((5 if dy > 0 else 4, abs(dy)), (7 if dx > 0 else 6, abs(dx))):
                for _ in range(notches):
                    self.desktop.button(wheel, True)
                    self.desktop.button(wheel, False)
        return {}


def _steps(start: tuple[int, int], end: tuple[int, int]) -> list[tuple[int, int]]:
    """Points from just after ``start`` to ``end``, no step longer than DRAG_STEP_PX."""
    count = max(1, math.ceil(math.dist(start, end) / DRAG_STEP_PX))
    return [(round(start[0] + (end[0] - start[0]) * i / count),
             round(start[1] + (end[1] - start[1]) * i / count)) for i in range(1, count + 1)]


# --- ops --------------------------------------------------------------------------------------

Result = tuple[dict[str, Any], bytes]


class Executor:
    """Serves the protocol's ops against one display."""

    def __init__(self, desktop: Desktop, screen: Screen) -> None:
        self.desktop = desktop
        self.screen = screen
        self.keyboard = Keyboard(desktop, catch_up=self._let_clients_catch_up)
        self._reference: Capture | None = None  # the screen the clients were last seen to show
        self.actions = Actions(desktop, self.keyboard)
        self.commands = Commands()
        self.ops: dict[str, Callable[[dict[str, Any], Deadline], Result]] = {
            "hello": self.op_hello, "screenshot": self.op_screenshot,
            "execute": self.op_execute, "run": self.op_run, "shutdown": self.op_shutdown,
            "selection": self.op_selection,
        }

    def handle(self, request: Request) -> Result:
        deadline = Deadline(request.deadline_ms)
        if request.op not in self.ops:
            raise RequestError("unknown_op", f"unknown op {request.op!r}")
        deadline.check("the request was queued")
        if self.desktop.drain_events():
            self.keyboard.refresh()
        return self.ops[request.op](request.args, deadline)

    def op_hello(self, args: dict[str, Any], deadline: Deadline) -> Result:
        return {"protocol": PROTOCOL_VERSION, "width": self.desktop.width,
                "height": self.desktop.height, "pid": os.getpid()}, b""

    def op_shutdown(self, args: dict[str, Any], deadline: Deadline) -> Result:
        return {}, b""

    def op_screenshot(self, args: dict[str, Any], deadline: Deadline) -> Result:
        capture = self.screen.grab()
        png = self.screen.png(capture)
        return {"frame": self.frame_meta(capture, png)}, png

    def frame_meta(self, capture: Capture, png: bytes) -> dict[str, Any]:
        return {"width": capture.width, "height": capture.height,
                "sha256": hashlib.sha256(png).hexdigest(),
                "window_title": self.desktop.active_window_title(),
                "cursor": list(self.desktop.pointer()), "captured_at": capture.wall}

    def op_execute(self, args: dict[str, Any], deadline: Deadline) -> Result:
        started = time.monotonic()
        action = validate_action(args.get("action"), self.desktop.width, self.desktop.height)
        params = settle_params(args.get("settle"), action["type"])
        if action["type"] == "type" and len(action["text"]) > 1:
            # An app draws a burst of typed text in chunks: wait out the gaps.
            params = dataclasses.replace(params, min_stable_s=params.stable_s)
        output, settled, settle_s = self._perform_and_settle(action, params, deadline)
        png = settled.encoded(self.screen)
        return {"output": output,
                "settle": {"changed": settled.changed, "stable": settled.stable,
                           "settle_ms": round(settle_s * 1000, 2)},
                "frame": self.frame_meta(settled.capture, png),
                "duration_ms": round((time.monotonic() - started) * 1000, 2)}, png

    def _perform_and_settle(self, action: dict[str, Any], params: SettleParams,
                            deadline: Deadline) -> tuple[dict[str, Any], Settled, float]:
        before = self.screen.grab() if params.enabled else None
        self._reference = before
        settled: Settled | None = None
        try:
            output = self.actions.perform(action, deadline)
            settled, settle_s = self._observe(action, before, params, deadline)
        finally:
            # Borrowed keycodes go back only after clients had time to read them: a
            # screen that settled may still have keys queued in a busy client.
            self.keyboard.give_back(wait=True)
        return output, settled, settle_s

    def _let_clients_catch_up(self, deadline: Deadline) -> None:
        """Wait until the screen reacted to the keys typed so far and settled."""
        reference = self._reference or self.screen.grab()
        settled = settle(self.screen, reference, CATCH_UP, deadline)
        _drop(settled.png)
        self._reference = settled.capture

    def _observe(self, action: dict[str, Any], before: Capture | None, params: SettleParams,
                 deadline: Deadline) -> tuple[Settled, float]:
        if action["type"] == "zoom":
            x0, y0 = action["x0"], action["y0"]
            capture = self.screen.grab(x0, y0, action["x1"] - x0, action["y1"] - y0)
            return Settled(capture, None, changed=False, stable=True), 0.0
        if before is None:
            return Settled(self.screen.grab(), None, changed=False, stable=True), 0.0
        started = time.monotonic()
        settled = settle(self.screen, before, params, deadline)
        return settled, time.monotonic() - started

    def op_run(self, args: dict[str, Any], deadline: Deadline) -> Result:
        argv, stdin = _run_argv(args.get("argv")), args.get("stdin")
        timeout = args.get("timeout_s", 30.0)
        if not _is_number(timeout) or timeout <= 0:
            raise RequestError("bad_request", "timeout_s must be a positive number")
        if stdin is not None and not isinstance(stdin, str):
            raise RequestError("bad_request", "stdin must be a string")
        return self.commands.run(argv, stdin, min(float(timeout), deadline.remaining())), b""


    def open_shell_gate(self, send_event: Callable[[dict[str, Any]], None]) -> None:
        """Serve the desktop shells' command gate (``gate.py``); verdicts come as requests."""
        gate = _sibling("gate").ShellGate(send_event)

        def op_gate_verdict(args: dict[str, Any], deadline: Deadline) -> Result:
            try:
                gate.verdict(args)
            except ValueError as exc:
                raise RequestError("bad_request", str(exc)) from None
            return {}, b""

        self.ops["gate_verdict"] = op_gate_verdict

    def op_selection(self, args: dict[str, Any], deadline: Deadline) -> Result:
        """The clipboard's or primary selection's text (``clipboard.py``; ``null``: unknown)."""
        which = args.get("name", "clipboard")
        if which not in {"clipboard", "primary"}:
            raise RequestError("bad_request", "name must be clipboard or primary")
        reader = _sibling("clipboard").read_selection
        text = reader(self.screen.display_name, which, min(2.0, deadline.remaining()))
        return {"text": text}, b""


def _sibling(name: str) -> Any:
    """A module beside this file, loaded by path: this file also runs as a plain script."""
    import importlib.util
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"deskhand_executor_{name}", path)
    if spec is None or spec.loader is None:
        raise RequestError("unavailable", f"{path} cannot be loaded")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_argv(argv: Any) -> list[str]:
    if not isinstance(argv, list) or not 1 <= len(argv) <= MAX_ARGV:
        raise RequestError("bad_request", f"argv must be a list of 1..{MAX_ARGV} strings")
    if not all(isinstance(arg, str) and "\x00" not in arg for arg in argv):
        raise RequestError("bad_request", "argv items must be strings without NUL")
    return argv


class Commands:
    """Runs ``run`` requests, each in its own process group, and remembers the groups.

    A command's background children stay in its group, so :meth:`end_all` (called
    when the executor exits) takes them down too.
    """

    def __init__(self) -> None:
        self._groups: set[int] = set()

    def run(self, argv: list[str], stdin: str | None, timeout_s: float) -> dict[str, Any]:
        """Run ``argv`` in the home directory; the whole group is killed on timeout."""
        if timeout_s <= 0:
            raise RequestError("deadline_exceeded", "no time left to run the command")
        proc = self._start(argv, stdin is not None)
        try:
            out, err = proc.communicate(None if stdin is None else stdin.encode("utf-8"),
                                        timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.communicate(timeout=5)  # a child that left the group may hold the pipes
            raise RequestError("deadline_exceeded",
                               f"{argv[0]!r} still ran after {timeout_s:.3g}s; killed") from None
        stdout, stderr = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        return {"exit_code": proc.returncode, "stdout": stdout[:MAX_OUTPUT_CHARS],
                "stderr": stderr[:MAX_OUTPUT_CHARS],
                "truncated": max(len(stdout), len(stderr)) > MAX_OUTPUT_CHARS}

    def _start(self, argv: list[str], with_stdin: bool) -> subprocess.Popen[bytes]:
        self._groups = {group for group in self._groups if _group_exists(group)}
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE if with_stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                cwd=os.path.expanduser("~"))
        except OSError as exc:
            raise RequestError("run_failed", f"cannot run {argv[0]!r}: {exc.strerror}") from None
        self._groups.add(proc.pid)
        return proc

    def end_all(self) -> None:
        """Kill what is left of every command's process group."""
        for group in self._groups:
            _kill_group(group)
        self._groups.clear()


def _group_exists(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_group(group: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGKILL)


# --- serving ----------------------------------------------------------------------------------


def respond(executor: Executor, request: Request) -> Result:
    """The response header and body for one request; never raises for a bad request."""
    if request.error is not None:
        return error_header(request.id, request.error), b""
    try:
        result, body = executor.handle(request)
    except RequestError as exc:
        return error_header(request.id, exc), b""
    except (xerror.ConnectionClosedError, mss.ScreenShotError) as exc:
        raise XConnectionLost(str(exc)) from exc
    except Exception as exc:  # a bug must cost one request, not the sandbox
        traceback.print_exc(file=sys.stderr)
        internal = RequestError("internal", f"{type(exc).__name__}: {exc}")
        return error_header(request.id, internal), b""
    return {"id": request.id, "ok": True, "result": result}, body


def serve(executor: Executor, reader: BinaryIO, writer: BinaryIO) -> int:
    """Answer requests until shutdown or end of stream; returns the exit status."""
    while True:
        try:
            request = read_request(reader)
        except FramingError as exc:
            _say(f"closing the channel: {exc.message}")
            _try_write(writer, error_header(None, exc))
            return EXIT_BAD_FRAME
        if request is None:
            return EXIT_OK
        try:
            header, body = respond(executor, request)
        except XConnectionLost as exc:
            lost = RequestError("x_connection_lost", str(exc))
            _try_write(writer, error_header(request.id, lost))
            return EXIT_X_LOST
        write_message(writer, header, body)
        if request.op == "shutdown" and header["ok"]:
            return EXIT_OK


def _try_write(writer: BinaryIO, header: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):  # the other end is gone; exiting is all that is left
        write_message(writer, header)


def _say(message: str) -> None:
    print(f"executor: {message}", file=sys.stderr, flush=True)


def protect_stdio() -> tuple[BinaryIO, BinaryIO]:
    """Move the channel off fds 0/1 so nothing else can read or write it.

    Returns the channel's reader and writer.  Afterwards fd 0 reads /dev/null
    and fd 1 (and ``sys.stdout``) write to stderr.
    """
    sys.stdout.flush()
    channel_in, channel_out = os.dup(0), os.dup(1)  # os.dup fds are not inherited
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the process
    return os.fdopen(channel_in, "rb"), os.fdopen(channel_out, "wb")


def ensure_xauthority() -> None:
    """python-xlib wants ~/.Xauthority to exist; create it empty when nothing else is set."""
    if os.environ.get("XAUTHORITY"):
        return
    path = os.path.expanduser("~/.Xauthority")
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    except OSError as exc:
        _say(f"cannot create {path}: {exc.strerror}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="executor.py",
                                     description="deskhand executor (protocol on stdin/stdout)")
    parser.add_argument("--display", help="X display such as :1 (default: $DISPLAY)")
    parser.add_argument("--connect-timeout", type=float, default=10.0, metavar="SECONDS",
                        help="how long to wait for the X server to accept connections")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point: protect the channel, connect to X, serve."""
    reader, writer = protect_stdio()
    args = parse_args(argv)
    name = args.display or os.environ.get("DISPLAY", "")
    if not name:
        _say("no display: pass --display :N or set DISPLAY")
        return EXIT_BAD_FRAME
    os.environ["DISPLAY"] = name  # commands started by `run` see the same display
    ensure_xauthority()
    try:
        desktop = Desktop.connect(name, args.connect_timeout)
    except Exception as exc:
        _say(f"cannot open display {name}: {exc}")
        return EXIT_X_LOST
    executor = Executor(desktop, Screen(name, desktop.width, desktop.height))
    if os.environ.get("DESKHAND_SHELL_GATE"):
        executor.open_shell_gate(lambda event: write_message(writer, event))
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        return serve(executor, reader, writer)
    except BrokenPipeError:
        return EXIT_OK  # the host closed its end; nobody is left to answer
    finally:
        executor.commands.end_all()
        executor.screen.close()


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(EXIT_OK)  # unwinds through main(), which ends the commands' groups


if __name__ == "__main__":
    sys.exit(main())
