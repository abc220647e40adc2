"""Fixtures for the sandbox tests: a bare Xvfb, a raw executor process, app launching."""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.executor import EXECUTOR_FILE
from sandbox.local import LocalSandbox

APPS = Path(__file__).resolve().parent / "apps"
_u32 = struct.Struct(">I")


@pytest.fixture(scope="module")
def xvfb_display() -> Iterator[str]:
    """A plain Xvfb (no window manager) on a display it picks itself."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed")
    read_end, write_end = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0",
                             "1280x800x24", "-nolisten", "tcp", "-noreset"], pass_fds=(write_end,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    try:
        assert select.select([read_end], [], [], 15)[0], "Xvfb did not start"
        number = os.read(read_end, 32).decode().strip()
        yield f":{number}"
    finally:
        os.close(read_end)
        proc.kill()
        proc.wait()


class RawExecutor:
    """An executor process spoken to byte by byte, to test the protocol itself."""

    def __init__(self, display: str, home: Path, *, module: bool = False,
                 env: dict[str, str] | None = None) -> None:
        self.home = home
        self.stderr_path = home / "executor.stderr"
        command = ["-m", "sandbox.executor"] if module else [str(EXECUTOR_FILE)]
        with open(self.stderr_path, "wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, *command, "--display", display],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, bufsize=0,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
                     **(env or {})},
                cwd=Path(EXECUTOR_FILE).parents[2])
        self._ids = 0

    def send_raw(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, header: dict[str, Any], body: bytes = b"") -> None:
        data = json.dumps(header).encode()
        self.send_raw(_u32.pack(len(data)) + data + _u32.pack(len(body)) + body)

    def receive(self, timeout_s: float = 15.0) -> tuple[dict[str, Any], bytes]:
        assert self.proc.stdout is not None
        assert select.select([self.proc.stdout], [], [], timeout_s)[0], "no reply in time"
        header_len = _u32.unpack(self._read(4))[0]
        header = json.loads(self._read(header_len))
        body = self._read(_u32.unpack(self._read(4))[0])
        return header, body

    def _read(self, size: int) -> bytes:
        assert self.proc.stdout is not None
        data = b""
        while len(data) < size:  # unbuffered, so select() above sees every pending byte
            chunk = self.proc.stdout.read(size - len(data))
            assert chunk, f"stream ended: wanted {size} bytes, got {len(data)}"
            data += chunk
        return data

    def request(self, op: str, args: dict[str, Any] | None = None, *,
                deadline_s: float = 10.0) -> tuple[dict[str, Any], bytes]:
        self._ids += 1
        self.send({"id": self._ids, "op": op, "args": args or {},
                   "deadline_ms": (time.time() + deadline_s) * 1000})
        header, body = self.receive(timeout_s=deadline_s + 5)
        assert header["id"] == self._ids, header
        return header, body

    def execute(self, action: dict[str, Any], **settle: Any) -> tuple[dict[str, Any], bytes]:
        return self.request("execute", {"action": action, "settle": settle})

    def close_input(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def exit_status(self, timeout_s: float = 10.0) -> int:
        return self.proc.wait(timeout_s)

    def stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):  # unflushed bytes to a dead executor
                if stream is not None and not stream.closed:
                    stream.close()


@pytest.fixture
def raw_executor_factory(xvfb_display: str, tmp_path: Path) -> Iterator[Callable[..., RawExecutor]]:
    started: list[RawExecutor] = []

    def start(**kwargs: Any) -> RawExecutor:
        home = tmp_path / f"home{len(started)}"
        home.mkdir()
        executor = RawExecutor(xvfb_display, home, **kwargs)
        started.append(executor)
        return executor

    yield start
    for executor in started:
        executor.stop()


@pytest.fixture(scope="module")
def raw_executor(xvfb_display: str,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[RawExecutor]:
    """One executor shared by a module's tests that leave it serving."""
    executor = RawExecutor(xvfb_display, tmp_path_factory.mktemp("home"))
    yield executor
    executor.stop()


def launch(box: LocalSandbox, argv: list[str]) -> None:
    """Start ``argv`` in the background inside the sandbox (through its ``run`` op)."""
    result = box.check(["sh", "-c", '"$@" >/dev/null 2>&1 &', "sh", *argv])
    assert result.exit_code == 0, result.stderr


@pytest.fixture(scope="session")
def launch_app() -> Callable[[LocalSandbox, str, list[str]], None]:
    """Start one of the test apps (tests/sandbox/apps) inside a sandbox."""
    def start(box: LocalSandbox, name: str, args: list[str]) -> None:
        launch(box, [sys.executable, str(APPS / name), *args])
    return start


def wait_until(condition: Callable[[], Any], timeout_s: float = 10.0, what: str = "") -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout_s``."""
    give_up = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > give_up:
            pytest.fail(f"timed out waiting for {what or condition}")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def poll() -> Callable[..., Any]:
    return wait_until
