"""The ``network`` section of a policy: which hosts the desktop may reach.

    network:
      mode: allowlist            # off (no network) | allowlist (through the proxy) | full
      allow: [example.com, "*.example.org", "10.0.0.5:8443"]
      deny: ["*.ads.example.org"]
      methods: read_only         # all | read_only (plain-HTTP GET, HEAD, OPTIONS only)

An entry is a host name, ``*.`` and a domain (any name below it, not the domain
itself), an IP address or network (``10.0.0.0/24``, ``[fd00::1]``), each with an
optional ``:port`` (no port: any port).  Deny beats allow; a host name in neither
list is an approval for a human (``network.unlisted``); a bare address in
neither is denied (``network.unlisted-address``).  Only an entry that is
an address lifts the proxy's refusal of private and loopback addresses.
``methods: read_only`` can only see plain HTTP: an HTTPS tunnel's requests are
encrypted, and deskhand does not intercept TLS.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Literal

from sandbox.egress.addresses import parse_address

Mode = Literal["off", "allowlist", "full"]
Methods = Literal["all", "read_only"]
NetworkEffect = Literal["allow", "deny", "ask"]
READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "CONNECT", "PROBE"})
_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$")
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class HostPattern:
    """One allow or deny entry, parsed; ``text`` is how the policy wrote it."""

    text: str
    name: str = ""
    wildcard: bool = False
    network: IPNetwork | None = None
    port: int | None = None

    @property
    def names_address(self) -> bool:
        return self.network is not None

    def matches(self, host: str, port: int) -> bool:
        if self.port is not None and port != self.port:
            return False
        if self.network is not None:
            address = parse_address(host)
            return address is not None and address in self.network
        if self.wildcard:
            return host.endswith("." + self.name)
        return host == self.name


def parse_host_pattern(text: str) -> HostPattern:
    """An entry as written in ``allow``/``deny`` or ``--allow-host``; ValueError says why."""
    entry = text.strip().lower()
    host, port = _split_port(entry)
    if "/" in host or parse_address(host) is not None:
        try:
            network = ipaddress.ip_network(host.strip("[]"), strict=False)
        except ValueError:
            raise ValueError(f"{text!r} is not an IP address or network") from None
        return HostPattern(text=text, network=network, port=port)
    wildcard = host.startswith("*.")
    name = host.removeprefix("*.").rstrip(".")
    if not _NAME.match(name) or "*" in name:
        raise ValueError(f"{text!r} is not a host name, *.domain, or IP address[:port]")
    return HostPattern(text=text, name=name, wildcard=wildcard, port=port)


def _split_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):
        host, _, tail = entry[1:].partition("]")
        return host, _port(tail.removeprefix(":")) if tail else None
    if entry.count(":") == 1:
        host, port_text = entry.split(":")
        return host, _port(port_text)
    return entry, None


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"bad port {text!r}")
    return int(text)


@dataclass(frozen=True, slots=True)
class NetworkDecision:
    effect: NetworkEffect
    rule: str
    reason: str
    addresses_allowed: bool = False


@dataclass(frozen=True, slots=True)
class NetworkRules:
    """A policy's ``network`` section, compiled."""

    mode: Mode = "off"
    allow: tuple[HostPattern, ...] = ()
    deny: tuple[HostPattern, ...] = ()
    methods: Methods = "all"
    extra_allow: tuple[HostPattern, ...] = field(default=())

    def with_allowed_hosts(self, hosts: tuple[str, ...] | list[str]) -> NetworkRules:
        """These rules plus per-run allow entries (``--allow-host``, a suite case); giving
        any turns ``off`` into ``allowlist``.  ValueError names a bad entry."""
        if not hosts:
            return self
        extra = tuple(parse_host_pattern(host) for host in hosts)
        mode: Mode = "allowlist" if self.mode == "off" else self.mode
        return NetworkRules(mode=mode, allow=self.allow, deny=self.deny, methods=self.methods,
                            extra_allow=self.extra_allow + extra)

    def decide(self, host: str, port: int, method: str) -> NetworkDecision:
        """Allow, deny or ask for one destination; deny beats allow."""
        if self.mode == "off":
            return NetworkDecision("deny", "network.off", "the policy gives the desktop no network")
        for pattern in self.deny:
            if pattern.matches(host, port):
                return NetworkDecision("deny", f"network.deny:{pattern.text}",
                                       f"{host} is on the policy's deny list")
        if self.methods == "read_only" and method.upper() not in READ_ONLY_METHODS:
            return NetworkDecision("deny", "network.read_only",
                                   f"the policy allows only reading (not {method})")
        if self.mode == "full":
            return NetworkDecision("allow", "network.full", "the policy allows any host")
        for pattern, where in [(p, "policy") for p in self.allow] + \
                [(p, "run") for p in self.extra_allow]:
            if pattern.matches(host, port):
                return NetworkDecision("allow", f"network.allow:{pattern.text}",
                                       f"{host} is on the {where}'s allow list",
                                       addresses_allowed=pattern.names_address)
        if parse_address(host) is not None:
            return NetworkDecision("deny", "network.unlisted-address",
                                   f"{host} is a bare address; only an allow entry naming it "
                                   "reaches it")
        return NetworkDecision("ask", "network.unlisted", f"{host}:{port} is not on the allow list")

    def describe(self) -> dict[str, object]:
        """What the session records about the network."""
        return {"mode": self.mode, "allow": [p.text for p in self.allow + self.extra_allow],
                "deny": [p.text for p in self.deny], "methods": self.methods}

    def probe_targets(self) -> tuple[tuple[str, int] | None, tuple[str, int]]:
        """For the start-up self-check: an allowed host (None if every entry is a wildcard
        or a network) and one that must fail (a denied host, else the metadata address)."""
        allowed = next(((p.name or str(p.network.network_address) if p.network else p.name,
                         p.port or 443) for p in self.allow + self.extra_allow
                        if not p.wildcard and (p.network is None or p.network.num_addresses == 1)),
                       None)
        denied = next(((p.name, p.port or 443) for p in self.deny if p.name and not p.wildcard),
                      ("169.254.169.254", 80))
        return allowed, denied
