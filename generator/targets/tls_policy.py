"""TLS policy shared by the reverse-proxy targets (nginx, Apache), kept as data.

Why data and not template text: both servers must offer exactly the same protocols,
ciphers and groups, and a guideline update must be one edit reviewed once. The values
follow Mozilla's "intermediate" configuration, guideline 6.0
(https://ssl-config.mozilla.org/guidelines/6.0.json): TLS 1.2 and 1.3, ECDHE-only AEAD
ciphers for TLS 1.2 (6.0 dropped the DHE suites, so no dhparam file is needed), the
library's default TLS 1.3 suites, client cipher preference, one-day session cache
without tickets, HSTS for two years.

The one thing that depends on the target host is the key-exchange group list: 6.0
puts the hybrid post-quantum group X25519MLKEM768 first, which only OpenSSL >= 3.5
knows. OpenSSL 3.0 (Debian 12) rejects the whole list: `nginx -t` fails, Apache passes
`-t` and then fails to start. So the group list is chosen from `TlsPlan.openssl`.

The second half is the policy for TLS toward upstreams (proxy -> POS), also shared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from generator import netparse
from generator.plan import ProxyPlan, ProxyRoutePlan

MOZILLA_GUIDELINE = "6.0"
MOZILLA_PROFILE = "intermediate"
MOZILLA_URL = "https://ssl-config.mozilla.org/guidelines/6.0.json"

PROTOCOLS: tuple[str, ...] = ("TLSv1.2", "TLSv1.3")
# TLS 1.2 suites in Mozilla's order (OpenSSL names). TLS 1.3 suites stay at the
# OpenSSL defaults, which are exactly Mozilla's list.
CIPHERS_TLS12: tuple[str, ...] = (
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
)
PQ_GROUPS: tuple[str, ...] = ("X25519MLKEM768",)
CLASSIC_GROUPS: tuple[str, ...] = ("X25519", "prime256v1", "secp384r1")
HSTS_MAX_AGE = 63072000  # seconds (two years)
SESSION_TIMEOUT_SECONDS = 86400
SESSION_CACHE_MB = 10  # about 40000 sessions
SESSION_TICKETS = False
SERVER_PREFERRED_ORDER = False

# Debian's bundle of public CAs: what a remote upstream's certificate must chain to.
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
UPSTREAM_VERIFY_DEPTH = 3

OpenSSL = Literal["3.0", "3.5"]


@dataclass(frozen=True)
class TlsPolicy:
    """What a TLS listener offers; one object feeds both templates."""

    guideline: str
    profile: str
    url: str
    openssl: str
    protocols: tuple[str, ...]
    ciphers: tuple[str, ...]
    groups: tuple[str, ...]
    hsts_max_age: int
    session_timeout: int
    session_cache_mb: int
    session_tickets: bool
    server_preferred_order: bool

    @property
    def cipher_string(self) -> str:
        return ":".join(self.ciphers)

    @property
    def group_string(self) -> str:
        return ":".join(self.groups)


def supports_pq_groups(openssl: str) -> bool:
    """OpenSSL learnt ML-KEM hybrids in 3.5; anything older rejects the group name."""
    major, minor = (int(p) for p in openssl.split(".")[:2])
    return (major, minor) >= (3, 5)


def policy_for(openssl: OpenSSL) -> TlsPolicy:
    """Mozilla intermediate for a host whose OpenSSL is `openssl`."""
    groups = (PQ_GROUPS if supports_pq_groups(openssl) else ()) + CLASSIC_GROUPS
    return TlsPolicy(
        guideline=MOZILLA_GUIDELINE,
        profile=MOZILLA_PROFILE,
        url=MOZILLA_URL,
        openssl=openssl,
        protocols=PROTOCOLS,
        ciphers=CIPHERS_TLS12,
        groups=groups,
        hsts_max_age=HSTS_MAX_AGE,
        session_timeout=SESSION_TIMEOUT_SECONDS,
        session_cache_mb=SESSION_CACHE_MB,
        session_tickets=SESSION_TICKETS,
        server_preferred_order=SERVER_PREFERRED_ORDER,
    )


@dataclass(frozen=True)
class UpstreamTls:
    """How the proxy checks an https upstream.

    POS terminals on the store LAN very often serve self-signed certificates, and the
    hop never leaves the LAN, so for an upstream given as an IP inside the store's LAN
    the certificate is not verified (the template says so in a comment). Anything else
    (an FQDN, another store's public address reached by a central proxy) crosses the
    internet: the certificate must chain to the system CA bundle and match the name,
    and the name is sent as SNI.
    """

    verify: bool
    name: str  # expected certificate name, also the SNI
    ca_bundle: str
    depth: int
    reason: tuple[str, ...]  # comment lines for the config


def is_lan_upstream(host: str, lan_subnet: str) -> bool:
    """True for an IP literal inside the store LAN; FQDNs never count as LAN."""
    addr = netparse.ip_address_or_none(host)
    return addr is not None and addr in netparse.ip_network(lan_subnet)


def upstream_tls(host: str, lan_subnet: str) -> UpstreamTls:
    if is_lan_upstream(host, lan_subnet):
        return UpstreamTls(
            verify=False,
            name=host,
            ca_bundle=SYSTEM_CA_BUNDLE,
            depth=UPSTREAM_VERIFY_DEPTH,
            reason=(
                f"LAN upstream {host} (inside {lan_subnet}): POS certificates are usually",
                "self-signed and this hop stays in the store LAN, so it is not verified.",
            ),
        )
    return UpstreamTls(
        verify=True,
        name=host,
        ca_bundle=SYSTEM_CA_BUNDLE,
        depth=UPSTREAM_VERIFY_DEPTH,
        reason=(
            f"Remote upstream {host}: the certificate must chain to the system CA",
            "bundle and match the name; the name is sent as SNI.",
        ),
    )


# Guards: Plan values are already constrained by the spec, but a template must never
# be the place where a stray quote, brace or newline turns into a directive.
_HOSTNAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})$")
_URL_PATH = re.compile(r"^/[A-Za-z0-9._~/-]*$")
_FILE_PATH = re.compile(r"^/[A-Za-z0-9._/-]+$")
_IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_COMMENT = re.compile(r"^[A-Za-z0-9 ._/:@-]*$")  # text that goes into a # comment


def _check(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not pattern.fullmatch(value):
        raise ValueError(f"unsafe {what} for a proxy config: {value!r}")
    return value


def check_hostname(value: str) -> str:
    return _check(_HOSTNAME, value, "host name")


def check_url_path(value: str) -> str:
    return _check(_URL_PATH, value, "URL path")


def check_file_path(value: str) -> str:
    return _check(_FILE_PATH, value, "file path")


def check_ident(value: str) -> str:
    return _check(_IDENT, value, "identifier")


def check_comment(value: str) -> str:
    return _check(_COMMENT, value, "comment text")


def check_proxy(proxy: ProxyPlan) -> None:
    """Every ProxyPlan value a template prints outside the routes."""
    check_ident(proxy.id)
    check_ident(proxy.partner)
    check_ident(proxy.pattern)
    for name in proxy.server_names:
        check_hostname(name)
    for param in proxy.redact_query_params:
        check_ident(param)
    check_file_path(proxy.tls.cert_path)
    check_file_path(proxy.tls.key_path)
    if proxy.auth == "basic":
        check_file_path(proxy.htpasswd_path or "")
    if proxy.auth == "client_cert":
        check_file_path(proxy.client_ca_path or "")


# Proxy layout: which virtual servers and routes a ProxyPlan becomes. Shared so that
# nginx and Apache expose exactly the same names and paths.


@dataclass(frozen=True)
class Route:
    """One route as both servers need it.

    kind "prefix": value ends in "/", the prefix is stripped toward the upstream
    (`/pos1/x` -> `/x`); kind "exact": a single endpoint (the co-hosted auth path),
    forwarded with its path unchanged because the upstream serves it there;
    kind "default": everything else on that server name.
    """

    kind: Literal["exact", "prefix", "default"]
    path: str
    origin: str  # scheme://host:port
    websocket: bool
    tls: UpstreamTls | None  # None for plain http upstreams
    label: str


@dataclass(frozen=True)
class VirtualServer:
    name: str
    routes: tuple[Route, ...]  # exact first, then longest prefix, default last

    @property
    def has_default(self) -> bool:
        return any(r.kind == "default" for r in self.routes)

    @property
    def needs_upstream_tls(self) -> bool:
        return any(r.tls is not None for r in self.routes)


def _route(
    kind: Literal["exact", "prefix", "default"], path: str, r: ProxyRoutePlan, lan_subnet: str
) -> Route:
    check_hostname(r.upstream_host)
    check_url_path(path)
    check_comment(r.label)
    return Route(
        kind=kind,
        path=path,
        origin=f"{r.upstream_scheme}://{r.upstream_host}:{int(r.upstream_port)}",
        websocket=r.websocket,
        tls=upstream_tls(r.upstream_host, lan_subnet) if r.upstream_scheme == "https" else None,
        label=r.label,
    )


def _order(routes: list[Route]) -> tuple[Route, ...]:
    rank = {"exact": 0, "prefix": 1, "default": 2}
    return tuple(sorted(routes, key=lambda r: (rank[r.kind], -len(r.path), r.path)))


def layout(proxy: ProxyPlan, lan_subnet: str) -> tuple[VirtualServer, ...]:
    """Group routes into virtual servers: path/default routes on the first server name,
    one server per host route. Names without routes get no server: the catch-all
    answers them with 404 like any unknown host."""
    main = check_hostname(proxy.server_names[0])
    by_name: dict[str, list[Route]] = {}
    for r in proxy.routes:
        if r.match == "host":
            name = check_hostname(r.value)
            if name in by_name:
                raise ValueError(f"two routes for host {name}")
            by_name[name] = [_route("default", "/", r, lan_subnet)]
            continue
        kind: Literal["exact", "prefix", "default"]
        if r.match == "default" or r.value == "/":
            kind = "default"
        else:
            kind = "prefix" if r.value.endswith("/") else "exact"
        path = "/" if kind == "default" else r.value
        group = by_name.setdefault(main, [])
        if any(x.path == path for x in group):
            raise ValueError(f"two routes for path {path} on {main}")
        group.append(_route(kind, path, r, lan_subnet))
    return tuple(VirtualServer(name, _order(rs)) for name, rs in by_name.items())
