"""The desktop's HTTP proxy address: carry every connection to deskhand over stdin/stdout.

The container has no network.  deskhand starts this script once through
``docker exec``; it listens on ``127.0.0.1:PORT`` inside the container (what
``HTTP_PROXY``/``HTTPS_PROXY`` and the browser's proxy setting name) and
multiplexes every accepted connection onto its stdin/stdout.  It does not read
what it carries: the HTTP proxy, the policy and the audit record all live on
the host (``sandbox/egress/``), which treats these frames as untrusted.

One stream for every connection, not one ``docker exec`` per connection:
starting an exec costs ~70 ms, a frame costs nothing (``benchmarks/`` measures
both).  Standard library only; the host imports :class:`Mux` from this file so
that both ends speak the same frames.

Frames: kind (1 byte), channel (4), length (4), payload.  Each direction of a
channel may have at most ``WINDOW`` bytes unacknowledged, so a slow reader on
one connection never stalls the others nor fills a buffer without bound.  The
host first sends one byte, GO (see ``vnc_bridge.py``: nothing of ours may reach
docker's stream before the host reads it); we answer READY once listening, with
HELLO, so that a host never talks to a shim from another version.
"""

from __future__ import annotations

import contextlib
import os
import queue
import socket
import struct
import sys
import threading
from collections.abc import Callable

OPEN, DATA, ACK, EOF, CLOSE, READY = 1, 2, 3, 4, 5, 6
HEADER = struct.Struct(">BII")
COUNT = struct.Struct(">I")
CHUNK = 65536
WINDOW = 1 << 20
MAX_PAYLOAD = CHUNK
GO = b"\x00"
# What READY carries: the host refuses a shim whose frames or window differ from its own.
HELLO = f"deskhand-egress/1 window={WINDOW} chunk={CHUNK}".encode()

ReadExactly = Callable[[int], "bytes | None"]
WriteAll = Callable[[bytes], None]
OnOpen = Callable[[int], "socket.socket | None"]


class Channel:
    """One carried connection: a local socket on this side, frames on the other."""

    def __init__(self, mux: Mux, number: int, sock: socket.socket) -> None:
        self.mux = mux
        self.number = number
        self.sock = sock
        self._credit = WINDOW
        self._unacked_in = 0
        self._lock = threading.Condition()
        self._inbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._done = 0  # directions finished; the socket closes after both
        self.aborted = False

    def start(self) -> None:
        threading.Thread(target=self._sock_to_frames, daemon=True).start()
        threading.Thread(target=self._frames_to_sock, daemon=True).start()

    # -- from the other side ------------------------------------------------------

    def deliver(self, payload: bytes) -> None:
        with self._lock:
            self._unacked_in += len(payload)
            over = self._unacked_in > WINDOW
        if over:  # the other side ignored its window: it is broken or hostile
            self.abort(tell=True)
            return
        self._inbox.put(payload)

    def end_of_data(self) -> None:
        self._inbox.put(None)

    def credit(self, count: int) -> None:
        with self._lock:
            self._credit += count
            self._lock.notify_all()

    def abort(self, *, tell: bool = False) -> None:
        """Cut the connection now (both ways); ``tell`` the other side too."""
        with self._lock:
            if self.aborted:
                return
            self.aborted = True
            self._lock.notify_all()
        self._inbox.put(None)
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        if tell:
            self.mux.send(CLOSE, self.number)
        self._finish(both=True)

    # -- pumps ----------------------------------------------------------------------

    def _sock_to_frames(self) -> None:
        try:
            while chunk := self.sock.recv(CHUNK):
                if not self._take_credit(len(chunk)):
                    return
                self.mux.send(DATA, self.number, chunk)
            if not self.aborted:
                self.mux.send(EOF, self.number)
        except OSError:
            self.abort(tell=True)
            return
        self._finish()

    def _take_credit(self, count: int) -> bool:
        with self._lock:
            while self._credit < count and not self.aborted:
                self._lock.wait()
            self._credit -= count
            return not self.aborted

    def _frames_to_sock(self) -> None:
        try:
            while (payload := self._inbox.get()) is not None:
                self.sock.sendall(payload)
                with self._lock:
                    self._unacked_in -= len(payload)
                self.mux.send(ACK, self.number, COUNT.pack(len(payload)))
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.abort(tell=True)
            return
        self._finish()

    def _finish(self, *, both: bool = False) -> None:
        with self._lock:
            self._done = 2 if both else self._done + 1
            finished = self._done >= 2
        if finished:
            self.mux.forget(self.number)
            with contextlib.suppress(OSError):
                self.sock.close()


