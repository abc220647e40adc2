"""The host side of the desktop's egress: decide, resolve, screen, connect, carry, record.

    proxy = EgressProxy(gate, resolver=SystemResolver(), recorder=recorder)
    proxy.handle(connection)       # one connection from the desktop, to its end

For each connection, in order:

1. read one request head: ``CONNECT host:port`` or an absolute-form ``http://`` request;
2. ask the :class:`~sandbox.egress.decisions.Gate` (policy; maybe a human);
3. resolve the name here, once, and refuse it if any address is private, loopback,
   link-local, unique-local or a metadata service (unless the rule names the address,
   or a test's resolver vouches for it);
4. dial that very address — no second lookup, so a rebinding name cannot switch it;
5. for a tunnel, answer 200, read the TLS ClientHello and refuse it unless its SNI is
   the CONNECT host (a name) or absent (an address); then carry bytes both ways.
   For plain HTTP, pass on one request in origin form with ``Connection: close``.

Every refusal before the tunnel opens is an HTTP 403 whose ``X-Deskhand-Rule``
header and body name the rule; every attempt ends as one
:class:`~sandbox.egress.decisions.ConnectionRecord` given to the recorder.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable

from sandbox.egress.addresses import forbidden_reason, parse_address
from sandbox.egress.clienthello import NotTls, hello_length, server_name
from sandbox.egress.decisions import (
    ConnectionRecord,
    ConnectionRequest,
    ForgetRecords,
    Gate,
    Outcome,
    Recorder,
    Verdict,
)
from sandbox.egress.requests import BadRequest, RequestHead, parse_head, read_head
from sandbox.egress.resolver import Resolved, ResolveError, Resolver, SystemResolver

CHUNK = 65536
RULE_HEADER = "X-Deskhand-Rule"
UPLOAD_GRACE_S = 5.0
# A TLS alert record: fatal (2), unrecognized_name (112).
UNRECOGNIZED_NAME_ALERT = bytes([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x70])

log = logging.getLogger("deskhand.sandbox.egress")


class Refused(Exception):
    """The connection may not go on; ``status`` is the HTTP answer (None once tunnelling)."""

    def __init__(self, rule: str, reason: str, *, status: int | None = 403,
                 outcome: Outcome = "refused") -> None:
        super().__init__(reason)
        self.rule = rule
        self.reason = reason
        self.status = status
        self.outcome = outcome


class EgressProxy:
    """Serves desktop connections; see the module docstring."""

    def __init__(self, gate: Gate, *, resolver: Resolver | None = None,
                 recorder: Recorder | None = None, dial_timeout_s: float = 10.0,
                 head_timeout_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.gate = gate
        self.resolver = resolver or SystemResolver()
        self.recorder = recorder or ForgetRecords()
        self.dial_timeout_s = dial_timeout_s
        self.head_timeout_s = head_timeout_s
        self._clock = clock

    # -- one connection -------------------------------------------------------------

    def handle(self, client: socket.socket) -> None:
        """Serve one desktop connection to its end, then record it."""
        started = self._clock()
        record = ConnectionRecord(host="", port=0, kind="connect", method="")
        try:
            client.settimeout(self.head_timeout_s)
            head = parse_head(*read_head(client))
            record = ConnectionRecord(host=head.host, port=head.port,
                                      kind="connect" if head.tunnel else "http",
                                      method=head.method)
            self._serve(client, head, record)
        except BadRequest as exc:
            self._refuse(client, record, Refused("egress.bad-request", str(exc), status=400))
        except Refused as refusal:
            self._refuse(client, record, refusal)
        except (OSError, NotTls) as exc:
            record.outcome, record.reason = "failed", record.reason or str(exc)
        finally:
            record.duration_ms = round((self._clock() - started) * 1000, 3)
            _close(client)
            self._record(record)

    def probe(self, host: str, port: int, *, timeout_s: float = 3.0) -> ConnectionRecord:
        """Decide, resolve, screen and dial ``host:port`` without carrying anything (the
        start-up self-check, kept short by ``timeout_s``); never asks a human."""
        started = self._clock()
        record = ConnectionRecord(host=host, port=port, kind="selfcheck", method="PROBE")
        try:
            upstream = self._admit(ConnectionRequest(host, port, "selfcheck", "PROBE"), record,
                                   dial_timeout_s=timeout_s)
            _close(upstream)
            record.outcome = "allowed"
        except Refused as refusal:
            record.rule, record.reason = refusal.rule, refusal.reason
            record.outcome = "failed" if refusal.outcome == "failed" else "denied"
        record.duration_ms = round((self._clock() - started) * 1000, 3)
        self._record(record)
        return record

    def _serve(self, client: socket.socket, head: RequestHead, record: ConnectionRecord) -> None:
        request = ConnectionRequest(head.host, head.port, record.kind, head.method)
        upstream = self._admit(request, record)
        try:
            client.settimeout(self.head_timeout_s)
            if head.tunnel:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                first = self._client_hello(client, head.host, record)
            else:
                first = head.origin_request()
            client.settimeout(None)
            record.outcome = "allowed"
            upstream.sendall(first)
            record.bytes_up += len(first)
            carry(client, upstream, record, watch_status=not head.tunnel)
        finally:
            _close(upstream)

    # -- the checks -------------------------------------------------------------------

    def _admit(self, request: ConnectionRequest, record: ConnectionRecord, *,
               dial_timeout_s: float | None = None) -> socket.socket:
        """The gate's verdict, the screened addresses, then an open upstream socket."""
        verdict = self.gate.decide(request)
        record.rule, record.reason = verdict.rule, verdict.reason
        if not verdict.allowed:
            raise Refused(verdict.rule, verdict.reason, outcome="denied")
        addresses = self._screened(request, verdict)
        return self._dial(addresses, request.port, record,
                          dial_timeout_s or self.dial_timeout_s)

    def _screened(self, request: ConnectionRequest, verdict: Verdict) -> list[Resolved]:
        literal = parse_address(request.host)
        try:
            found = [Resolved(literal)] if literal is not None else \
                self.resolver.resolve(request.host, request.port)
        except ResolveError as exc:
            raise Refused("egress.unresolvable", str(exc), status=502, outcome="failed") from None
        for item in found:
            problem = forbidden_reason(item.address)
            if problem and not (verdict.addresses_allowed or item.stands_for_public):
                raise Refused("egress.private-address",
                              f"{request.host} resolves to {item.address}, {problem}; only a "
                              "rule naming that address may reach it")
        return found

    def _dial(self, addresses: list[Resolved], port: int, record: ConnectionRecord,
              timeout_s: float) -> socket.socket:
        problems = []
        for item in addresses:
            try:
                upstream = socket.create_connection((str(item.address), port),
                                                    timeout=timeout_s)
            except OSError as exc:
                problems.append(f"{item.address}: {exc}")
                continue
            upstream.settimeout(None)
            record.address = str(item.address)
            return upstream
        raise Refused("egress.unreachable", "cannot connect: " + "; ".join(problems),
                      status=502, outcome="failed")

    def _client_hello(self, client: socket.socket, host: str, record: ConnectionRecord) -> bytes:
        """The tunnel's first TLS record, once its SNI is checked against the CONNECT host."""
        try:
            hello = _read_record(client)
            record.sni = server_name(hello)
        except NotTls as exc:
            raise Refused("egress.not-tls", f"the tunnel did not start TLS: {exc}",
                          status=None) from None
        if record.sni is None and parse_address(host) is None:
            raise Refused("egress.no-sni", f"the TLS ClientHello names no server; expected "
                          f"{host}", status=None)
        if record.sni is not None and record.sni != host:
            with contextlib.suppress(OSError):
                client.sendall(UNRECOGNIZED_NAME_ALERT)
            raise Refused("egress.sni-mismatch", f"the TLS ClientHello asks for {record.sni}, "
                          f"but the tunnel was opened to {host}", status=None)
        return hello

    # -- answers ------------------------------------------------------------------------

    def _refuse(self, client: socket.socket, record: ConnectionRecord, refusal: Refused) -> None:
        record.rule, record.reason, record.outcome = refusal.rule, refusal.reason, refusal.outcome
        record.status = refusal.status
        if refusal.status is not None:
            with contextlib.suppress(OSError):
                client.sendall(refusal_response(refusal.status, refusal.rule, refusal.reason))

    def _record(self, record: ConnectionRecord) -> None:
        try:
            self.recorder.record(record)
        except Exception:  # a recorder failure must not take the desktop's connection with it
            log.exception("cannot record a connection to %s:%s", record.host, record.port)


