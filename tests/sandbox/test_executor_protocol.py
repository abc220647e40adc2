"""The executor's wire protocol, spoken byte by byte to a real executor on a real Xvfb."""

from __future__ import annotations

import hashlib
import io
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from sandbox.executor import EXECUTOR_FILE

pytestmark = pytest.mark.x11

_u32 = struct.Struct(">I")


def error_code(header: dict[str, object]) -> object:
    assert header["ok"] is False, header
    error = header["error"]
    assert isinstance(error, dict)
    return error["code"]


def test_hello_reports_protocol_screen_and_pid(raw_executor: Any) -> None:
    header, body = raw_executor.request("hello")
    assert header["ok"] is True
    result = header["result"]
    assert (result["protocol"], result["width"], result["height"]) == (1, 1280, 800)
    assert result["pid"] == raw_executor.proc.pid
    assert body == b""


def test_runs_as_a_module_too(raw_executor_factory: Any) -> None:
    executor = raw_executor_factory(module=True)
    header, _ = executor.request("hello")
    assert header["result"]["width"] == 1280


def test_screenshot_body_is_the_png_its_meta_describes(raw_executor: Any) -> None:
    header, body = raw_executor.request("screenshot")
    frame = header["result"]["frame"]
    assert frame["sha256"] == hashlib.sha256(body).hexdigest()
    image = Image.open(io.BytesIO(body))
    assert image.format == "PNG"
    assert image.size == (frame["width"], frame["height"]) == (1280, 800)
    assert frame["window_title"] == ""  # no window manager, no active window
    assert abs(frame["captured_at"] - time.time()) < 60


def test_library_noise_on_stdout_does_not_reach_the_channel(raw_executor_factory: Any,
                                                             tmp_path: Path) -> None:
    # python-xlib prints its xauth warnings with print(); a corrupt file makes it talk.
    corrupt = tmp_path / "corrupt.Xauthority"
    corrupt.write_bytes(b"\x00\x01garbage")
    executor = raw_executor_factory(env={"XAUTHORITY": str(corrupt)})
    for _ in range(3):
        header, body = executor.request("screenshot")
        assert header["ok"] is True
        assert hashlib.sha256(body).hexdigest() == header["result"]["frame"]["sha256"]
    assert "Xlib.xauth: warning" in executor.stderr_text()


def test_an_empty_xauthority_is_created_when_missing(raw_executor: Any) -> None:
    raw_executor.request("hello")
    assert (raw_executor.home / ".Xauthority").read_bytes() == b""
    assert "Xlib.xauth: warning" in raw_executor.stderr_text()  # and its warning stayed off stdout


def test_unknown_op_is_refused_and_the_executor_keeps_serving(raw_executor: Any) -> None:
    header, _ = raw_executor.request("format_disk")
    assert error_code(header) == "unknown_op"
    assert raw_executor.request("hello")[0]["ok"] is True


@pytest.mark.parametrize(("action", "fragment"), [
    ({"type": "teleport", "x": 1}, "unknown action type"),
    ({"type": "key", "keys": ["hyper"]}, "unknown key"),
    ({"type": "key", "keys": ["ctrl"], "extra": 1}, "unknown field"),
    ({"type": "click", "x": 1280, "y": 10}, "outside the 1280x800 screen"),
    ({"type": "click", "x": 10}, "both x and y"),
    ({"type": "drag", "path": [{"x": 1, "y": 1}, {"x": 5, "y": 900}]}, "outside"),
    ({"type": "zoom", "x0": 10, "y0": 10, "x1": 5, "y1": 20}, "x0 < x1"),
    ({"type": "type", "text": "bell\x07"}, "control character"),
    ({"type": "scroll", "x": 1, "y": 1, "dy": True}, "integer"),
    ({"type": "mouse_down", "button": "thumb"}, "one of"),
    ("click", "object"),
])
def test_invalid_actions_are_refused_without_running(raw_executor: Any, action: object,
                                                      fragment: str) -> None:
    header, body = raw_executor.request("execute", {"action": action})
    assert error_code(header) == "bad_action"
    assert fragment in header["error"]["message"]
    assert body == b""
    assert raw_executor.request("hello")[0]["ok"] is True


