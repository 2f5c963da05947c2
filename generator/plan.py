"""The Plan: vendor-neutral intent for one store. Every target, lint rule and
expectation reads this, never the raw spec.

All collections are tuples in a stable order so that rendering is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from generator.memo import last_object

Proto = Literal["tcp", "udp"]


# What a secret is for: lint and handover match these, never purpose strings.
SecretKind = Literal[
    "certificate",
    "private-key",
    "htpasswd",
    "basic-auth-password",
    "client-ca",
    "tunnel-token",
    "client-secret",
    "auth-secret",
    "ddns-password",
    "upstream-ca",
]
# Why traffic stays in the LAN.
LanFlowKind = Literal["windows-https", "device-fallback", "local-http"]
# What a device property file configures.
DeviceFileKind = Literal["payment-device", "service-settings"]


@dataclass(frozen=True)
class SecretNeed:
    """A secret the apply step must resolve. `marker` is what rendered files contain."""

    ref: str  # env:NAME | vault:name | file:/path
    marker: str  # e.g. @@POSNET_SECRET_ddns_password@@
    purpose: str
    kind: SecretKind | None = None  # None: built by hand (tests); resolve always sets it


@dataclass(frozen=True)
class HostPlan:
    name: str
    role: str
    os: str
    ip: str
    mac: str | None
    services: tuple[ServicePlan, ...]


@dataclass(frozen=True)
class ServicePlan:
    name: str
    port: int
    protocol: Proto
    tls: bool
    http: bool
    health_path: str


@dataclass(frozen=True)
class WanPlan:
    mode: Literal["static", "dynamic"]
    isp: str
    interface: str
    public_ip: str | None
    fqdn: str | None
    address: str | None = None  # the edge's own WAN address when it is not the public one


@dataclass(frozen=True)
class LanPlan:
    subnet: str
    gateway: str
    interface: str
    prefixlen: int
    netmask: str
    pool_start: str | None
    pool_end: str | None
    domain: str | None
    dns_upstreams: tuple[str, ...] = ()  # empty: the edge's resolv.conf
    dns_servers: tuple[str, ...] = ()  # empty: the edge serves the LAN's DNS

    @property
    def edge_dns(self) -> bool:
        """Whether LAN clients are told to use the edge's resolver."""
        return not self.dns_servers


@dataclass(frozen=True)
class ManagementPlan:
    port: int
    allow_from: tuple[str, ...]  # CIDRs


@dataclass(frozen=True)
class Exposure:
    """A public port forwarded to a LAN host:port, open only to `sources`."""

    id: str
    partner: str
    pattern: str
    public_port: int
    protocol: Proto
    target_host: str
    target_ip: str
    target_port: int
    sources: tuple[str, ...]  # CIDRs; empty = anyone (lint PN103 warns)
    tls: bool
    http: bool
    health_path: str
    integration: int = -1  # index in the site's integrations (locates findings)

    @property
    def open_to_anyone(self) -> bool:
        """No allow-list, or one that adds up to every address (0.0.0.0/0; two /1s)."""
        from generator import netparse

        v4 = [s for s in self.sources if netparse.family(s) == "ipv4"]
        return not self.sources or netparse.collapse(v4, "ipv4") == ("0.0.0.0/0",)


@dataclass(frozen=True)
class EgressFlow:
    """LAN hosts that must reach partner domains (outbound only)."""

    id: str
    partner: str
    purpose: str
    sources: tuple[str, ...]  # host IPs (CIDR /32)
    domains: tuple[str, ...]
    ports: tuple[int, ...]
    protocol: Proto
    ssl_inspection_exempt: bool


@dataclass(frozen=True)
class LanFlow:
    """Traffic that stays in the LAN (Windows back office, device fallback, local HTTP)."""

    id: str
    partner: str
    purpose: str
    sources: tuple[str, ...]  # CIDRs
    dest_ip: str
    port: int
    protocol: Proto
    kind: LanFlowKind | None = None  # None: built by hand; resolve always sets it
    integration: int = -1  # index in the site's integrations


@dataclass(frozen=True)
class TlsPlan:
    cert_ref: str
    key_ref: str
    cert_path: str  # on the proxy host
    key_path: str
    openssl: Literal["3.0", "3.5"]
    trusted: bool
    # OCSP stapling, and the DNS servers nginx asks for the CA's OCSP responder.
    stapling: bool = False
    ocsp_resolvers: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProxyRoutePlan:
    match: Literal["host", "path", "default"]
    value: str  # server name for host match, path prefix (ending in /) for path match
    upstream_scheme: Literal["http", "https"]
    upstream_host: str  # IP or FQDN
    upstream_port: int
    websocket: bool
    label: str  # e.g. pos1/api or site-id/pos1/api
    # How an https upstream's certificate is checked: "public" CAs, a private "ca", a
    # "pinned" self-signed certificate (both deployed from trust_ref to trust_path).
    trust: Literal["public", "ca", "pinned"] = "public"
    trust_ref: str | None = None
    trust_path: str | None = None
    route: int = -1  # index in its integration's routes (locates findings); -1: none


