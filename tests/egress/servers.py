"""Loopback servers for the egress tests: HTTPS and HTTP origins, and the proxy on a port.

    certificate = make_certificate(tmp_path, ["allowed.example", "other.example"])
    with OriginServer(certificate) as origin, ProxyListener(proxy) as listener:
        ...  # CONNECT allowed.example:{origin.port} through 127.0.0.1:{listener.port}

The origin answers ``GET /hello`` with the Host it was asked for, ``GET /blob?size=N``
with N bytes, and ``POST /upload`` with the number of bytes it read.  The
certificate is self-signed, made with the ``openssl`` command line.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

from sandbox.egress.proxy import EgressProxy

BLOB_BYTE = b"x"


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    @property
    def pem(self) -> str:
        return self.cert.read_text()


def make_certificate(folder: Path, names: list[str]) -> Certificate:
    """A self-signed certificate (EC P-256, one day) for ``names``."""
    cert, key = folder / "origin.pem", folder / "origin.key"
    san = ",".join(f"DNS:{name}" for name in names)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", f"/CN={names[0]}", "-addext",
                    f"subjectAltName={san}"], check=True, capture_output=True)
    return Certificate(cert, key)


class _Origin(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/blob":
            size = int(parse_qs(url.query)["size"][0])
            self._answer(200, b"", length=size)
            remaining = size
            block = BLOB_BYTE * 65536
            while remaining:
                part = block[:min(remaining, len(block))]
                self.wfile.write(part)
                remaining -= len(part)
            return
        self._answer(200, f"hello from {self.headers.get('Host')}\n".encode())

    def do_HEAD(self) -> None:
        self._answer(200, b"")

    def do_POST(self) -> None:
        remaining = int(self.headers.get("Content-Length", "0"))
        read = 0
        while remaining:
            chunk = self.rfile.read(min(remaining, 65536))
            if not chunk:
                break
            read += len(chunk)
            remaining -= len(chunk)
        self._answer(200, f"read {read}\n".encode())

    def _answer(self, status: int, body: bytes, *, length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if body:
            self.wfile.write(body)


class OriginServer:
    """An HTTPS (with a certificate) or plain HTTP origin on 127.0.0.1."""

    def __init__(self, certificate: Certificate | None = None) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Origin)
        self._server.daemon_threads = True
        if certificate is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(certificate.cert, certificate.key)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def __enter__(self) -> OriginServer:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()


class ProxyListener:
    """Serves an :class:`EgressProxy` on a loopback port (what the shim is inside a box)."""

    def __init__(self, proxy: EgressProxy) -> None:
        self.proxy = proxy
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._handlers: list[threading.Thread] = []

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            handler = threading.Thread(target=self.proxy.handle, args=(client,), daemon=True)
            self._handlers.append(handler)
            handler.start()

    def wait_idle(self, timeout_s: float = 10.0) -> None:
        """Wait until every connection served so far has been recorded."""
        for handler in list(self._handlers):
            handler.join(timeout_s)

    def __enter__(self) -> ProxyListener:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(2)


def open_tunnel(proxy_port: int, host: str, port: int) -> tuple[socket.socket, bytes]:
    """CONNECT through the proxy; the socket and the proxy's whole answer head (+ body)."""
    sock = socket.create_connection(("127.0.0.1", proxy_port), timeout=10)
    sock.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    if not head.startswith(b"HTTP/1.1 200"):
        with contextlib.suppress(OSError):
            while chunk := sock.recv(4096):
                head += chunk
    return sock, head


def https_get(proxy_port: int, host: str, port: int, path: str, certificate: Certificate, *,
              server_name: str | None = None) -> bytes:
    """GET over a tunnel with TLS verified against ``certificate``; the raw response."""
    sock, head = open_tunnel(proxy_port, host, port)
    if not head.startswith(b"HTTP/1.1 200"):
        sock.close()
        return head
    context = ssl.create_default_context(cafile=str(certificate.cert))
    with context.wrap_socket(sock, server_hostname=server_name or host) as tls:
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        return read_all(tls)


def read_all(sock: socket.socket) -> bytes:
    data = bytearray()
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return bytes(data)


def plain_request(proxy_port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", proxy_port), timeout=10) as sock:
        sock.sendall(request)
        return read_all(sock)