def test_bad_settle_arguments_are_refused(raw_executor: Any) -> None:
    header, _ = raw_executor.request("execute", {"action": {"type": "mouse_move", "x": 1, "y": 1},
                                                 "settle": {"stable_ms": -5}})
    assert error_code(header) == "bad_request"


def test_a_header_that_is_not_json_is_skipped_and_serving_goes_on(raw_executor: Any) -> None:
    junk = b"{not json"
    raw_executor.send_raw(_u32.pack(len(junk)) + junk + _u32.pack(3) + b"abc")
    header, _ = raw_executor.receive()
    assert header["id"] is None
    assert error_code(header) == "bad_request"
    assert raw_executor.request("hello")[0]["ok"] is True


@pytest.mark.parametrize("header", [
    {"op": "hello", "args": {}, "deadline_ms": 1},
    {"id": "seven", "op": "hello", "deadline_ms": 1},
    {"id": 3, "op": 5, "deadline_ms": 1},
    {"id": 3, "op": "hello", "args": [], "deadline_ms": 1},
    {"id": 3, "op": "hello", "args": {}},
])
def test_headers_missing_or_mistyping_fields_are_refused(raw_executor: Any,
                                                        header: dict[str, Any]) -> None:
    raw_executor.send(header)
    reply, _ = raw_executor.receive()
    assert error_code(reply) == "bad_request"
    assert raw_executor.request("hello")[0]["ok"] is True


def test_an_oversize_body_is_discarded_and_answered_with_its_id(raw_executor: Any) -> None:
    raw_executor.send({"id": 41, "op": "hello", "args": {},
                       "deadline_ms": (time.time() + 10) * 1000}, b"x" * ((1 << 20) + 1))
    header, _ = raw_executor.receive()
    assert header["id"] == 41
    assert error_code(header) == "too_large"
    assert raw_executor.request("hello")[0]["ok"] is True  # the stream is back in step


def test_an_oversize_header_closes_the_channel(raw_executor_factory: Any) -> None:
    raw_executor = raw_executor_factory()
    raw_executor.send_raw(_u32.pack(2 << 20) + b"{}")
    header, _ = raw_executor.receive()
    assert header["id"] is None
    assert error_code(header) == "too_large"
    assert raw_executor.exit_status() == 2


def test_garbage_bytes_close_the_channel_cleanly(raw_executor_factory: Any) -> None:
    raw_executor = raw_executor_factory()
    raw_executor.send_raw(b"GET / HTTP/1.1\r\nHost: sandbox\r\n\r\n")
    header, _ = raw_executor.receive()
    assert header["id"] is None
    assert error_code(header) == "too_large"
    assert raw_executor.exit_status() == 2
    assert "closing the channel" in raw_executor.stderr_text()


def test_a_truncated_frame_is_reported_and_the_executor_exits(raw_executor_factory: Any) -> None:
    raw_executor = raw_executor_factory()
    raw_executor.send_raw(_u32.pack(100) + b'{"id": 1, "op"')
    raw_executor.close_input()
    header, _ = raw_executor.receive()
    assert error_code(header) == "bad_frame"
    assert "truncated" in header["error"]["message"]
    assert raw_executor.exit_status() == 2


def test_end_of_stream_between_frames_is_a_clean_exit(raw_executor_factory: Any) -> None:
    raw_executor = raw_executor_factory()
    assert raw_executor.request("hello")[0]["ok"] is True
    raw_executor.close_input()
    assert raw_executor.exit_status() == 0


def test_shutdown_answers_then_exits(raw_executor_factory: Any) -> None:
    raw_executor = raw_executor_factory()
    header, _ = raw_executor.request("shutdown")
    assert header["ok"] is True
    assert header["result"] == {}
    assert raw_executor.exit_status() == 0


def test_a_request_already_past_its_deadline_is_refused(raw_executor: Any) -> None:
    raw_executor.send({"id": 5, "op": "screenshot", "args": {},
                       "deadline_ms": (time.time() - 1) * 1000})
    header, body = raw_executor.receive()
    assert error_code(header) == "deadline_exceeded"
    assert body == b""