@dataclass(frozen=True)
class ProxyPlan:
    id: str  # e.g. deliverect-proxy
    partner: str
    pattern: Literal["reverse_proxy", "auth_websocket"]
    software: Literal["nginx", "apache"]
    host: str
    host_ip: str
    listen_port: int
    server_names: tuple[str, ...]
    tls: TlsPlan
    auth: Literal["none", "basic", "client_cert"]
    htpasswd_ref: str | None
    htpasswd_path: str | None
    client_ca_ref: str | None
    client_ca_path: str | None
    routes: tuple[ProxyRoutePlan, ...]
    redact_query_params: tuple[str, ...]  # e.g. ("token",): never logged
    auth_path: str | None  # auth_websocket: REST auth endpoint path
    integration: int = -1  # index in the site's integrations (locates findings)
    # DNS servers that resolve upstream host names at request time, and how long an
    # answer is kept (seconds); empty for proxies whose upstreams are all IPs.
    resolvers: tuple[str, ...] = ()
    resolver_valid: int = 30
    # Basic auth from per-user password references: (user, reference); the htpasswd
    # file at htpasswd_path is generated from them at apply (htpasswd_ref is then None).
    basic_users: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class DdnsPlan:
    client: Literal["inadyn", "ddclient"]
    provider: Literal["noip", "dyndns", "duckdns", "freedns", "cloudflare"]
    hostname: str
    username: str
    password: SecretNeed
    zone: str | None
    interface: str
    checkip: CheckIpPlan | None = None  # None: the address is read from `interface`


@dataclass(frozen=True)
class CheckIpPlan:
    """A check-ip web server that answers with the address it sees (behind NAT)."""

    server: str
    port: int | None  # None: the scheme's default
    path: str
    tls: bool

    @property
    def authority(self) -> str:
        return f"{self.server}:{self.port}" if self.port else self.server

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.authority}{self.path}"


@dataclass(frozen=True)
class DhcpReservation:
    name: str
    mac: str
    ip: str


@dataclass(frozen=True)
class WindowsBinding:
    """netsh http urlacl + sslcert for a Windows HTTPS service (one port for both)."""

    id: str
    partner: str
    host: str
    host_ip: str
    port: int
    appid: str
    thumbprint: str
    sddl: str
    client_sources: tuple[str, ...]  # CIDRs allowed by the Windows firewall rule
    maintenance_window: str
    integration: int = -1  # index in the site's integrations (locates findings)
    # Host name the clients use (the certificate carries names, not the LAN address);
    # None when the spec gives neither `name` nor lan.domain.
    name: str | None = None


@dataclass(frozen=True)
class DeviceConfig:
    """Property file for a payment device (cloud connector) or an integrator service's
    settings (auth_websocket)."""

    id: str
    partner: str
    device: str
    properties: tuple[tuple[str, str], ...]  # ordered key/value; values may hold markers
    kind: DeviceFileKind | None = None  # None: built by hand; resolve always sets it
    integration: int = -1  # index in the site's integrations


@dataclass(frozen=True)
class TunnelPlan:
    id: str
    partner: str
    host: str
    host_ip: str
    local_port: int
    token: SecretNeed
    ui_port: int
    domain_suffix: str
    uninstaller: str | None = None  # folder/file of an earlier client's uninstaller
    integration: int = -1  # index in the site's integrations (locates findings)


@dataclass(frozen=True)
class PartnerBrief:
    """What the partner must be told (handover sheet)."""

    partner: str
    title: str
    pattern: str
    endpoints: tuple[str, ...]
    notes: tuple[str, ...]
    integration: int = -1  # index in the site's integrations (-1: any of this partner)
    # URLs the partner hands out at run time whose hosts posnet was not given: restricted
    # egress lets the store reach only the hosts of `endpoints` (lint PN116)
    runtime_urls: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    site_id: str
    site_name: str
    fleet: str
    group: str | None
    wan: WanPlan
    lan: LanPlan
    management: ManagementPlan
    firewall: Literal["nftables", "iptables"]
    egress_policy: Literal["open", "restricted"]
    hosts: tuple[HostPlan, ...]
    exposures: tuple[Exposure, ...] = ()
    egress: tuple[EgressFlow, ...] = ()
    lan_flows: tuple[LanFlow, ...] = ()
    proxies: tuple[ProxyPlan, ...] = ()
    ddns: DdnsPlan | None = None
    dhcp: tuple[DhcpReservation, ...] = ()
    windows: tuple[WindowsBinding, ...] = ()
    devices: tuple[DeviceConfig, ...] = ()
    tunnels: tuple[TunnelPlan, ...] = ()
    briefs: tuple[PartnerBrief, ...] = ()
    secrets: tuple[SecretNeed, ...] = ()
    lint_disable: tuple[str, ...] = field(default=())

    def host(self, name: str) -> HostPlan:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)


@last_object
def _hosts_by_ip(plan: Plan) -> dict[str, HostPlan]:
    index: dict[str, HostPlan] = {}
    for h in plan.hosts:
        index.setdefault(h.ip, h)
    return index


def host_at(plan: Plan, ip: str) -> HostPlan | None:
    """The first of the plan's hosts with address `ip` (canonical text, as the spec's
    validation writes it). The handover sheet and the topology ask for every source of
    every flow: scanning the hosts each time was cubic in a store's size."""
    return _hosts_by_ip(plan).get(ip)
