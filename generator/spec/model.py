"""The site spec: what an MSP writes per store, merged fleet -> group -> site.

Unknown keys are errors everywhere (a typo must never be silently ignored).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from generator.spec.types import (
    Fqdn,
    Guid,
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
    Thumbprint,
    UrlPath,
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
ServiceRef = Annotated[
    str,
    StringConstraints(
        pattern=r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?/[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$"
    ),
]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


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


class Ddns(Model):
    provider: Literal["noip", "dyndns", "duckdns", "freedns", "cloudflare"]
    client: Literal["inadyn", "ddclient"] = "inadyn"
    hostname: Fqdn | None = Field(None, description="Defaults to wan.fqdn")
    username: Text
    password: SecretRef
    zone: Fqdn | None = Field(None, description="Cloudflare zone (cloudflare only)")


class Wan(Model):
    isp: Text
    ip_mode: Literal["static", "dynamic"]
    public_ip: IPv4 | None = None
    fqdn: Fqdn | None = None
    interface: InterfaceName = "wan0"
    ddns: Ddns | None = None


class DhcpPool(Model):
    start: IPv4
    end: IPv4


class Lan(Model):
    subnet: Network
    gateway: IPv4
    interface: InterfaceName = "br-lan"
    dhcp_pool: DhcpPool | None = None
    domain: Fqdn | None = None


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


class TlsSpec(Model):
    certificate: SecretRef = Field(description="Reference to the PEM chain (resolved at apply)")
    key: SecretRef
    openssl: Literal["3.0", "3.5"] = Field(
        "3.0", description="OpenSSL on the proxy host: 3.0 (Debian 12) lacks X25519MLKEM768"
    )
    trusted: bool = Field(True, description="False for a self-signed certificate")


class ProxyAuth(Model):
    type: Literal["none", "basic", "client_cert"] = "basic"
    htpasswd: SecretRef | None = None
    client_ca: SecretRef | None = None


class ProxyRoute(Model):
    service: ServiceRef | None = Field(None, description="host/service in this store")
    site: Hostname | None = Field(None, description="another store (central proxy)")
    site_service: ServiceRef | None = Field(None, description="host/service in that store")
    subdomain: Hostname | None = None
    path: UrlPath | None = None


class DirectIntegration(Model):
    pattern: Literal["direct"]
    partner: Ident
    service: ServiceRef
    public_port: Port
    sources: list[Source] | None = Field(None, description="Override the catalog's source IPs")


class ReverseProxyIntegration(Model):
    pattern: Literal["reverse_proxy"]
    partner: Ident
    proxy_host: Hostname
    software: Literal["nginx", "apache"] = "nginx"
    listen_port: Port = 8443
    public_port: Port | None = Field(None, description="None: a LAN-only proxy, no port forward")
    server_name: Fqdn | None = None
    routing: Literal["subdomain", "path"] = "path"
    auth: ProxyAuth = ProxyAuth()
    tls: TlsSpec
    routes: list[ProxyRoute] = Field(min_length=1)
    sources: list[Source] | None = None


class TunnelIntegration(Model):
    pattern: Literal["tunnel"]
    partner: Ident
    service: ServiceRef
    token: SecretRef


class OutboundOnlyIntegration(Model):
    pattern: Literal["outbound_only"]
    partner: Ident
    hosts: list[Hostname] = Field(min_length=1)
    extra_domains: list[Annotated[str, StringConstraints(max_length=253)]] = Field(
        default_factory=list
    )
    ssl_inspection: bool = Field(False, description="The store inspects TLS: render exemptions")
    lan_http_port: Port | None = Field(None, description="Signed local HTTP between POS devices")


class CloudConnectorIntegration(Model):
    pattern: Literal["cloud_connector"]
    partner: Ident
    environment: Ident = "qa"
    domain: Ident = Field(description="{your-domain} from onboarding")
    pos_host: Hostname
    devices: list[Hostname] = Field(min_length=1)
    client_id: Text
    client_secret: SecretRef
    ssl_profile_crt: Annotated[str, StringConstraints(pattern=r"^/[A-Za-z0-9._/-]{1,200}$")] = (
        "/HOST/INGETRUST.pem"
    )
    local_fallback_port: Port | None = Field(None, description="Device server port when offline")


class WindowsHttpsIntegration(Model):
    pattern: Literal["windows_https"]
    partner: Ident
    host: Hostname
    port: Port | None = Field(None, description="Defaults to the catalog's port (10101)")
    appid: Guid | None = None
    thumbprint: Thumbprint
    clients: list[Hostname] = Field(min_length=1)
    maintenance_window: Text


class AuthWebsocketIntegration(Model):
    pattern: Literal["auth_websocket"]
    partner: Ident
    proxy_host: Hostname
    public_port: Port
    server_name: Fqdn
    websocket_service: ServiceRef
    auth_service: ServiceRef
    provider_outlet_id: Text
    pos_remote_id: Text
    auth_secret: SecretRef
    tls: TlsSpec
    sources: list[Source] | None = None


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