def test_long_work_stops_at_the_deadline(raw_executor: Any) -> None:
    started = time.monotonic()
    header, _ = raw_executor.request("execute", {"action": {"type": "wait", "seconds": 20}},
                                     deadline_s=0.3)
    assert error_code(header) == "deadline_exceeded"
    assert time.monotonic() - started < 10
    header, _ = raw_executor.request("execute", {"action": {"type": "hold_key", "keys": ["shift"],
                                                            "seconds": 20}}, deadline_s=0.3)
    assert error_code(header) == "deadline_exceeded"
    header, _ = raw_executor.request("run", {"argv": ["sleep", "20"], "timeout_s": 60},
                                     deadline_s=0.3)
    assert error_code(header) == "deadline_exceeded"
    assert raw_executor.request("hello")[0]["ok"] is True


def test_typing_reports_how_far_it_got_at_the_deadline(raw_executor: Any) -> None:
    header, _ = raw_executor.request("execute", {"action": {"type": "type", "text": "é" * 20000}},
                                     deadline_s=0.2)
    assert error_code(header) == "deadline_exceeded"
    assert "characters" in header["error"]["message"] or "queued" in header["error"]["message"]


def test_run_returns_status_and_output_of_an_argument_list(raw_executor: Any) -> None:
    header, _ = raw_executor.request("run", {"argv": ["sh", "-c", 'read line; echo "got $line"; '
                                                      "echo oops >&2; exit 3", "ignored"],
                                             "timeout_s": 10, "stdin": "héllo\n"})
    assert header["result"] == {"exit_code": 3, "stdout": "got héllo\n", "stderr": "oops\n",
                                "truncated": False}


def test_run_works_in_the_home_directory(raw_executor: Any) -> None:
    header, _ = raw_executor.request("run", {"argv": ["pwd"], "timeout_s": 10})
    assert header["result"]["stdout"].strip() == str(raw_executor.home)


@pytest.mark.parametrize(("args", "code"), [
    ({"argv": ["/nonexistent/program"], "timeout_s": 5}, "run_failed"),
    ({"argv": "rm -rf /", "timeout_s": 5}, "bad_request"),
    ({"argv": [], "timeout_s": 5}, "bad_request"),
    ({"argv": ["true"], "timeout_s": -1}, "bad_request"),
    ({"argv": ["cat"], "timeout_s": 5, "stdin": 7}, "bad_request"),
])
def test_bad_run_requests_are_refused(raw_executor: Any, args: dict[str, object],
                                      code: str) -> None:
    header, _ = raw_executor.request("run", args)
    assert error_code(header) == code


def test_a_large_run_output_is_truncated_to_keep_the_header_small(raw_executor: Any) -> None:
    header, _ = raw_executor.request("run", {"argv": ["head", "-c", "300000", "/dev/zero"],
                                             "timeout_s": 10})
    result = header["result"]
    assert result["truncated"] is True
    assert len(result["stdout"]) == 64 * 1024


def test_zoom_returns_the_region_as_its_body(raw_executor: Any) -> None:
    header, body = raw_executor.execute({"type": "zoom", "x0": 10, "y0": 20, "x1": 110, "y1": 70})
    result = header["result"]
    assert Image.open(io.BytesIO(body)).size == (100, 50)
    assert (result["frame"]["width"], result["frame"]["height"]) == (100, 50)
    assert result["frame"]["sha256"] == hashlib.sha256(body).hexdigest()
    assert result["settle"] == {"changed": False, "stable": True, "settle_ms": 0.0}


def test_settle_reports_no_change_after_its_change_timeout(raw_executor: Any) -> None:
    header, _ = raw_executor.execute({"type": "key", "keys": ["shift"]}, change_timeout_ms=50,
                                     stable_ms=20, max_ms=1000)
    settle = header["result"]["settle"]
    assert settle["changed"] is False
    assert settle["stable"] is True
    assert settle["settle_ms"] >= 50


def test_requests_are_answered_in_order_with_their_ids(raw_executor: Any) -> None:
    deadline = (time.time() + 10) * 1000
    for request_id in (7, 8, 9):
        raw_executor.send({"id": request_id, "op": "hello", "args": {}, "deadline_ms": deadline})
    assert [raw_executor.receive()[0]["id"] for _ in range(3)] == [7, 8, 9]


def test_a_missing_display_is_a_clear_failure(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(EXECUTOR_FILE), "--display", ":4242",
                           "--connect-timeout", "0.2"], capture_output=True, timeout=30,
                          env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 3
    assert b"cannot open display :4242" in proc.stderr
    assert proc.stdout == b""