def refusal_response(status: int, rule: str, reason: str) -> bytes:
    """An HTTP answer whose header and body name the rule that refused."""
    title = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}.get(status, "Refused")
    body = f"deskhand refused this connection: {reason} (rule {rule})\n".encode()
    safe_rule = "".join(ch for ch in rule if ch.isprintable())
    head = (f"HTTP/1.1 {status} {title}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"{RULE_HEADER}: {safe_rule}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n")
    return head.encode("utf-8", "replace") + body


def _read_record(sock: socket.socket) -> bytes:
    data = b""
    while (needed := hello_length(data)) is None or len(data) < needed:
        chunk = sock.recv(CHUNK)
        if not chunk:
            raise NotTls("the tunnel closed before a ClientHello")
        data += chunk
    return data


def carry(client: socket.socket, upstream: socket.socket, record: ConnectionRecord, *,
          watch_status: bool = False) -> None:
    """Copy bytes both ways until both sides are done, counting them into ``record``."""
    up = threading.Thread(target=_copy_up, args=(client, upstream, record), daemon=True)
    up.start()
    first = True
    with contextlib.suppress(OSError):
        while chunk := upstream.recv(CHUNK):
            if first and watch_status:
                record.status = _status_of(chunk)
            first = False
            client.sendall(chunk)
            record.bytes_down += len(chunk)
    with contextlib.suppress(OSError):
        client.shutdown(socket.SHUT_WR)
    up.join(timeout=UPLOAD_GRACE_S)
    if up.is_alive():  # the server is done and the client still holds its side open
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_RDWR)
        up.join()


def _copy_up(client: socket.socket, upstream: socket.socket, record: ConnectionRecord) -> None:
    with contextlib.suppress(OSError):
        while chunk := client.recv(CHUNK):
            upstream.sendall(chunk)
            record.bytes_up += len(chunk)
    with contextlib.suppress(OSError):
        upstream.shutdown(socket.SHUT_WR)


def _status_of(chunk: bytes) -> int | None:
    parts = chunk.split(b"\r\n", 1)[0].split(b" ")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()
