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
How a proxy's routes become virtual servers, and the guards on Plan values, live in
generator.targets.proxy_layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from generator import netparse

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


def upstream_tls(
    host: str,
    lan_subnet: str,
    trust: Literal["public", "ca", "pinned"] = "public",
    trust_path: str | None = None,
) -> UpstreamTls:
    if trust != "public" and trust_path is not None:
        what = (
            "chain to the store's own CA"
            if trust == "ca"
            else "be exactly the pinned self-signed certificate"
        )
        return UpstreamTls(
            verify=True,
            name=host,
            ca_bundle=trust_path,
            depth=UPSTREAM_VERIFY_DEPTH,
            reason=(
                f"Upstream {host}: the certificate must {what}",
                f"({trust_path}) and match the name; the name is sent as SNI.",
            ),
        )
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


# Moved to proxy_layout; still importable from here for existing callers.
_MOVED = frozenset(
    {
        "Route",
        "VirtualServer",
        "layout",
        "check_proxy",
        "check_hostname",
        "check_url_path",
        "check_file_path",
        "check_ident",
        "check_comment",
    }
)


def __getattr__(name: str) -> object:
    if name in _MOVED:
        from generator.targets import proxy_layout

        return getattr(proxy_layout, name)
    raise AttributeError(name)
