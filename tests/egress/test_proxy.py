"""The egress proxy on loopback: real TLS origins, real sockets, the resolver seam mapping
public-looking names to them.  No docker here; tests/docker/test_egress.py runs curl in a box."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import pytest

from agent.egress import PolicyGate
from policies.network import NetworkRules, parse_host_pattern
from sandbox.egress.decisions import AllowAll, ConnectionRecord, Gate, KeepRecords
from sandbox.egress.proxy import EgressProxy
from sandbox.egress.resolver import MappedResolver, Resolver, SystemResolver
from tests.egress.servers import (
    Certificate,
    OriginServer,
    ProxyListener,
    https_get,
    make_certificate,
    open_tunnel,
    plain_request,
)

NAMES = ["allowed.example", "other.example", "denied.example", "rebind.example"]
TEST_RESOLVER = MappedResolver(
    public={"allowed.example": "127.0.0.1", "other.example": "127.0.0.1",
            "denied.example": "127.0.0.1"},
    plain={"rebind.example": "127.0.0.1", "metadata.example": "169.254.169.254"})


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("tls"), NAMES)


@pytest.fixture(scope="module")
def origin(certificate: Certificate) -> Iterator[OriginServer]:
    with OriginServer(certificate) as server:
        yield server


@pytest.fixture(scope="module")
def plain_origin() -> Iterator[OriginServer]:
    with OriginServer() as server:
        yield server


def network(*allow: str, deny: tuple[str, ...] = (),
            methods: Literal["all", "read_only"] = "all") -> NetworkRules:
    return NetworkRules(mode="allowlist", allow=tuple(map(parse_host_pattern, allow)),
                        deny=tuple(map(parse_host_pattern, deny)), methods=methods)


class Served:
    def __init__(self, listener: ProxyListener, records: KeepRecords) -> None:
        self.listener = listener
        self._records = records

    @property
    def port(self) -> int:
        return self.listener.port

    def records(self) -> list[ConnectionRecord]:
        self.listener.wait_idle()
        return self._records.records


@contextmanager
def serving(gate: Gate, resolver: Resolver = TEST_RESOLVER) -> Iterator[Served]:
    records = KeepRecords()
    proxy = EgressProxy(gate, resolver=resolver, recorder=records)
    with ProxyListener(proxy) as listener:
        yield Served(listener, records)


def rule_header(response: bytes) -> str:
    for line in response.split(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        name, _, value = line.decode().partition(":")
        if name.lower() == "x-deskhand-rule":
            return value.strip()
    return ""


def test_an_allowed_host_answers_over_verified_tls_and_the_attempt_is_recorded(
        origin: OriginServer, certificate: Certificate) -> None:
    with serving(PolicyGate(network("allowed.example"))) as proxy:
        response = https_get(proxy.port, "allowed.example", origin.port, "/hello", certificate)
        (record,) = proxy.records()
    assert response.startswith(b"HTTP/1.1 200")
    assert response.endswith(b"hello from allowed.example\n")
    assert (record.host, record.port, record.sni) == ("allowed.example", origin.port,
                                                      "allowed.example")
    assert (record.outcome, record.rule) == ("allowed", "network.allow:allowed.example")
    assert record.address == "127.0.0.1"
    assert record.bytes_up > 200
    assert record.bytes_down > 200
    assert record.duration_ms > 0


def test_deny_beats_allow_with_a_403_that_names_the_rule(origin: OriginServer) -> None:
    gate = PolicyGate(network("*.example", deny=("denied.example",)))
    with serving(gate) as proxy:
        sock, response = open_tunnel(proxy.port, "denied.example", origin.port)
        sock.close()
        (record,) = proxy.records()
    assert response.startswith(b"HTTP/1.1 403")
    assert rule_header(response) == "network.deny:denied.example"
    assert b"rule network.deny:denied.example" in response
    assert (record.outcome, record.rule) == ("denied", "network.deny:denied.example")


def test_a_direct_ip_is_not_an_allowed_name(origin: OriginServer) -> None:
    with serving(PolicyGate(network("allowed.example"))) as proxy:
        sock, response = open_tunnel(proxy.port, "127.0.0.1", origin.port)
        sock.close()
    assert response.startswith(b"HTTP/1.1 403")
    assert rule_header(response) == "network.unlisted-address"


def test_an_sni_other_than_the_connect_host_is_refused(origin: OriginServer,
                                                       certificate: Certificate) -> None:
    with serving(PolicyGate(network("allowed.example", "other.example"))) as proxy:
        with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME"):
            https_get(proxy.port, "allowed.example", origin.port, "/hello", certificate,
                      server_name="other.example")
        (record,) = proxy.records()
    assert (record.outcome, record.rule, record.sni) == ("refused", "egress.sni-mismatch",
                                                         "other.example")


def test_a_tunnel_that_does_not_start_tls_is_refused(origin: OriginServer) -> None:
    with serving(PolicyGate(network("allowed.example"))) as proxy:
        sock, response = open_tunnel(proxy.port, "allowed.example", origin.port)
        sock.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
        assert sock.recv(100) == b""
        sock.close()
        (record,) = proxy.records()
    assert response.startswith(b"HTTP/1.1 200")
    assert record.rule == "egress.not-tls"


@pytest.mark.parametrize(("name", "why"), [("rebind.example", "a loopback address"),
                                           ("metadata.example", "a cloud metadata address")])
def test_an_allowed_name_resolving_to_a_private_address_is_refused(
        origin: OriginServer, name: str, why: str) -> None:
    with serving(PolicyGate(network(name))) as proxy:
        sock, response = open_tunnel(proxy.port, name, origin.port)
        sock.close()
        (record,) = proxy.records()
    assert response.startswith(b"HTTP/1.1 403")
    assert rule_header(response) == "egress.private-address"
    assert why.encode() in response
    assert record.address is None  # never dialled


def test_the_system_resolver_never_vouches_for_loopback(origin: OriginServer) -> None:
    with serving(AllowAll(), SystemResolver()) as proxy:
        for host in ("localhost", "127.0.0.1", "[::1]", "169.254.169.254"):
            sock, response = open_tunnel(proxy.port, host, origin.port)
            sock.close()
            assert rule_header(response) == "egress.private-address", host


def test_an_allow_entry_naming_an_address_lifts_the_refusal_for_it(
        origin: OriginServer, certificate: Certificate) -> None:
    with serving(PolicyGate(network(f"127.0.0.1:{origin.port}"))) as proxy:
        sock, response = open_tunnel(proxy.port, "127.0.0.1", origin.port)
        sock.close()
        other, refused = open_tunnel(proxy.port, "127.0.0.1", origin.port + 1)
        other.close()
    assert response.startswith(b"HTTP/1.1 200")
    assert rule_header(refused) == "network.unlisted-address"


def test_plain_http_goes_through_in_origin_form_and_read_only_refuses_a_post(
        plain_origin: OriginServer) -> None:
    gate = PolicyGate(network("allowed.example", methods="read_only"))
    url = f"http://allowed.example:{plain_origin.port}"
    with serving(gate) as proxy:
        got = plain_request(proxy.port, f"GET {url}/hello HTTP/1.1\r\nHost: evil.example\r\n"
                            "Proxy-Connection: keep-alive\r\n\r\n".encode())
        posted = plain_request(proxy.port, f"POST {url}/upload HTTP/1.1\r\nHost: x\r\n"
                               "Content-Length: 3\r\n\r\nabc".encode())
        get_record, post_record = sorted(proxy.records(), key=lambda r: r.method)
    assert got.startswith(b"HTTP/1.1 200")
    assert got.endswith(f"hello from allowed.example:{plain_origin.port}\n".encode())
    assert (get_record.method, get_record.status, get_record.kind) == ("GET", 200, "http")
    assert rule_header(posted) == "network.read_only"
    assert (post_record.method, post_record.outcome) == ("POST", "denied")


@pytest.mark.parametrize("request_head", [
    b"GET /relative HTTP/1.1\r\nHost: allowed.example\r\n\r\n",
    b"GET https://allowed.example/ HTTP/1.1\r\n\r\n",
    b"CONNECT allowed.example HTTP/1.1\r\n\r\n",
    b"CONNECT user@allowed.example:443 HTTP/1.1\r\n\r\n",
    b"CONNECT bad_host!:443 HTTP/1.1\r\n\r\n",
])
def test_requests_it_does_not_serve_get_a_400(request_head: bytes) -> None:
    with serving(AllowAll()) as proxy:
        response = plain_request(proxy.port, request_head)
    assert response.startswith(b"HTTP/1.1 400")
    assert rule_header(response) == "egress.bad-request"


def test_one_large_download_and_upload_arrive_whole(origin: OriginServer,
                                                     certificate: Certificate) -> None:
    size = 8 * 1024 * 1024
    with serving(PolicyGate(network("allowed.example"))) as proxy:
        response = https_get(proxy.port, "allowed.example", origin.port, f"/blob?size={size}",
                             certificate)
        (record,) = proxy.records()
    assert response.endswith(b"x" * 1000)
    assert len(response.split(b"\r\n\r\n", 1)[1]) == size
    assert record.bytes_down > size
