"""The host's end of the executor protocol (see ``sandbox/executor/wire.py``).

:class:`ExecutorChannel` sends framed requests over one byte stream and reads
framed replies from another, so any backend can use it: the local sandbox
passes a child process's pipes, the Docker backend a socket's streams.  A
reader thread routes replies to callers by id; callers may share the channel
from several threads (the executor answers one request at a time).

Nothing from the sandbox is trusted blindly: reply sizes are capped, frame
hashes are checked, and a reply that breaks the protocol ends the channel.
Framing and the settle defaults come from the executor package itself
(``sandbox/executor/wire.py`` and ``settle.py``, standard library only), so
the two ends share one implementation.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any

from sandbox.actions import Action, action_to_dict
from sandbox.base import CheckResult, ExecResult, Frame, SettleReport
from sandbox.errors import ExecutorError, ExecutorTimeout, SandboxCrashed, SandboxError
from sandbox.executor.settle import FAST, MODEL, PROFILES, SettleDefaults
from sandbox.executor.wire import (
    MAX_HEADER_BYTES,
    decode_header,
    encode_header,
    read_exact,
    read_length,
    write_frame,
)

__all__ = ["FAST", "MODEL", "ExecutorChannel", "Reply", "SettleDefaults", "execute_args",
           "profile_named"]

MAX_REPLY_BODY_BYTES = 256 << 20  # a PNG of the largest screen we allow, with room to spare
DEFAULT_GRACE_S = 2.0


@dataclass(frozen=True, slots=True)
class Reply:
    """A successful response: its ``result`` object and binary ``body``."""

    id: int
    result: dict[str, Any]
    body: bytes


def profile_named(name: str) -> SettleDefaults:
    """The settle profile called ``name``; ``ValueError`` names the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown settle profile {name!r} "
                         f"(known: {', '.join(sorted(PROFILES))})") from None


def execute_args(action: Action, *, settle: bool, defaults: SettleDefaults) -> dict[str, Any]:
    """The ``args`` of an ``execute`` request for ``action``."""
    return {"action": action_to_dict(action),
            "settle": defaults.args_for(action.type, enabled=settle)}


class _Waiter:
    """One request in flight: filled in by the reader thread."""

    __slots__ = ("done", "error", "reply")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.reply: Reply | None = None
        self.error: SandboxError | None = None


def _ignore_event(event: dict[str, Any]) -> None:
    pass


class _ProtocolViolation(Exception):
    pass


class ExecutorChannel:
    """Framed request/response calls to one executor over two byte streams."""

    def __init__(self, reader: IO[bytes], writer: IO[bytes], *,
                 grace_s: float = DEFAULT_GRACE_S) -> None:
        self._reader = reader
        self._writer = writer
        self._grace_s = grace_s
        self._ids = itertools.count(1)
        self._send_lock = threading.Lock()
        self._waiters: dict[int, _Waiter] = {}
        self._failure: SandboxError | None = None
        self._event_handler: Callable[[dict[str, Any]], None] = _ignore_event
        self._thread = threading.Thread(target=self._read_replies, name="executor-channel",
                                        daemon=True)
        self._thread.start()

    def call(self, op: str, args: Mapping[str, Any] | None = None, *, deadline_s: float,
             body: bytes = b"") -> Reply:
        """Send one request and wait for its reply.

        The executor gets an absolute deadline ``deadline_s`` from now and
        answers ``deadline_exceeded`` itself; the host waits ``grace_s`` longer
        before giving up on a silent executor.  Raises :class:`ExecutorTimeout`,
        :class:`ExecutorError` (the executor refused) or :class:`SandboxCrashed`
        (the channel ended).
        """
        request_id, waiter = self._send(op, args or {}, deadline_s, body)
        if not waiter.done.wait(deadline_s + self._grace_s):
            self._waiters.pop(request_id, None)
            raise ExecutorTimeout(f"no reply to {op!r} within {deadline_s + self._grace_s:g}s")
        if waiter.error is not None:
            raise waiter.error
        assert waiter.reply is not None
        return waiter.reply

    def _send(self, op: str, args: Mapping[str, Any], deadline_s: float,
              body: bytes) -> tuple[int, _Waiter]:
        with self._send_lock:
            if self._failure is not None:
                raise self._failure
            request_id = next(self._ids)
            header = encode_header({"id": request_id, "op": op, "args": dict(args),
                                    "deadline_ms": int((time.time() + deadline_s) * 1000)})
            waiter = self._waiters[request_id] = _Waiter()
            try:
                write_frame(self._writer, header, body)
            except (OSError, ValueError) as exc:  # ValueError: the stream was closed
                self._waiters.pop(request_id, None)
                raise SandboxCrashed(f"cannot write to the executor: {exc}") from exc
        return request_id, waiter

    def close(self) -> None:
        """Close the writing end; the executor sees end of stream and exits."""
        with self._send_lock:
            if self._failure is None:
                self._failure = SandboxCrashed("the executor channel is closed")
            with contextlib.suppress(OSError):  # the executor is already gone
                self._writer.close()

    def join(self, timeout_s: float) -> None:
        """Wait for the reader thread to see the end of the stream."""
        self._thread.join(timeout_s)

    # --- the reader thread ---------------------------------------------------------------

    def _read_replies(self) -> None:
        try:
            while True:
                header, body = self._read_frame()
                self._deliver(header, body)
        except EOFError:
            self._fail(SandboxCrashed("the executor closed the channel"))
        except _ProtocolViolation as exc:
            self._fail(SandboxCrashed(f"the executor broke the protocol: {exc}"))
        except (OSError, ValueError) as exc:
            self._fail(SandboxCrashed(f"cannot read from the executor: {exc}"))

    def _read_frame(self) -> tuple[dict[str, Any], bytes]:
        header_len = read_length(self._reader)
        if header_len > MAX_HEADER_BYTES:
            raise _ProtocolViolation(f"reply header of {header_len} bytes")
        header = decode_header(read_exact(self._reader, header_len))
        if header is None:
            raise _ProtocolViolation("reply header is not a JSON object")
        body_len = read_length(self._reader)
        if body_len > MAX_REPLY_BODY_BYTES:
            raise _ProtocolViolation(f"reply body of {body_len} bytes")
        if not isinstance(header.get("ok"), bool):
            raise _ProtocolViolation("reply header lacks 'ok'")
        return header, read_exact(self._reader, body_len)

    def on_event(self, handler: Callable[[dict[str, Any]], None]) -> None:
        """Call ``handler`` (on a thread of its own) for each event the executor sends."""
        self._event_handler = handler

    def _deliver(self, header: dict[str, Any], body: bytes) -> None:
        request_id = header.get("id")
        if request_id is None and header["ok"] and isinstance(header.get("event"), str):
            handler = self._event_handler
            threading.Thread(target=handler, args=(header,), name="executor-event",
                             daemon=True).start()
            return
        if request_id is None:  # the executor could not tell which request; all are lost
            self._fail_waiters(_error_from(header))
            return
        waiter = self._waiters.pop(request_id, None)
        if waiter is None:
            return  # a late reply to a call that already gave up
        if header["ok"]:
            result = header.get("result")
            waiter.reply = Reply(request_id, result if isinstance(result, dict) else {}, body)
        else:
            waiter.error = _error_from(header)
        waiter.done.set()

    def _fail(self, error: SandboxError) -> None:
        with self._send_lock:  # so no call can register after the waiters were failed
            if self._failure is None:
                self._failure = error
            self._fail_waiters(error)

    def _fail_waiters(self, error: SandboxError) -> None:
        for request_id in list(self._waiters):
            waiter = self._waiters.pop(request_id, None)
            if waiter is not None:
                waiter.error = error
                waiter.done.set()


