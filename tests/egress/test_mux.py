"""The frame stream between the egress shim and the host, over a real socket pair: many
connections at once, whole bytes, per-connection flow control, a peer that cheats cut off."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sandbox.image.egress_shim import (
    CLOSE,
    DATA,
    HEADER,
    OPEN,
    WINDOW,
    Mux,
    accept_connections,
    refuse_opens,
)

Handler = Callable[[socket.socket], None]


def reader_of(sock: socket.socket) -> Callable[[int], bytes | None]:
    def read_exactly(size: int) -> bytes | None:
        data = bytearray()
        while len(data) < size:
            chunk = sock.recv(size - len(data))
            if not chunk:
                return None
            data += chunk
        return bytes(data)
    return read_exactly


def echo(sock: socket.socket) -> None:
    with sock, contextlib.suppress(OSError):
        while chunk := sock.recv(65536):
            sock.sendall(chunk)


@contextmanager
def carried(handler: Handler) -> Iterator[int]:
    """A shim-side listener whose connections the host side hands to ``handler``; its port."""
    shim_end, host_end = socket.socketpair()

    def open_channel(_number: int) -> socket.socket:
        ours, theirs = socket.socketpair()
        threading.Thread(target=handler, args=(theirs,), daemon=True).start()
        return ours

    shim = Mux(reader_of(shim_end), shim_end.sendall)
    host = Mux(reader_of(host_end), host_end.sendall)
    threading.Thread(target=shim.serve, args=(refuse_opens,), daemon=True).start()
    threading.Thread(target=host.serve, args=(open_channel,), daemon=True).start()
    listener = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=accept_connections, args=(listener, shim), daemon=True).start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()
        shim_end.close()
        host_end.close()


def send_all_then_end(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(payload)
    sock.shutdown(socket.SHUT_WR)


def round_trip(port: int, payload: bytes, results: dict[int, bytes], key: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sender = threading.Thread(target=send_all_then_end, args=(sock, payload))
        sender.start()
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
        sender.join()
    results[key] = bytes(received)


def test_many_connections_at_once_each_get_their_own_bytes_back() -> None:
    results: dict[int, bytes] = {}
    payloads = {key: bytes([key]) * (WINDOW * 2 + key * 977) for key in range(12)}
    with carried(echo) as port:
        threads = [threading.Thread(target=round_trip, args=(port, payloads[key], results, key))
                   for key in payloads]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert results == payloads


def test_a_connection_nobody_reads_does_not_stall_the_others() -> None:
    sent_to_stuck = threading.Event()

    def flood_or_echo(sock: socket.socket) -> None:
        with sock, contextlib.suppress(OSError):  # the stuck reader hangs up at the end
            first = sock.recv(1)
            if first == b"F":
                sock.sendall(b"y" * (WINDOW * 8))  # blocks: the reader never reads
                sent_to_stuck.set()
                return
            sock.sendall(first)
            echo(sock)

    with carried(flood_or_echo) as port:
        stuck = socket.create_connection(("127.0.0.1", port), timeout=20)
        stuck.sendall(b"F")
        results: dict[int, bytes] = {}
        round_trip(port, b"e" + b"z" * (WINDOW * 3), results, 0)
        assert results[0] == b"e" + b"z" * (WINDOW * 3)
        assert not sent_to_stuck.is_set()
        stuck.close()


def test_a_peer_that_ignores_its_window_gets_the_channel_cut() -> None:
    cheat, host_end = socket.socketpair()
    opened: list[socket.socket] = []

    def open_channel(_number: int) -> socket.socket:
        ours, theirs = socket.socketpair()
        opened.append(theirs)  # nobody reads: every byte stays unacknowledged
        return ours

    host = Mux(reader_of(host_end), host_end.sendall)
    threading.Thread(target=host.serve, args=(open_channel,), daemon=True).start()
    cheat.sendall(HEADER.pack(OPEN, 7, 0))
    chunk = b"c" * 65536
    with_too_much = HEADER.pack(DATA, 7, len(chunk)) + chunk
    cheat.settimeout(20)
    for _ in range(WINDOW // len(chunk) + 40):
        cheat.sendall(with_too_much)
    kinds = []
    read = reader_of(cheat)
    while (header := read(HEADER.size)) is not None:
        kind, number, length = HEADER.unpack(header)
        read(length)
        kinds.append((kind, number))
        if kind == CLOSE:
            break
    assert (CLOSE, 7) in kinds
    cheat.close()
    host_end.close()
    for sock in opened:
        sock.close()
