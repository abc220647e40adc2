"""Request handling: the protocol's ops against one display, the serving loop, ``main``.

See :mod:`wire` (in this package) for the protocol itself.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, BinaryIO

import mss
from Xlib import error as xerror

from .actions import Actions
from .capture import Capture, Screen
from .changes import ScreenChanges, watch_changes
from .commands import Commands, run_argv
from .files import Files
from .keyboard import Keyboard
from .settle import CATCH_UP, Settled, SettleParams, drop, settle, settle_params
from .validate import validate_action
from .wire import (
    PROTOCOL_VERSION,
    Deadline,
    FramingError,
    Request,
    RequestError,
    error_header,
    is_number,
    read_request,
    write_message,
)
from .xinput import Desktop

EXIT_OK = 0
EXIT_BAD_FRAME = 2
EXIT_X_LOST = 3


class XConnectionLost(Exception):
    """The X server went away; nothing more can be served."""


Result = tuple[dict[str, Any], bytes]


class Executor:
    """Serves the protocol's ops against one display."""

    def __init__(self, desktop: Desktop, screen: Screen, changes: ScreenChanges) -> None:
        self.desktop = desktop
        self.screen = screen
        self.changes = changes
        self.keyboard = Keyboard(desktop, catch_up=self._let_clients_catch_up)
        self._reference: Capture | None = None  # the screen the clients were last seen to show
        self.actions = Actions(desktop, self.keyboard)
        self.commands = Commands()
        self.files = Files()
        self.ops: dict[str, Callable[[dict[str, Any], Deadline], Result]] = {
            "hello": self.op_hello, "screenshot": self.op_screenshot,
            "execute": self.op_execute, "run": self.op_run, "shutdown": self.op_shutdown,
            "selection": self.op_selection, "elements": self.op_elements,
        }
        # Ops that read the request's body too (:mod:`.files`: checkpoints).
        self.body_ops: dict[str, Callable[[dict[str, Any], bytes, Deadline], Result]] = {
            "files_scan": self.files.scan, "files_read": self.files.read,
            "files_write": self.files.write, "files_apply": self.files.apply,
        }

    def open_shell_gate(self, send_event: Callable[[dict[str, Any]], None]) -> None:
        """Serve the desktop shells' command gate (:mod:`.gate`); verdicts come as requests."""
        from .gate import ShellGate

        gate = ShellGate(send_event)

        def op_gate_verdict(args: dict[str, Any], deadline: Deadline) -> Result:
            try:
                gate.verdict(args)
            except ValueError as exc:
                raise RequestError("bad_request", str(exc)) from None
            return {}, b""

        self.ops["gate_verdict"] = op_gate_verdict

    def op_selection(self, args: dict[str, Any], deadline: Deadline) -> Result:
        """The clipboard's or primary selection's text (:mod:`.clipboard`; ``null``: unknown)."""
        from .clipboard import read_selection

        which = args.get("name", "clipboard")
        if which not in {"clipboard", "primary"}:
            raise RequestError("bad_request", "name must be clipboard or primary")
        text = read_selection(self.screen.display_name, which, min(2.0, deadline.remaining()))
        return {"text": text}, b""

    def op_elements(self, args: dict[str, Any], deadline: Deadline) -> Result:
        """The active window's accessibility tree (:mod:`.a11y`), bounded by the deadline."""
        from .a11y import OVERRUN_S, active_window_elements

        limit = args.get("max_elements", 500)
        if not isinstance(limit, int) or not 0 < limit <= 5000:
            raise RequestError("bad_request", "max_elements must be an integer in 1..5000")
        budget_s = max(0.1, deadline.remaining() - OVERRUN_S - 0.2)
        return active_window_elements(max_elements=limit, time_budget_s=budget_s,
                                      active_title=self.desktop.active_window_title()), b""

    def handle(self, request: Request) -> Result:
        deadline = Deadline(request.deadline_ms)
        if request.op not in self.ops and request.op not in self.body_ops:
            raise RequestError("unknown_op", f"unknown op {request.op!r}")
        deadline.check("the request was queued")
        if request.op in self.body_ops:
            return self._file_op(request, deadline)
        if self.desktop.drain_events():
            self.keyboard.refresh()
        return self.ops[request.op](request.args, deadline)

    def _file_op(self, request: Request, deadline: Deadline) -> Result:
        try:
            return self.body_ops[request.op](request.args, request.body, deadline)
        except OSError as exc:  # a file op that failed on one path: say which, keep serving
            where = f" ({exc.filename})" if exc.filename else ""
            raise RequestError("run_failed", f"{exc.strerror or exc}{where}") from None

    def op_hello(self, args: dict[str, Any], deadline: Deadline) -> Result:
        return {"protocol": PROTOCOL_VERSION, "width": self.desktop.width,
                "height": self.desktop.height, "pid": os.getpid(),
                "changes": self.changes.kind}, b""

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
                "settle": settle_report(settled, settle_s),
                "frame": self.frame_meta(settled.capture, png),
                "duration_ms": round((time.monotonic() - started) * 1000, 2)}, png

    def _perform_and_settle(self, action: dict[str, Any], params: SettleParams,
                            deadline: Deadline) -> tuple[dict[str, Any], Settled, float]:
        if params.enabled:
            self.changes.forget()  # before the grab: no drawing after it goes unnoticed
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
        settled = settle(self.changes, reference, CATCH_UP, deadline)
        drop(settled.png)
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
        settled = settle(self.changes, before, params, deadline)
        return settled, time.monotonic() - started

    def op_run(self, args: dict[str, Any], deadline: Deadline) -> Result:
        argv, stdin = run_argv(args.get("argv")), args.get("stdin")
        timeout = args.get("timeout_s", 30.0)
        if not is_number(timeout) or timeout <= 0:
            raise RequestError("bad_request", "timeout_s must be a positive number")
        if stdin is not None and not isinstance(stdin, str):
            raise RequestError("bad_request", "stdin must be a string")
        return self.commands.run(argv, stdin, min(float(timeout), deadline.remaining())), b""




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


