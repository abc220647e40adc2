"""Reading what the desktop's program asked the proxy for: one HTTP request head.

Two forms are served: ``CONNECT host:port`` (a tunnel, for HTTPS) and an
absolute-form plain-HTTP request (``GET http://host/path``).  Anything else is
a :class:`BadRequest` (answered 400).
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from sandbox.egress.addresses import parse_address

HEAD_LIMIT = 64 * 1024
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_HOST_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$")
# Headers meant for the proxy or for this one hop; never passed on.
HOP_BY_HOP = frozenset({"proxy-connection", "proxy-authorization", "connection", "keep-alive",
                        "te", "trailer", "upgrade", "host"})


class BadRequest(Exception):
    """Not a request this proxy serves; the message says why."""


@dataclass(frozen=True, slots=True)
class RequestHead:
    method: str
    host: str
    port: int
    path: str  # origin-form target for plain HTTP; "" for CONNECT
    version: str
    headers: tuple[tuple[str, str], ...]
    rest: bytes  # bytes after the head that were already read (a body's start)

    @property
    def tunnel(self) -> bool:
        return self.method == "CONNECT"

    def origin_request(self) -> bytes:
        """The request as the origin server should see it (origin-form, one request)."""
        authority = self.host if ":" not in self.host else f"[{self.host}]"
        if self.port != 80:
            authority += f":{self.port}"
        lines = [f"{self.method} {self.path} {self.version}", f"Host: {authority}"]
        lines += [f"{name}: {value}" for name, value in self.headers
                  if name.lower() not in HOP_BY_HOP]
        lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.rest


def read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """Read up to the blank line that ends a request head; (head, bytes after it)."""
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > HEAD_LIMIT:
            raise BadRequest(f"the request head is longer than {HEAD_LIMIT} bytes")
        chunk = sock.recv(8192)
        if not chunk:
            raise BadRequest("the connection closed before a whole request head")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def parse_head(head: bytes, rest: bytes) -> RequestHead:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not _TOKEN.match(parts[0]) or not parts[2].startswith("HTTP/1."):
        raise BadRequest(f"not an HTTP/1 request line: {lines[0][:80]!r}")
    method, target, version = parts
    headers = tuple(_header(line) for line in lines[1:] if line)
    if method == "CONNECT":
        host, port = split_authority(target, default_port=None)
        return RequestHead(method, host, port, "", version, headers, rest)
    return _absolute_form(method, target, version, headers, rest)


def _header(line: str) -> tuple[str, str]:
    name, colon, value = line.partition(":")
    if not colon or not _TOKEN.match(name):
        raise BadRequest(f"malformed header line {line[:80]!r}")
    return name, value.strip()


def _absolute_form(method: str, target: str, version: str,
                   headers: tuple[tuple[str, str], ...], rest: bytes) -> RequestHead:
    if not target.lower().startswith("http://"):
        raise BadRequest("plain requests must name an http:// URL (use CONNECT for https)")
    url = urlsplit(target)
    host, port = split_authority(url.netloc, default_port=80)
    path = url.path or "/"
    if url.query:
        path += "?" + url.query
    return RequestHead(method, host, port, path, version, headers, rest)


def split_authority(authority: str, *, default_port: int | None) -> tuple[str, int]:
    """``host:port`` (IPv6 in brackets) to a normalised host and a port."""
    if "@" in authority:
        raise BadRequest("credentials in the proxy target are not accepted")
    host, port_text = authority, ""
    if authority.startswith("["):
        host, _, tail = authority[1:].partition("]")
        port_text = tail.removeprefix(":")
    elif authority.count(":") == 1:
        host, port_text = authority.split(":")
    if not port_text and default_port is None:
        raise BadRequest(f"CONNECT needs host:port, not {authority!r}")
    port = _port(port_text) if port_text else int(default_port or 0)
    return normalise_host(host), port


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise BadRequest(f"bad port {text!r}")
    return int(text)


def normalise_host(host: str) -> str:
    """Lower-case, without a trailing dot; a name of letters, digits, dashes, or an address."""
    name = host.strip().lower().rstrip(".")
    address = parse_address(name)
    if address is not None:
        return str(address)
    if not _HOST_NAME.match(name):
        raise BadRequest(f"{host!r} is not a host name")
    return name
