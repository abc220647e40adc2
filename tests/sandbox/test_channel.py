"""The host's channel, against a real executor and against real processes that misbehave."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.actions import CursorPosition, MouseMove
from sandbox.channel import (
    ExecutorChannel,
    SettleDefaults,
    exec_result_from_reply,
    execute_args,
    frame_from,
    frame_from_reply,
)
from sandbox.errors import ExecutorError, ExecutorTimeout, SandboxCrashed
from sandbox.executor import EXECUTOR_FILE


def start(argv: list[str], home: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env={"HOME": str(home)})


@pytest.fixture
def peer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = start(request.param, tmp_path)
    yield proc
    stop(proc)


@pytest.fixture
def executor(xvfb_display: str, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = start([sys.executable, str(EXECUTOR_FILE), "--display", xvfb_display], tmp_path)
    yield proc
    stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait()
    for stream in (proc.stdin, proc.stdout):
        with contextlib.suppress(OSError):  # unflushed bytes to a dead peer
            if stream is not None:
                stream.close()


def channel_to(proc: subprocess.Popen[bytes], grace_s: float = 2.0) -> ExecutorChannel:
    assert proc.stdout is not None
    assert proc.stdin is not None
    return ExecutorChannel(proc.stdout, proc.stdin, grace_s=grace_s)


@pytest.mark.x11
def test_calls_turn_into_replies_and_values(executor: subprocess.Popen[bytes]) -> None:
    channel = channel_to(executor)
    assert channel.call("hello", deadline_s=10).result["width"] == 1280
    shot = frame_from_reply(channel.call("screenshot", deadline_s=10))
    assert shot.png.startswith(b"\x89PNG")
    defaults = SettleDefaults()
    channel.call("execute", execute_args(MouseMove(x=33, y=44), settle=False, defaults=defaults),
                 deadline_s=10)
    reply = channel.call("execute", execute_args(CursorPosition(), settle=True,
                                                 defaults=defaults), deadline_s=10)
    result = exec_result_from_reply(reply)
    assert result.output == {"x": 33, "y": 44}
    assert result.frame.cursor == (33, 44)
    channel.close()


@pytest.mark.x11
def test_error_replies_become_executor_errors(executor: subprocess.Popen[bytes]) -> None:
    channel = channel_to(executor)
    with pytest.raises(ExecutorError) as caught:
        channel.call("teleport", deadline_s=10)
    assert caught.value.code == "unknown_op"
    with pytest.raises(ExecutorTimeout):
        channel.call("execute", {"action": {"type": "wait", "seconds": 5}}, deadline_s=0.2)
    assert channel.call("hello", deadline_s=10).result["protocol"] == 1


@pytest.mark.x11
def test_threads_can_share_one_channel(executor: subprocess.Popen[bytes]) -> None:
    channel = channel_to(executor)
    sizes: list[int] = []

    def shoot() -> None:
        for _ in range(5):
            sizes.append(frame_from_reply(channel.call("screenshot", deadline_s=20)).width)

    threads = [threading.Thread(target=shoot) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sizes == [1280] * 20


@pytest.mark.x11
def test_a_dead_executor_fails_waiting_and_later_calls(executor: subprocess.Popen[bytes]) -> None:
    channel = channel_to(executor)
    channel.call("hello", deadline_s=10)
    executor.kill()
    with pytest.raises(SandboxCrashed):
        channel.call("execute", {"action": {"type": "wait", "seconds": 1}}, deadline_s=10)
    with pytest.raises(SandboxCrashed):
        channel.call("hello", deadline_s=10)


@pytest.mark.parametrize("peer", [["sleep", "60"]], indirect=True)
def test_a_silent_peer_times_out_after_the_grace(peer: subprocess.Popen[bytes]) -> None:
    channel = channel_to(peer, grace_s=0.2)
    with pytest.raises(ExecutorTimeout, match="no reply"):
        channel.call("hello", deadline_s=0.1)


@pytest.mark.parametrize("peer", [["printf", "HTTP/1.1 200 OK\r\n\r\n"]], indirect=True)
def test_a_peer_speaking_something_else_ends_the_channel(peer: subprocess.Popen[bytes]) -> None:
    channel = channel_to(peer)
    with pytest.raises(SandboxCrashed):  # the write may already fail: printf is quick to exit
        channel.call("hello", deadline_s=5)
    channel.join(5)
    with pytest.raises(SandboxCrashed, match="broke the protocol"):
        channel.call("hello", deadline_s=5)


def test_a_frame_whose_bytes_do_not_match_its_hash_is_refused() -> None:
    meta = {"width": 1, "height": 1, "sha256": "0" * 64, "window_title": "", "cursor": [0, 0],
            "captured_at": 1.0}
    with pytest.raises(ExecutorError, match="sha256"):
        frame_from(meta, b"\x89PNG...")
    with pytest.raises(ExecutorError, match="malformed"):
        frame_from({"width": 1}, b"")