class Mux:
    """Both ends of the frame stream; the same class on the host and in the container."""

    def __init__(self, read_exactly: ReadExactly, write_all: WriteAll) -> None:
        self._read_exactly = read_exactly
        self._write_all = write_all
        self._write_lock = threading.Lock()
        self._channels: dict[int, Channel] = {}
        self._channels_lock = threading.Lock()
        self.ready = threading.Event()
        self.peer_hello = b""
        self.broken = False

    def send(self, kind: int, number: int, payload: bytes = b"") -> None:
        frame = HEADER.pack(kind, number, len(payload)) + payload
        with self._write_lock:
            if self.broken:
                return
            try:
                self._write_all(frame)
            except (OSError, ValueError):
                self.broken = True

    def attach(self, number: int, sock: socket.socket) -> Channel:
        channel = Channel(self, number, sock)
        with self._channels_lock:
            self._channels[number] = channel
        channel.start()
        return channel

    def forget(self, number: int) -> None:
        with self._channels_lock:
            self._channels.pop(number, None)

    def open_count(self) -> int:
        with self._channels_lock:
            return len(self._channels)

    def serve(self, on_open: OnOpen) -> None:
        """Read frames until the stream ends, then cut every channel."""
        try:
            while (frame := self._next_frame()) is not None:
                self._dispatch(*frame, on_open)
        except (OSError, ValueError):
            pass  # the stream is gone: the same as its end
        finally:
            self.broken = True
            with self._channels_lock:
                channels = list(self._channels.values())
            for channel in channels:
                channel.abort()

    def _next_frame(self) -> tuple[int, int, bytes] | None:
        header = self._read_exactly(HEADER.size)
        if header is None:
            return None
        kind, number, length = HEADER.unpack(header)
        if length > MAX_PAYLOAD:
            return None  # nobody honest sends that: stop reading a corrupt stream
        payload = self._read_exactly(length) if length else b""
        return None if payload is None else (kind, number, payload)

    def _dispatch(self, kind: int, number: int, payload: bytes, on_open: OnOpen) -> None:
        if kind == READY:
            self.peer_hello = payload
            self.ready.set()
            return
        if kind == OPEN:
            self._open(number, on_open)
            return
        with self._channels_lock:
            channel = self._channels.get(number)
        if channel is None:
            return
        if kind == DATA:
            channel.deliver(payload)
        elif kind == ACK and len(payload) == COUNT.size:
            channel.credit(COUNT.unpack(payload)[0])
        elif kind == EOF:
            channel.end_of_data()
        elif kind == CLOSE:
            channel.abort()

    def _open(self, number: int, on_open: OnOpen) -> None:
        with self._channels_lock:
            taken = number in self._channels
        sock = None if taken else on_open(number)
        if sock is None:
            self.send(CLOSE, number)
        else:
            self.attach(number, sock)


# --- the container side ---------------------------------------------------------------------

def read_exactly_from(descriptor: int) -> ReadExactly:
    def read_exactly(size: int) -> bytes | None:
        data = bytearray()
        while len(data) < size:
            chunk = os.read(descriptor, size - len(data))
            if not chunk:
                return None
            data += chunk
        return bytes(data)
    return read_exactly


def write_all_to(descriptor: int) -> WriteAll:
    def write_all(data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(descriptor, view):]
    return write_all


def refuse_opens(_number: int) -> socket.socket | None:
    return None  # only this side opens channels


def accept_connections(listener: socket.socket, mux: Mux) -> None:
    number = 0
    while True:
        try:
            client, _address = listener.accept()
        except OSError:
            return
        number += 1
        mux.send(OPEN, number)
        mux.attach(number, client)


def listen(port: int) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    return listener


def main(argv: list[str]) -> int:
    port = int(argv[1]) if len(argv) > 1 else 3128
    if os.read(0, 1) != GO:
        return 1  # the host went away before it was ready
    try:
        listener = listen(port)
    except OSError as exc:
        print(f"egress_shim: cannot listen on 127.0.0.1:{port}: {exc}", file=sys.stderr)
        return 1
    mux = Mux(read_exactly_from(0), write_all_to(1))
    threading.Thread(target=accept_connections, args=(listener, mux), daemon=True).start()
    mux.send(READY, 0, HELLO)
    mux.serve(refuse_opens)  # returns when the host closes our stdin
    listener.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
