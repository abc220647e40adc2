"""Which addresses the desktop may never be carried to unless a rule names them.

A name that resolves to one of these is refused even when the name itself is
allowed: that is how DNS rebinding (an allowed name pointing at the host's
loopback, the LAN or a cloud metadata service) is stopped.  An allow entry
that is itself an address (``10.0.0.5:8443``) lifts the refusal for exactly
that address.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_ADDRESSES: frozenset[IPAddress] = frozenset({
    ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"),
})


def parse_address(text: str) -> IPAddress | None:
    """``text`` as an IP address (brackets allowed around IPv6), or None for a name."""
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def forbidden_reason(address: IPAddress) -> str | None:
    """Why ``address`` is not a public destination, or None when it is one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return forbidden_reason(address.ipv4_mapped)
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    checks = (("a loopback", address.is_loopback), ("a link-local", address.is_link_local),
              ("a multicast", address.is_multicast), ("an unspecified", address.is_unspecified),
              ("a unique-local", _unique_local(address)), ("a private", address.is_private),
              ("a reserved", address.is_reserved or not address.is_global))
    for name, hit in checks:
        if hit:
            return f"{name} address"
    return None


def _unique_local(address: IPAddress) -> bool:
    return isinstance(address, ipaddress.IPv6Address) and address in _ULA


_ULA = ipaddress.ip_network("fc00::/7")