def _error_from(header: dict[str, Any]) -> ExecutorError:
    error = header.get("error")
    if not isinstance(error, dict):
        return ExecutorError("protocol", "error reply without an error object")
    code, message = str(error.get("code", "unknown")), str(error.get("message", ""))
    if code == "deadline_exceeded":
        return ExecutorTimeout(message)
    return ExecutorError(code, message)


# --- turning replies into values ---------------------------------------------------------------


def frame_from(meta: Mapping[str, Any], png: bytes) -> Frame:
    """A :class:`Frame` from frame meta and its PNG; the hash must match the bytes."""
    try:
        frame = Frame.from_png(png, int(meta["width"]), int(meta["height"]),
                               window_title=str(meta.get("window_title", "")),
                               cursor=(int(meta["cursor"][0]), int(meta["cursor"][1])),
                               captured_at=float(meta["captured_at"]))
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ExecutorError("protocol", f"malformed frame meta: {exc!r}") from None
    if frame.sha256 != meta.get("sha256"):
        raise ExecutorError("protocol", "frame bytes do not match their sha256")
    return frame


def frame_from_reply(reply: Reply) -> Frame:
    """The frame of a ``screenshot`` or ``execute`` reply."""
    return frame_from(_field(reply, "frame"), reply.body)


def exec_result_from_reply(reply: Reply, *, profile: str = "") -> ExecResult:
    """The :class:`ExecResult` of an ``execute`` reply (settled following ``profile``)."""
    settle = _field(reply, "settle")
    try:
        reaction = settle.get("reaction_ms")
        report = SettleReport(changed=bool(settle["changed"]), stable=bool(settle["stable"]),
                              settle_ms=float(settle["settle_ms"]), profile=profile,
                              reaction_ms=None if reaction is None else float(reaction))
        duration_ms = float(reply.result["duration_ms"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ExecutorError("protocol", f"malformed execute reply: {exc!r}") from None
    return ExecResult(output=dict(_field(reply, "output")), frame=frame_from_reply(reply),
                      settle=report, duration_ms=duration_ms)


def check_result_from_reply(reply: Reply) -> CheckResult:
    """The :class:`CheckResult` of a ``run`` reply."""
    try:
        return CheckResult(exit_code=int(reply.result["exit_code"]),
                           stdout=str(reply.result["stdout"]),
                           stderr=str(reply.result["stderr"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ExecutorError("protocol", f"malformed run reply: {exc!r}") from None


def _field(reply: Reply, name: str) -> dict[str, Any]:
    value = reply.result.get(name)
    if not isinstance(value, dict):
        raise ExecutorError("protocol", f"reply lacks the {name!r} object")
    return value
