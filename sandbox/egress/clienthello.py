"""The server name (SNI) a TLS ClientHello asks for, read without terminating TLS.

Written by hand rather than taken from a TLS library: Python's ``ssl`` can
only parse a ClientHello as a server with a certificate, and the packet
libraries that parse one (scapy, dpkt) are large for reading one extension.
The layout is RFC 8446 §4.1.2 and RFC 6066 §3; every length is checked.
"""

from __future__ import annotations

HANDSHAKE = 0x16
CLIENT_HELLO = 0x01
SERVER_NAME = 0x0000
HOST_NAME = 0x00
MAX_HELLO = 1 << 16


class NotTls(Exception):
    """The bytes are not the start of a TLS handshake."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, size: int) -> bytes:
        if self.at + size > len(self.data):
            raise NotTls("truncated ClientHello")
        chunk = self.data[self.at:self.at + size]
        self.at += size
        return chunk

    def number(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def vector(self, length_size: int) -> _Reader:
        return _Reader(self.take(self.number(length_size)))

    @property
    def left(self) -> int:
        return len(self.data) - self.at


def hello_length(head: bytes) -> int | None:
    """How many bytes the first TLS record needs in all (None until 5 bytes are in)."""
    if len(head) < 5:
        return None
    if head[0] != HANDSHAKE or head[1] != 3:
        raise NotTls("the first bytes are not a TLS handshake record")
    return 5 + int.from_bytes(head[3:5], "big")


def server_name(record: bytes) -> str | None:
    """The host name in the ClientHello's SNI extension; None when it sends none."""
    if hello_length(record) is None:
        raise NotTls("truncated record")
    body = _Reader(record[5:hello_length(record)])
    if body.number(1) != CLIENT_HELLO:
        raise NotTls("the first handshake message is not a ClientHello")
    hello = _Reader(body.take(body.number(3)))
    hello.take(2 + 32)  # legacy version, random
    hello.vector(1)  # session id
    hello.vector(2)  # cipher suites
    hello.vector(1)  # compression methods
    if hello.left == 0:
        return None
    extensions = hello.vector(2)
    while extensions.left:
        kind, data = extensions.number(2), extensions.vector(2)
        if kind == SERVER_NAME:
            return _host_name(data)
    return None


def _host_name(extension: _Reader) -> str | None:
    names = extension.vector(2)
    while names.left:
        kind, name = names.number(1), names.vector(2)
        if kind == HOST_NAME:
            return name.take(name.left).decode("ascii", "replace").lower().rstrip(".")
    return None
