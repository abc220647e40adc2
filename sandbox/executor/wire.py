"""The executor's wire protocol: framing, limits, errors and deadlines, shared with the host.

Runs *inside* the sandbox as one long-lived process; the host talks to it over
the process's stdin/stdout (or any byte stream a backend connects to them).
The executor package is self-contained on purpose: standard library +
python-xlib + mss + Pillow, no deskhand imports, so a backend can copy the
package anywhere and run::

    python3 path/to/executor/launch.py [--display :N] [--connect-timeout SECONDS]

(or ``python3 -m executor`` with the package's parent directory on the path).
This module needs only the standard library: the host's end
(``sandbox/channel.py``) frames its requests with the same functions.

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
    ``{"protocol": 1, "width", "height", "pid", "changes"}``; ``changes`` says how
    settling learns of drawing: ``damage`` (the X DAMAGE extension) or ``poll``.
``screenshot``
    ``{"frame": meta}`` + PNG body.
``execute``
    args ``{"action": {...}, "settle": {"enabled", "change_timeout_ms",
    "stable_ms", "min_stable_ms", "phase_ms", "max_ms"}}`` (every settle field
    optional), where the action is the JSON of a deskhand action (``type`` plus
    its fields) → ``{"output": {...}, "settle": {"changed", "stable",
    "settle_ms", "reaction_ms"?}, "frame": meta, "duration_ms"}`` + PNG body of
    the settled screen (``reaction_ms``: when the first change was seen, only
    if there was one).  For ``zoom`` the body (and ``frame``) is the zoomed
    region; ``cursor_position`` returns ``output: {"x", "y"}``.  Settling
    (skipped for screenshot, cursor_position, zoom and wait) sleeps until the X
    server reports drawing (DAMAGE; without it, it polls every 5 ms) and grabs
    the screen then: it waits up to ``change_timeout_ms`` (default 1000, 150 for
    mouse_move) for any change, then until nothing but a blinking caret was
    drawn for a quiet window of twice the time the screen took to react, at
    least ``min_stable_ms`` (default 12) and at most ``stable_ms`` (default 60),
    and at least ``phase_ms`` (default 0) after the first change; all capped by
    ``max_ms`` (default 3000).  The host's named profiles (``fast``, ``model``)
    are in ``settle.py``.
``run``
    args ``{"argv": [str, ...], "timeout_s": float, "stdin": str?}`` →
    ``{"exit_code", "stdout", "stderr", "truncated"}``.  An argument list, never
    a shell string; runs in the sandbox home, in its own process group.
``elements``
    args ``{"max_elements": int?}`` (1..5000, default 500) → the active window's
    accessibility tree (``a11y.py``): ``{"available": true, "app", "window",
    "elements": [{"role", "name", "states", "value", "box": [x0, y0, x1, y1]}],
    "truncated", "walk_ms"}`` with boxes in screen pixels, or ``{"available":
    false, "reason", "elements": []}`` (no bindings, no bus, or an app without a tree).
``shutdown``
    ``{}``; the executor answers, then exits 0.
``files_scan``, ``files_read``, ``files_write``, ``files_apply``
    The desktop's files for checkpoints, as raw bytes in the bodies (see
    ``files.py``): a scan lists the files, folders and symlinks under some roots
    (a JSON body, files with their sha256); a read returns byte ranges of files;
    a write takes file bytes (request bodies of at most 1 MiB each) and renames
    each finished file into place; an apply removes paths, makes folders and
    symlinks and sets modes.

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

import json
import math
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any, TypeGuard

PROTOCOL_VERSION = 1
MAX_HEADER_BYTES = 1 << 20
MAX_BODY_BYTES = 1 << 20

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


def encode_header(header: dict[str, Any]) -> bytes:
    """A header as compact UTF-8 JSON, the way both ends write it."""
    return json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def write_frame(writer: IO[bytes], header: bytes, body: bytes = b"") -> None:
    """Write one frame from an encoded header and a body, then flush."""
    writer.write(_u32.pack(len(header)) + header + _u32.pack(len(body)))
    if body:
        writer.write(body)
    writer.flush()


def read_length(reader: IO[bytes]) -> int:
    """One of a frame's two length prefixes."""
    return int(_u32.unpack(read_exact(reader, 4))[0])


def decode_header(data: bytes) -> dict[str, Any] | None:
    """A header's JSON object, or ``None`` when the bytes are not one."""
    try:
        header = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return header if isinstance(header, dict) else None


def read_exact(reader: IO[bytes], size: int) -> bytes:
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


def discard(reader: IO[bytes], size: int) -> None:
    while size:
        chunk = reader.read(min(size, 1 << 16))
        if not chunk:
            raise EOFError("stream ended inside a discarded body")
        size -= len(chunk)


def read_request(reader: IO[bytes]) -> Request | None:
    """Read one frame; ``None`` at a clean end of stream between frames."""
    first = reader.read(4)
    if not first:
        return None
    try:
        return _read_rest_of_frame(first, reader)
    except EOFError as exc:
        raise FramingError("bad_frame", f"truncated frame: {exc}") from None


def _read_rest_of_frame(first: bytes, reader: IO[bytes]) -> Request:
    header_len = int(_u32.unpack(first + read_exact(reader, 4 - len(first)))[0])
    if header_len > MAX_HEADER_BYTES:
        raise FramingError("too_large", f"header of {header_len} bytes exceeds 1 MiB")
    header = decode_header(read_exact(reader, header_len))
    body_len = read_length(reader)
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
    elif not is_number(deadline):
        request.error = RequestError("bad_request", "deadline_ms must be a number")
    else:
        request.op, request.args, request.deadline_ms = op, args, float(deadline)
    return request


_WRITE_LOCK = threading.Lock()  # replies and the shell gate's events share the stream


def write_message(writer: IO[bytes], header: dict[str, Any], body: bytes = b"") -> None:
    """Write one frame and flush it (whole, whichever thread writes)."""
    with _WRITE_LOCK:
        _write_message(writer, header, body)


def _write_message(writer: IO[bytes], header: dict[str, Any], body: bytes) -> None:
    data = encode_header(header)
    if len(data) > MAX_HEADER_BYTES:
        header = error_header(header.get("id"), RequestError(
            "too_large", f"response header of {len(data)} bytes exceeds 1 MiB"))
        data, body = json.dumps(header).encode("utf-8"), b""
    write_frame(writer, data, body)


def error_header(request_id: int | None, error: RequestError | FramingError) -> dict[str, Any]:
    return {"id": request_id, "ok": False,
            "error": {"code": error.code, "message": error.message}}


def is_number(value: Any) -> TypeGuard[int | float]:
    """A finite int or float (not a bool): what every numeric field must be."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


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
