"""Parsed addresses and networks, each text parsed once per process.

A fleet repeats the same few thousand address strings (partner sources, the MSP's
management ranges, documentation ranges, every store's LAN) across validation,
checks, resolution, lint and every target: without a cache a 1,000-store render
parsed about 77 addresses per store. ipaddress objects are immutable, so sharing
them is safe; a text that does not parse raises ValueError every time (errors are
never cached). The caches are bounded so a huge fleet cannot grow them without end.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache
from typing import Literal

_SIZE = 1 << 16

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=_SIZE)
def ipv4_address(text: str) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(text)


@lru_cache(maxsize=_SIZE)
def ipv4_network(text: str, strict: bool = True) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(text, strict=strict)


@lru_cache(maxsize=_SIZE)
def ip_address(text: str) -> IPAddress:
    """IPv4 or IPv6 (ValueError for anything else, e.g. an FQDN)."""
    return ipaddress.ip_address(text)


@lru_cache(maxsize=_SIZE)
def ip_address_or_none(text: str) -> IPAddress | None:
    """The address, or None for a name (an upstream may be an IP or an FQDN): an FQDN
    is then looked at once, not tried as an address on every call."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@lru_cache(maxsize=_SIZE)
def ip_network(text: str) -> IPNetwork:
    """IPv4 or IPv6, host bits allowed (cleared)."""
    return ipaddress.ip_network(text, strict=False)


def family(text: str) -> Literal["ipv4", "ipv6"]:
    return "ipv4" if ip_network(text).version == 4 else "ipv6"


def collapse(cidrs: Iterable[str], fam: Literal["ipv4", "ipv6"]) -> tuple[str, ...]:
    """Merge overlapping networks of one family; sorted, host bits cleared."""
    return _collapse(tuple(cidrs), fam)


@lru_cache(maxsize=_SIZE)
def _collapse(cidrs: tuple[str, ...], fam: Literal["ipv4", "ipv6"]) -> tuple[str, ...]:
    nets = [ip_network(c) for c in cidrs]
    if any(n.version != (4 if fam == "ipv4" else 6) for n in nets):
        raise ValueError(f"{cidrs} are not all {fam}")
    return tuple(str(n) for n in ipaddress.collapse_addresses(nets))  # type: ignore[type-var]


DOCUMENTATION = tuple(
    ipaddress.IPv4Network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
)


# Ranges without a unicast host address a store could use, as a LAN or as a public IP.
NOT_UNICAST = tuple(
    (ipaddress.IPv4Network(n), name)
    for n, name in (
        ("0.0.0.0/8", "'this network'"),  # RFC 1122: only a source while booting
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),  # RFC 3927: never routed, never DHCP-served
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),  # RFC 1112, holds the broadcast 255.255.255.255
    )
)

#: Addresses that only exist behind a NAT: RFC 1918 and carrier-grade NAT (RFC 6598).
BEHIND_NAT = tuple(
    ipaddress.IPv4Network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")  # CGNAT last
)


# NOT_UNICAST by first and last address: compared as integers, a check is a tenth of
# IPv4Network.overlaps' cost (four containment tests a range).
_NOT_UNICAST_BOUNDS = tuple(
    (int(n.network_address), int(n.broadcast_address), n, name) for n, name in NOT_UNICAST
)


def _first_not_unicast(lo: int, hi: int) -> tuple[ipaddress.IPv4Network, str] | None:
    """The first special range holding an address from lo to hi (with its name)."""
    for first, last, net, name in _NOT_UNICAST_BOUNDS:
        if first <= hi and lo <= last:
            return net, name
    return None


def not_unicast(net: ipaddress.IPv4Network) -> tuple[ipaddress.IPv4Network, str] | None:
    """The first special range `net` overlaps (with its name), None if none."""
    return _first_not_unicast(int(net.network_address), int(net.broadcast_address))


def address_not_unicast(ip: ipaddress.IPv4Address) -> tuple[ipaddress.IPv4Network, str] | None:
    """not_unicast() of the address alone (its /32), without building that network."""
    return _first_not_unicast(int(ip), int(ip))


def within_not_unicast(net: ipaddress.IPv4Network) -> tuple[ipaddress.IPv4Network, str] | None:
    """The first special range that holds all of `net` (IPv4Network.subnet_of), if any."""
    lo, hi = int(net.network_address), int(net.broadcast_address)
    for first, last, special, name in _NOT_UNICAST_BOUNDS:
        if first <= lo and hi <= last:
            return special, name
    return None
