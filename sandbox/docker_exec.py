"""A process inside a container, attached through docker's exec socket.

Without a TTY docker multiplexes the process's stdout and stderr onto one
stream of frames (an 8-byte header: stream id, three zero bytes, big-endian
length; then the payload).  A TTY would avoid that but mangles binary data, so
:class:`ExecStream` demultiplexes itself: stdout comes back as a plain byte
stream (what ``ExecutorChannel`` and the VNC relay read), stderr goes to a
callback, and stdin is written raw.
"""

from __future__ import annotations

import contextlib
import io
import socket
import struct
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, BinaryIO, cast

import docker
import docker.errors

from sandbox.docker_hardening import USER
from sandbox.errors import SandboxCrashed, SandboxUnavailable

STDOUT, STDERR = 1, 2
_HEADER = struct.Struct(">BxxxL")

StderrSink = Callable[[str], None]


def _ignore(_line: str) -> None:
    """Default stderr sink."""


class _DemuxedStdout(io.RawIOBase):
    """Raw reader that yields only the stdout frames of a multiplexed exec stream."""

    def __init__(self, sock: socket.socket, on_stderr: Callable[[bytes], None]) -> None:
        super().__init__()
        self._sock = sock
        self._on_stderr = on_stderr
        self._left = 0  # stdout payload bytes still to read from the current frame

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while self._left == 0:
            if not self._next_stdout_frame():
                return 0
        count = self._sock.recv_into(view, min(len(view), self._left))
        self._left -= count
        return count

    def _next_stdout_frame(self) -> bool:
        """Consume frame headers (and whole stderr frames) until stdout data; False at EOF."""
        header = self._read_exactly(_HEADER.size)
        if header is None:
            return False
        stream, length = _HEADER.unpack(header)
        if stream == STDOUT:
            self._left = length
        else:
            payload = self._read_exactly(length)
            self._on_stderr(payload or b"")
        return True

    def _read_exactly(self, size: int) -> bytes | None:
        chunks = bytearray()
        while len(chunks) < size:
            chunk = self._sock.recv(size - len(chunks))
            if not chunk:
                return None
            chunks += chunk
        return bytes(chunks)


class _SocketWriter(io.RawIOBase):
    """Raw writer that sends everything at once: a frame must never sit in a buffer."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self._sock = sock

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        payload = memoryview(data).cast("B")
        self._sock.sendall(payload)
        return len(payload)


class _StderrLines:
    """Split stderr chunks into lines for a sink; keep the last ones for crash reports."""

    def __init__(self, sink: StderrSink, keep: int = 40) -> None:
        self._sink = sink
        self._partial = b""
        self.recent: deque[str] = deque(maxlen=keep)

    def feed(self, chunk: bytes) -> None:
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace").rstrip()
            self.recent.append(line)
            self._sink(line)


class ExecStream:
    """One attached ``docker exec``: ``reader`` is its stdout, ``writer`` its stdin."""

    def __init__(self, api: docker.APIClient, exec_id: str, attached: Any,
                 on_stderr: StderrSink = _ignore) -> None:
        self._api = api
        self.exec_id = exec_id
        self._attached = attached  # keeps docker's HTTP response (and so the socket) alive
        self._sock = _plain_socket(attached)
        self.stderr = _StderrLines(on_stderr)
        self.reader = io.BufferedReader(_DemuxedStdout(self._sock, self.stderr.feed))
        self.writer = cast(BinaryIO, _SocketWriter(self._sock))

    @classmethod
    def start(cls, api: docker.APIClient, container_id: str, argv: Sequence[str], *,
              environment: Mapping[str, str] | None = None,
              on_stderr: StderrSink = _ignore) -> ExecStream:
        """Start ``argv`` in the container with stdin, stdout and stderr attached, as the
        desktop user and never privileged (said explicitly, not left to defaults)."""
        try:
            created = api.exec_create(container_id, list(argv), stdin=True, stdout=True,
                                      stderr=True, tty=False, privileged=False, user=USER,
                                      environment=dict(environment or {}))
            attached = api.exec_start(created["Id"], tty=False, socket=True)
        except docker.errors.NotFound as exc:
            raise SandboxCrashed(f"container {container_id[:12]} is gone: {exc}") from exc
        except docker.errors.DockerException as exc:
            raise SandboxCrashed(f"cannot start {argv[0]} in the container: {exc}") from exc
        return cls(api, str(created["Id"]), attached, on_stderr)

    def close_stdin(self) -> None:
        """Tell the process no more input comes (it reads EOF)."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        """Cut the stream and release the socket and docker's HTTP response around it."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self.reader.close()
        self._sock.close()
        response = getattr(self._attached, "_response", None)
        with contextlib.suppress(Exception):  # already closed, whatever shape it has
            self._attached.close()  # the SocketIO docker made holds a reference to the socket
            if response is not None:
                response.close()

    def exit_code(self) -> int | None:
        """The process's exit status, or None while it runs (or when docker forgot it)."""
        try:
            state = self._api.exec_inspect(self.exec_id)
        except docker.errors.DockerException:
            return None
        return None if state.get("Running") else state.get("ExitCode")


def _plain_socket(attached: Any) -> socket.socket:
    """The socket under what ``exec_start(socket=True)`` returned (a SocketIO on unix/tcp)."""
    for candidate in (attached, getattr(attached, "_sock", None)):
        if isinstance(candidate, socket.socket):
            return candidate
    raise SandboxUnavailable(
        f"unsupported Docker transport ({type(attached).__name__}): use a unix socket or tcp")
