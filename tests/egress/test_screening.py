"""Address screening and ClientHello reading, on real values (a ClientHello made by Python's
own TLS stack, never sent)."""

from __future__ import annotations

import ssl

import pytest

from sandbox.egress.addresses import forbidden_reason, parse_address
from sandbox.egress.clienthello import NotTls, hello_length, server_name


@pytest.mark.parametrize(("text", "why"), [
    ("127.0.0.1", "a loopback address"), ("::1", "a loopback address"),
    ("::ffff:127.0.0.1", "a loopback address"), ("10.1.2.3", "a private address"),
    ("192.168.0.10", "a private address"), ("169.254.169.254", "a cloud metadata address"),
    ("fd00:ec2::254", "a cloud metadata address"), ("fe80::1", "a link-local address"),
    ("fd12:3456::1", "a unique-local address"), ("100.64.0.1", "a reserved address"),
    ("0.0.0.0", "an unspecified address"), ("224.0.0.1", "a multicast address"),
    ("8.8.8.8", None), ("2606:4700:4700::1111", None),
])
def test_only_public_addresses_pass(text: str, why: str | None) -> None:
    address = parse_address(text)
    assert address is not None
    assert forbidden_reason(address) == why


def client_hello(server_hostname: str | None) -> bytes:
    context = ssl.create_default_context()
    if server_hostname is None:
        context.check_hostname = False
    tls = context.wrap_bio(ssl.MemoryBIO(), outgoing := ssl.MemoryBIO(),
                           server_hostname=server_hostname)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def test_the_sni_of_a_real_client_hello_is_read() -> None:
    hello = client_hello("Wiki.Example.COM")
    assert hello_length(hello) == len(hello)
    assert server_name(hello) == "wiki.example.com"


def test_a_client_hello_without_sni_has_no_name() -> None:
    assert server_name(client_hello(None)) is None


@pytest.mark.parametrize("data", [b"GET / HTTP/1.1\r\n", b"\x16\x03\x01\x00\x10\x01\x00"])
def test_what_is_not_a_whole_client_hello_is_not_tls(data: bytes) -> None:
    with pytest.raises(NotTls):
        server_name(data)


def test_a_record_cut_short_inside_the_hello_is_not_tls() -> None:
    hello = client_hello("wiki.example.com")
    body = hello[5:65]  # the handshake inside still claims its full length
    with pytest.raises(NotTls, match="truncated"):
        server_name(hello[:3] + len(body).to_bytes(2, "big") + body)