# Answered as soon as they arrive, even while another request runs: a shell's
# command waits on its gate verdict while the request that typed it settles.
IMMEDIATE_OPS = frozenset({"gate_verdict"})


def serve(executor: Executor, reader: BinaryIO, writer: BinaryIO) -> int:
    """Answer requests until shutdown or end of stream; returns the exit status.

    A reader thread takes requests off the stream; all but :data:`IMMEDIATE_OPS`
    are answered here, one at a time, in the order they came.
    """
    queued: queue.Queue[Request | FramingError | None] = queue.Queue()
    threading.Thread(target=_read_requests, args=(executor, reader, writer, queued),
                     name="requests", daemon=True).start()
    while True:
        request = queued.get()
        if isinstance(request, FramingError):
            _say(f"closing the channel: {request.message}")
            _try_write(writer, error_header(None, request))
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


def _read_requests(executor: Executor, reader: BinaryIO, writer: BinaryIO,
                   queued: queue.Queue[Request | FramingError | None]) -> None:
    while True:
        try:
            request = read_request(reader)
        except FramingError as exc:
            queued.put(exc)
            return
        if request is None or request.error is not None or request.op not in IMMEDIATE_OPS:
            queued.put(request)
            if request is None:
                return
            continue
        with contextlib.suppress(OSError, XConnectionLost):
            write_message(writer, *respond(executor, request))


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
    parser = argparse.ArgumentParser(prog="executor",
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
    screen = Screen(name, desktop.width, desktop.height)
    executor = Executor(desktop, screen, watch_changes(name, screen))
    if os.environ.get("DESKHAND_SHELL_GATE"):
        executor.open_shell_gate(lambda event: write_message(writer, event))
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        return serve(executor, reader, writer)
    except BrokenPipeError:
        return EXIT_OK  # the host closed its end; nobody is left to answer
    finally:
        executor.commands.end_all()
        executor.files.abandon_all()
        executor.changes.close()
        executor.screen.close()


def settle_report(settled: Settled, settle_s: float) -> dict[str, Any]:
    """The reply's ``settle`` object; ``reaction_ms`` only when the screen changed."""
    report: dict[str, Any] = {"changed": settled.changed, "stable": settled.stable,
                              "settle_ms": round(settle_s * 1000, 2)}
    if settled.reaction_s is not None:
        report["reaction_ms"] = round(settled.reaction_s * 1000, 2)
    return report


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(EXIT_OK)  # unwinds through main(), which ends the commands' groups
