"""Constrained scalar types shared by the spec and the catalog.

Every string that can reach a rendered file is constrained here, so no user value can
add a line, a quote or a directive to any output.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints
from pydantic_core import PydanticCustomError

from generator import netparse

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
HOSTNAME_RE = re.compile(rf"^{_LABEL}$")
FQDN_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})+$")
WILDCARD_RE = re.compile(rf"^(\*\.)?(?=.{{1,253}}$){_LABEL}(\.{_LABEL})+$")
MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
SECRET_RE = re.compile(r"^(env|vault|file):[A-Za-z0-9_./-]{1,200}$")


def _bad(message: str, expected: str) -> PydanticCustomError:
    """A value error that carries its own 'expected' hint to the diagnostic.

    Messages never contain the value: it may be a secret typed in the wrong place.
    """
    return PydanticCustomError("posnet_value", message, {"expected": expected})


def _text_only(value: object) -> object:
    """IPs and names must be written as text: YAML would turn 010 or 1e3 into numbers."""
    if isinstance(value, bool | int | float):
        raise _bad("must be written as text (quote it)", "text in quotes")
    return value


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _hostname(value: str) -> str:
    # fullmatch, not match: with match, '$' also matches before a trailing newline.
    if not HOSTNAME_RE.fullmatch(value):
        raise _bad(
            "is not a valid host name",
            "an RFC 1123 label: a-z, 0-9 and '-', 1-63 characters, not starting or ending with '-'",
        )
    return value


def _fqdn(value: str) -> str:
    if not FQDN_RE.fullmatch(value):
        raise _bad(
            "is not a valid fully qualified domain name",
            "labels of a-z, 0-9 and '-' joined by dots, e.g. store-01.pos.example.com",
        )
    return value


def _domain_pattern(value: str) -> str:
    if not WILDCARD_RE.fullmatch(value):
        raise _bad(
            "is not a domain name or a *.domain wildcard", "api.example.com or *.example.com"
        )
    return value


def _mac(value: str) -> str:
    v = value.replace("-", ":")
    if not MAC_RE.fullmatch(v):
        raise _bad("is not a MAC address", "six hex pairs like 52:54:00:12:34:56")
    # No network card sends from a group (multicast, broadcast) or all-zero address, so
    # a DHCP reservation for one never matches and the host silently gets a pool address.
    if int(v[:2], 16) & 1 or v == "00:00:00:00:00:00":
        raise _bad(
            "is a multicast, broadcast or all-zero MAC address, which no network card has",
            "the card's own MAC (first byte even), like 52:54:00:12:34:56",
        )
    return v


def _ipv4(value: str) -> str:
    if "/" in value:
        raise _bad(
            "is a network, but a single address is expected here", "an address like 192.0.2.10"
        )
    try:
        return str(netparse.ipv4_address(value))
    except ValueError:
        raise _bad("is not an IPv4 address", "an address like 192.0.2.10") from None


def _network(value: str) -> str:
    try:
        return str(netparse.ipv4_network(value))
    except ValueError as exc:
        if "host bits set" in str(exc):
            raise _bad("has host bits set", "the network address, e.g. 198.51.100.0/24") from None
        raise _bad("is not an IPv4 network", "a network like 198.51.100.0/24") from None


def _source(value: str) -> str:
    """A partner source: one address or a network, of unicast addresses: a packet never
    comes from a loopback, multicast, broadcast or 'this network' address, so such a
    source is a typo that would open the port to no one (or, once fixed by hand, to
    someone else). A wider network that merely overlaps one (0.0.0.0/0) is linted."""
    cidr = _network(value) if "/" in value else _ipv4(value) + "/32"
    hit = netparse.within_not_unicast(netparse.ipv4_network(cidr))
    if hit is not None:
        raise _bad(
            f"is within the {hit[1]} range {hit[0]}: no connection comes from there",
            "a unicast address or network, e.g. 198.51.100.0/28",
        )
    return cidr


def _secret(value: str) -> str:
    if not SECRET_RE.fullmatch(value):
        # Never echo the value: it may be the secret itself, typed in the wrong place.
        raise _bad(
            "must be a secret reference; literal secrets are not allowed in specs",
            "env:NAME, vault:name or file:path",
        )
    ref = value.partition(":")[2]
    if ref.startswith("/") or ".." in ref.split("/"):
        # Caught here, not at apply time: `file:/etc/shadow` or `vault:../../x` would
        # make apply read whatever the control node holds there.
        raise _bad(
            "is a secret reference that is absolute or climbs out of its folder ('..')",
            "a relative name below the secrets folder, e.g. file:certs/store.pem",
        )
    return value


_pre = BeforeValidator(_text_only)
Str = Annotated[str, _pre]
Hostname = Annotated[str, _pre, BeforeValidator(_lower), AfterValidator(_hostname)]
Fqdn = Annotated[str, _pre, BeforeValidator(_lower), AfterValidator(_fqdn)]
DomainPattern = Annotated[str, _pre, BeforeValidator(_lower), AfterValidator(_domain_pattern)]
Mac = Annotated[str, _pre, BeforeValidator(_lower), AfterValidator(_mac)]
IPv4 = Annotated[str, _pre, AfterValidator(_ipv4)]
Network = Annotated[str, _pre, AfterValidator(_network)]
Source = Annotated[str, _pre, AfterValidator(_source)]
SecretRef = Annotated[str, _pre, AfterValidator(_secret)]
Port = Annotated[int, Field(ge=1, le=65535, strict=True)]
# Free text that may appear in comments and the handover sheet: one line, no markup.
Text = Annotated[
    str,
    _pre,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=120, pattern=r"^[\w .,:()/'+@#-]+$"
    ),
]
Ident = Annotated[str, _pre, StringConstraints(pattern=r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$")]
InterfaceName = Annotated[str, _pre, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,15}$")]


def _url_path(value: str) -> str:
    """nginx, Apache and the probe's HTTP client normalise a request's path before using
    it (merged slashes, '.' and '..' resolved), so a route at /../, /./ or // was never
    matched by any request, and a health path like that asked for another one."""
    if "//" in value or any(seg in (".", "..") for seg in value.split("/")):
        raise _bad(
            "has an empty, '.' or '..' segment: servers normalise a request's path first, "
            "so no request ever has this one",
            "a URL path like /pos1/ (segments of A-Z a-z 0-9 . _ ~ -, not . or ..)",
        )
    return value


UrlPath = Annotated[
    str, _pre, StringConstraints(pattern=r"^/[A-Za-z0-9._~/-]{0,200}$"), AfterValidator(_url_path)
]
Guid = Annotated[
    str,
    _pre,
    BeforeValidator(_lower),
    StringConstraints(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"),
]
Thumbprint = Annotated[
    str, _pre, BeforeValidator(_lower), StringConstraints(pattern=r"^[0-9a-f]{40}$")
]
Note = Annotated[
    str,
    _pre,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[\w .,:;()/'+@#-]+$"
    ),
]
ProfileName = Annotated[str, _pre, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
