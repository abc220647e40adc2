"""Name resolution for the proxy: deskhand resolves, never the desktop.

The proxy resolves each name once and connects to an address it got here, so
what was screened is what is dialled (no second lookup to rebind).  The
:class:`Resolver` seam lets tests map public-looking names to loopback test
servers: :class:`MappedResolver` marks such an address ``stands_for_public``,
the only way a loopback destination is ever reached without a rule naming it.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from sandbox.egress.addresses import IPAddress, parse_address


class ResolveError(Exception):
    """The name has no address."""


@dataclass(frozen=True, slots=True)
class Resolved:
    """One address of a name; ``stands_for_public`` only from a test's mapping."""

    address: IPAddress
    stands_for_public: bool = False


class Resolver(Protocol):
    def resolve(self, host: str, port: int) -> list[Resolved]:
        """The addresses of ``host``; :class:`ResolveError` when there are none."""
        ...


class SystemResolver:
    """The host's own resolver (``getaddrinfo``), TCP addresses only."""

    def resolve(self, host: str, port: int) -> list[Resolved]:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise ResolveError(f"cannot resolve {host}: {exc}") from None
        found: list[Resolved] = []
        for info in infos:
            address = parse_address(str(info[4][0]))
            if address is not None and Resolved(address) not in found:
                found.append(Resolved(address))
        if not found:
            raise ResolveError(f"{host} has no address")
        return found


class MappedResolver:
    """Names the tests decide: ``public`` names stand for public hosts (their address is
    reached even when it is loopback); ``plain`` names resolve as DNS would answer and are
    screened like any other (a rebinding name).  Anything else goes to ``fallback``."""

    def __init__(self, public: Mapping[str, str] | None = None,
                 plain: Mapping[str, str] | None = None,
                 fallback: Resolver | None = None) -> None:
        self._names: dict[str, Resolved] = {}
        for mapping, vouched in ((public or {}, True), (plain or {}, False)):
            for name, text in mapping.items():
                address = parse_address(text)
                if address is None:
                    raise ValueError(f"{text!r} is not an IP address")
                self._names[name.lower()] = Resolved(address, stands_for_public=vouched)
        self._fallback = fallback

    def resolve(self, host: str, port: int) -> list[Resolved]:
        found = self._names.get(host.lower())
        if found is not None:
            return [found]
        if self._fallback is None:
            raise ResolveError(f"cannot resolve {host}: not in the mapping")
        return self._fallback.resolve(host, port)
