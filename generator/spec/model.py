"""The site spec: what an MSP writes per store, merged fleet -> group -> site.

Unknown keys are errors everywhere (a typo must never be silently ignored).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from generator.patterns.auth_websocket import AuthWebsocketIntegration
from generator.patterns.cloud_connector import CloudConnectorIntegration
from generator.patterns.direct import DirectIntegration
from generator.patterns.outbound_only import OutboundOnlyIntegration
from generator.patterns.reverse_proxy import ReverseProxyIntegration
from generator.patterns.tunnel import TunnelIntegration
from generator.patterns.windows_https import WindowsHttpsIntegration
from generator.spec.parts import Model, ProxyAuth, ProxyRoute, ServiceRef, TlsSpec
from generator.spec.types import (
    Fqdn,
    Hostname,
    Ident,
    InterfaceName,
    IPv4,
    Mac,
    Network,
    Port,
    SecretRef,
    Source,
    Text,
    UrlPath,
)

# The integration models live with their patterns (generator/patterns/<name>.py) and
# the shared parts in generator.spec.parts; both stay importable from here.
__all__ = [
    "AuthWebsocketIntegration",
    "CheckIp",
    "Ddns",
    "DhcpPool",
    "DirectIntegration",
    "Edge",
    "Host",
    "Integration",
    "Lan",
    "LanDns",
    "LintConfig",
    "Management",
    "Model",
    "OutboundOnlyIntegration",
    "PatternName",
    "ProxyAuth",
    "ProxyRoute",
    "ReverseProxyIntegration",
    "Service",
    "ServiceRef",
    "Site",
    "TlsSpec",
    "TunnelIntegration",
    "Wan",
    "WindowsHttpsIntegration",
]


def _hash_lists(model: Model) -> int:
    """A frozen model's hash, its list fields hashed as tuples. pydantic deep-copies a
    default it cannot hash into every model it validates: Lan.dns and Site.lint cost 20
    of a store's 85 us of validation. A hashable default is shared instead, which is
    safe as nothing mutates these lists (the models are frozen)."""
    return hash(
        (type(model), *(tuple(v) if isinstance(v, list) else v for v in model.__dict__.values()))
    )


PatternName = Literal[
    "direct",
    "reverse_proxy",
    "tunnel",
    "outbound_only",
    "cloud_connector",
    "windows_https",
    "auth_websocket",
]


class Service(Model):
    """A port a host listens on."""

    name: Ident
    port: Port
    protocol: Literal["tcp", "udp"] = "tcp"
    tls: bool = False
    http: bool = True
    health_path: UrlPath = "/"


class Host(Model):
    name: Hostname
    role: Literal["pos", "backoffice", "proxy", "payment_terminal", "server", "kiosk", "other"]
    os: Literal["windows", "linux", "other"] = "linux"
    ip: IPv4
    mac: Mac | None = None
    services: list[Service] = Field(default_factory=list)


class CheckIp(Model):
    """A check-ip web server: answers with the address a request comes from."""

    server: Fqdn = Field(description="Name (or IPv4 address) of the check-ip server")
    port: Port | None = Field(None, description="Defaults to 443 (tls) or 80")
    path: UrlPath = "/"
    tls: bool = Field(True, description="HTTPS; false lets anyone on the path pick the address")


class Ddns(Model):
    provider: Literal["noip", "dyndns", "duckdns", "freedns", "cloudflare"]
    client: Literal["inadyn", "ddclient"] = "inadyn"
    hostname: Fqdn | None = Field(None, description="Defaults to wan.fqdn")
    username: Text | None = None
    password: SecretRef
    zone: Fqdn | None = Field(None, description="Cloudflare zone (cloudflare only)")
    detect: Literal["interface", "web"] = Field(
        "interface",
        description=(
            "How the client learns the public address: from wan.interface, or (behind an "
            "ISP router or carrier NAT) from a check-ip web server"
        ),
    )
    checkip: CheckIp | None = Field(
        None, description="With detect: web; default https://api.ipify.org/"
    )


class Wan(Model):
    isp: Text
    ip_mode: Literal["static", "dynamic"]
    public_ip: IPv4 | None = None
    fqdn: Fqdn | None = None
    interface: InterfaceName = "wan0"
    address: IPv4 | None = Field(
        None,
        description=(
            "The edge's own address on wan.interface when it is not the public one "
            "(behind an ISP router or carrier NAT)"
        ),
    )
    ddns: Ddns | None = None


class DhcpPool(Model):
    start: IPv4
    end: IPv4


class LanDns(Model):
    """Who answers the LAN's DNS: the edge (default) or servers the store names."""

    def __hash__(self) -> int:
        return _hash_lists(self)

    upstreams: list[IPv4] = Field(
        default_factory=list,
        description="Where the edge's resolver forwards; empty: the edge's own resolv.conf",
    )
    servers: list[IPv4] = Field(
        default_factory=list,
        description=(
            "DNS servers DHCP announces instead of the edge (the edge then serves no DNS "
            "and cannot enforce egress by domain)"
        ),
    )


class Lan(Model):
    subnet: Network
    gateway: IPv4
    interface: InterfaceName = "br-lan"
    dhcp_pool: DhcpPool | None = None
    domain: Fqdn | None = None
    dns: LanDns = LanDns()


class Management(Model):
    """How the MSP reaches the edge; every ruleset keeps this open."""

    allow_from: list[Source] = Field(min_length=1)
    port: Port = 22


class Edge(Model):
    kind: Literal["nftables", "iptables"] = "nftables"
    management: Management
    egress: Literal["open", "restricted"] = Field(
        "open",
        description="open: LAN may reach the internet; restricted: only partner egress",
    )


Integration = Annotated[
    DirectIntegration
    | ReverseProxyIntegration
    | TunnelIntegration
    | OutboundOnlyIntegration
    | CloudConnectorIntegration
    | WindowsHttpsIntegration
    | AuthWebsocketIntegration,
    Field(discriminator="pattern"),
]


class LintConfig(Model):
    def __hash__(self) -> int:
        return _hash_lists(self)

    disable: list[Annotated[str, StringConstraints(pattern=r"^PN\d{3}$")]] = Field(
        default_factory=list
    )


class Site(Model):
    """One store."""

    id: Hostname
    name: Text
    group: Ident | None = None
    wan: Wan
    lan: Lan
    edge: Edge
    hosts: list[Host] = Field(default_factory=list)
    integrations: list[Integration] = Field(default_factory=list)
    lint: LintConfig = LintConfig()
