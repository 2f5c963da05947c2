"""Resolve a validated Site against the partner catalog into a Plan."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

from generator.catalog import Catalog, Partner
from generator.plan import (
    DdnsPlan,
    DeviceConfig,
    DhcpReservation,
    EgressFlow,
    Exposure,
    HostPlan,
    LanFlow,
    LanPlan,
    ManagementPlan,
    PartnerBrief,
    Plan,
    ProxyPlan,
    ProxyRoutePlan,
    SecretNeed,
    ServicePlan,
    TlsPlan,
    TunnelPlan,
    WanPlan,
    WindowsBinding,
)
from generator.spec.model import (
    AuthWebsocketIntegration,
    CloudConnectorIntegration,
    DirectIntegration,
    OutboundOnlyIntegration,
    ReverseProxyIntegration,
    Site,
    TlsSpec,
    TunnelIntegration,
    WindowsHttpsIntegration,
)

# Language-neutral equivalent of `user=EVERYONE` (WD = World): works on any Windows locale.
EVERYONE_SDDL = "D:(A;;GX;;;WD)"
TLS_DIR = "/etc/posnet/tls"


def secret(ref: str, purpose: str) -> SecretNeed:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", ref).strip("_")
    return SecretNeed(ref=ref, marker=f"@@POSNET_SECRET_{slug}@@", purpose=purpose)


class _Resolver:
    def __init__(self, site: Site, catalog: Catalog, fleet: Mapping[str, Site]) -> None:
        self.site = site
        self.catalog = catalog
        self.fleet = fleet
        self.hosts = {h.name: h for h in site.hosts}
        self.secrets: dict[str, SecretNeed] = {}
        self.exposures: list[Exposure] = []
        self.egress: list[EgressFlow] = []
        self.lan_flows: list[LanFlow] = []
        self.proxies: list[ProxyPlan] = []
        self.windows: list[WindowsBinding] = []
        self.devices: list[DeviceConfig] = []
        self.tunnels: list[TunnelPlan] = []
        self.briefs: list[PartnerBrief] = []
        self.index = -1

    def need(self, ref: str, purpose: str) -> SecretNeed:
        s = self.secrets.get(ref) or secret(ref, purpose)
        self.secrets.setdefault(ref, s)
        return s

    def service(self, ref: str) -> tuple[HostPlan, ServicePlan]:
        host_name, _, svc_name = ref.partition("/")
        host = self.host_plan(host_name)
        return host, next(s for s in host.services if s.name == svc_name)

    def host_plan(self, name: str) -> HostPlan:
        h = self.hosts[name]
        return HostPlan(
            name=h.name,
            role=h.role,
            os=h.os,
            ip=h.ip,
            mac=h.mac,
            services=tuple(
                ServicePlan(s.name, s.port, s.protocol, s.tls, s.http, s.health_path)
                for s in h.services
            ),
        )

    def public_name(self) -> str:
        w = self.site.wan
        return (
            w.fqdn or (w.ddns.hostname if w.ddns and w.ddns.hostname else None) or str(w.public_ip)
        )

    # ------------------------------------------------------------------ patterns

    def direct(self, i: DirectIntegration, p: Partner) -> None:
        host, svc = self.service(i.service)
        sources = tuple(i.sources if i.sources is not None else p.sources)
        self.exposures.append(
            Exposure(
                integration=self.index,
                id=f"{i.partner}-{host.name}-{svc.name}",
                partner=i.partner,
                pattern=i.pattern,
                public_port=i.public_port,
                protocol=svc.protocol,
                target_host=host.name,
                target_ip=host.ip,
                target_port=svc.port,
                sources=sources,
                tls=svc.tls,
                http=svc.http,
                health_path=svc.health_path,
            )
        )
        scheme = "https" if svc.tls else "http"
        endpoint = f"{self.public_name()}:{i.public_port}"
        self.brief(i.partner, p, i.pattern, [f"{scheme}://{endpoint}/" if svc.http else endpoint])

    def tls(self, proxy_id: str, t: TlsSpec) -> TlsPlan:
        self.need(t.certificate, f"{proxy_id} certificate chain")
        self.need(t.key, f"{proxy_id} private key")
        return TlsPlan(
            cert_ref=t.certificate,
            key_ref=t.key,
            cert_path=f"{TLS_DIR}/{proxy_id}.crt",
            key_path=f"{TLS_DIR}/{proxy_id}.key",
            openssl=t.openssl,
            trusted=t.trusted,
        )

    def reverse_proxy(self, i: ReverseProxyIntegration, p: Partner) -> None:
        proxy = self.host_plan(i.proxy_host)
        pid = f"{i.partner}-proxy"
        server_name = i.server_name or self.public_name()
        routes: list[ProxyRoutePlan] = []
        names = [server_name]
        for r in i.routes:
            if r.service is not None:
                host, svc = self.service(r.service)
                up_host, up_port, up_tls, label = host.ip, svc.port, svc.tls, r.service
            else:
                assert r.site is not None and r.site_service is not None
                other = self.fleet[r.site]
                up_host = other.wan.fqdn or str(other.wan.public_ip)
                up_port, up_tls = _remote_port(other, r.site_service)
                label = f"{r.site}/{r.site_service}"
            if i.routing == "subdomain":
                assert r.subdomain is not None
                value = f"{r.subdomain}.{server_name}"
                names.append(value)
                match = "host"
            else:
                assert r.path is not None
                value = r.path if r.path.endswith("/") else r.path + "/"
                match = "path"
            routes.append(
                ProxyRoutePlan(
                    match=match,  # type: ignore[arg-type]
                    value=value,
                    upstream_scheme="https" if up_tls else "http",
                    upstream_host=up_host,
                    upstream_port=up_port,
                    websocket=False,
                    label=label,
                )
            )
        auth = i.auth
        if auth.htpasswd:
            self.need(auth.htpasswd, f"{pid} htpasswd file")
        if auth.client_ca:
            self.need(auth.client_ca, f"{pid} client CA bundle")
        self.proxies.append(
            ProxyPlan(
                integration=self.index,
                id=pid,
                partner=i.partner,
                pattern="reverse_proxy",
                software=i.software,
                host=proxy.name,
                host_ip=proxy.ip,
                listen_port=i.listen_port,
                server_names=tuple(names),
                tls=self.tls(pid, i.tls),
                auth=auth.type,
                htpasswd_ref=auth.htpasswd if auth.type == "basic" else None,
                htpasswd_path=f"/etc/posnet/{pid}.htpasswd" if auth.type == "basic" else None,
                client_ca_ref=auth.client_ca if auth.type == "client_cert" else None,
                client_ca_path=f"{TLS_DIR}/{pid}-client-ca.pem"
                if auth.type == "client_cert"
                else None,
                routes=tuple(sorted(routes, key=lambda r: (r.match, r.value))),
                redact_query_params=(),
                auth_path=None,
            )
        )
        endpoints: list[str] = []
        if i.public_port is not None:
            self.exposures.append(
                Exposure(
                    integration=self.index,
                    id=pid,
                    partner=i.partner,
                    pattern=i.pattern,
                    public_port=i.public_port,
                    protocol="tcp",
                    target_host=proxy.name,
                    target_ip=proxy.ip,
                    target_port=i.listen_port,
                    sources=tuple(i.sources if i.sources is not None else p.sources),
                    tls=True,
                    http=True,
                    health_path="/",
                )
            )
            for rp in routes:
                if rp.match == "host":
                    endpoints.append(f"https://{rp.value}:{i.public_port}/ -> {rp.label}")
                else:
                    endpoints.append(
                        f"https://{server_name}:{i.public_port}{rp.value} -> {rp.label}"
                    )
        self.brief(i.partner, p, i.pattern, endpoints)

    def tunnel(self, i: TunnelIntegration, p: Partner) -> None:
        host, svc = self.service(i.service)
        token = self.need(i.token, f"{i.partner} tunnel token")
        suffix = p.tunnel_domain_suffix or "tunnel.invalid"
        self.tunnels.append(
            TunnelPlan(
                integration=self.index,
                id=f"{i.partner}-tunnel",
                partner=i.partner,
                host=host.name,
                host_ip=host.ip,
                local_port=svc.port,
                token=token,
                ui_port=p.tunnel_ui_port or 4040,
                domain_suffix=suffix,
            )
        )
        self.add_egress(f"{i.partner}-tunnel", i.partner, p, (host.ip,), ())
        self.brief(i.partner, p, i.pattern, [f"https://DOMAIN-SHOWN-BY-INSTALLER.{suffix}"])

    def add_egress(
        self,
        fid: str,
        partner: str,
        p: Partner,
        ips: tuple[str, ...],
        extra: tuple[str, ...],
        exempt: bool | None = None,
    ) -> None:
        sources = tuple(sorted({f"{ip}/32" for ip in ips}, key=_ipkey))
        for n, e in enumerate(p.egress):
            doms = tuple(sorted(set(e.domains) | (set(extra) if n == 0 else set())))
            self.egress.append(
                EgressFlow(
                    id=f"{fid}-{n + 1}" if len(p.egress) > 1 else fid,
                    partner=partner,
                    purpose=e.purpose,
                    sources=sources,
                    domains=doms,
                    ports=tuple(sorted(set(e.ports))),
                    protocol=e.protocol,
                    ssl_inspection_exempt=e.ssl_inspection_exempt if exempt is None else exempt,
                )
            )
        if not p.egress and extra:
            self.egress.append(
                EgressFlow(
                    fid,
                    partner,
                    "extra domains",
                    sources,
                    tuple(sorted(set(extra))),
                    (443,),
                    "tcp",
                    bool(exempt),
                )
            )

    def outbound_only(self, i: OutboundOnlyIntegration, p: Partner) -> None:
        ips = tuple(self.hosts[h].ip for h in i.hosts)
        self.add_egress(
            f"{i.partner}-outbound", i.partner, p, ips, tuple(d.lower() for d in i.extra_domains)
        )
        if i.lan_http_port is not None:
            for h in sorted(i.hosts):
                others = tuple(
                    sorted({f"{self.hosts[o].ip}/32" for o in i.hosts if o != h}, key=_ipkey)
                )
                if others:
                    self.lan_flows.append(
                        LanFlow(
                            f"{i.partner}-local-{h}",
                            i.partner,
                            "signed local HTTP between POS components",
                            others,
                            self.hosts[h].ip,
                            i.lan_http_port,
                            "tcp",
                        )
                    )
        doms = sorted({d for e in self.egress if e.partner == i.partner for d in e.domains})
        self.brief(i.partner, p, i.pattern, [f"outbound tcp/443 to {d}" for d in doms])

    def cloud_connector(self, i: CloudConnectorIntegration, p: Partner) -> None:
        env = p.environments[i.environment]
        pos = self.hosts[i.pos_host]
        ips = (pos.ip, *(self.hosts[d].ip for d in i.devices))
        sources = tuple(sorted({f"{ip}/32" for ip in ips}, key=_ipkey))
        self.egress.append(
            EgressFlow(
                id=f"{i.partner}-cloud-connector",
                partner=i.partner,
                purpose=f"{p.title} websockets and OAuth2 ({i.environment})",
                sources=sources,
                domains=tuple(sorted({env.api_host, env.auth_host})),
                ports=(443,),
                protocol="tcp",
                ssl_inspection_exempt=True,
            )
        )
        secret_need = self.need(i.client_secret, f"{i.partner} client secret")
        dev_path = p.device_listener_path or "/cloud-connector/v1/device-listener"
        pos_path = p.pos_listener_path or "/cloud-connector/v1/pos-listener"
        token_path = (p.token_path_template or "/oauth2/v1/DOMAIN/token").replace(
            "DOMAIN", i.domain
        )
        for d in sorted(i.devices):
            props = (
                (
                    "custom_registration_data",
                    '{"client_id":"'
                    + i.client_id
                    + '","client_secret":"'
                    + secret_need.marker
                    + '"}',
                ),
                ("ep_register_url", f"wss://{env.api_host}{dev_path}"),
                ("enable_ssl", "1"),
                ("ssl_profile_name", p.ssl_profile_name or "INGETRUST"),
                ("ssl_profile_crt", i.ssl_profile_crt),
            )
            self.devices.append(DeviceConfig(f"{i.partner}-{d}", i.partner, d, props))
            if i.local_fallback_port is not None:
                self.lan_flows.append(
                    LanFlow(
                        f"{i.partner}-fallback-{d}",
                        i.partner,
                        "local fallback when the cloud is unreachable",
                        (f"{pos.ip}/32",),
                        self.hosts[d].ip,
                        i.local_fallback_port,
                        "tcp",
                    )
                )
        self.brief(
            i.partner,
            p,
            i.pattern,
            [
                f"POST https://{env.auth_host}{token_path}",
                f"wss://{env.api_host}{pos_path}",
                f"wss://{env.api_host}{dev_path}",
            ],
        )

    def windows_https(self, i: WindowsHttpsIntegration, p: Partner) -> None:
        host = self.hosts[i.host]
        port = i.port or p.default_port
        appid = i.appid or p.appid
        assert port is not None and appid is not None
        clients = tuple(sorted({f"{self.hosts[c].ip}/32" for c in i.clients}, key=_ipkey))
        self.windows.append(
            WindowsBinding(
                integration=self.index,
                id=f"{i.partner}-{host.name}",
                partner=i.partner,
                host=host.name,
                host_ip=host.ip,
                port=port,
                appid=appid,
                thumbprint=i.thumbprint,
                sddl=EVERYONE_SDDL,
                client_sources=clients,
                maintenance_window=i.maintenance_window,
            )
        )
        self.lan_flows.append(
            LanFlow(
                f"{i.partner}-{host.name}-https",
                i.partner,
                f"{p.title} over HTTPS",
                clients,
                host.ip,
                port,
                "tcp",
            )
        )
        self.brief(i.partner, p, i.pattern, [f"https://{host.ip}:{port}/ (LAN only)"])

    def auth_websocket(self, i: AuthWebsocketIntegration, p: Partner) -> None:
        proxy = self.host_plan(i.proxy_host)
        pid = f"{i.partner}-ws"
        ws_host, ws_svc = self.service(i.websocket_service)
        au_host, au_svc = self.service(i.auth_service)
        auth_path = p.auth_path or "/auth"
        param = p.token_query_param or "token"
        routes = (
            ProxyRoutePlan(
                "path",
                auth_path,
                "https" if au_svc.tls else "http",
                au_host.ip,
                au_svc.port,
                False,
                i.auth_service,
            ),
            ProxyRoutePlan(
                "default",
                "/",
                "https" if ws_svc.tls else "http",
                ws_host.ip,
                ws_svc.port,
                True,
                i.websocket_service,
            ),
        )
        self.proxies.append(
            ProxyPlan(
                integration=self.index,
                id=pid,
                partner=i.partner,
                pattern="auth_websocket",
                software="nginx",
                host=proxy.name,
                host_ip=proxy.ip,
                listen_port=8443,
                server_names=(i.server_name,),
                tls=self.tls(pid, i.tls),
                auth="none",
                htpasswd_ref=None,
                htpasswd_path=None,
                client_ca_ref=None,
                client_ca_path=None,
                routes=routes,
                redact_query_params=(param,),
                auth_path=auth_path,
            )
        )
        self.exposures.append(
            Exposure(
                integration=self.index,
                id=pid,
                partner=i.partner,
                pattern=i.pattern,
                public_port=i.public_port,
                protocol="tcp",
                target_host=proxy.name,
                target_ip=proxy.ip,
                target_port=8443,
                sources=tuple(i.sources if i.sources is not None else p.sources),
                tls=True,
                http=True,
                health_path=auth_path,
            )
        )
        s = self.need(i.auth_secret, f"{i.partner} AuthSecret")
        self.devices.append(
            DeviceConfig(
                f"{i.partner}-auth",
                i.partner,
                au_host.name,
                (
                    ("ProviderOutletID", i.provider_outlet_id),
                    ("POSRemoteID", i.pos_remote_id),
                    ("AuthSecret", s.marker),
                ),
            )
        )
        base = f"{i.server_name}:{i.public_port}"
        self.brief(
            i.partner,
            p,
            i.pattern,
            [
                f"POST https://{base}{auth_path}",
                f"wss://{base}/?{param}=ACCESS_TOKEN",
            ],
        )

    def brief(self, partner: str, p: Partner, pattern: str, endpoints: list[str]) -> None:
        self.briefs.append(
            PartnerBrief(partner, p.title, pattern, tuple(endpoints), tuple(p.notes))
        )


def _ipkey(cidr: str) -> tuple[int, int]:
    net = ipaddress.IPv4Network(cidr, strict=False)
    return int(net.network_address), net.prefixlen


def _remote_port(other: Site, ref: str) -> tuple[int, bool]:
    """Public port and TLS of another store's service, as that store exposes it."""
    host, _, svc = ref.partition("/")
    tls = any(s.tls for h in other.hosts if h.name == host for s in h.services if s.name == svc)
    for integ in other.integrations:
        if isinstance(integ, DirectIntegration) and integ.service == ref:
            return integ.public_port, tls
    # Not exposed: lint PN203 reports it; route to the service port so the config is valid.
    port = next(s.port for h in other.hosts if h.name == host for s in h.services if s.name == svc)
    return port, tls


def resolve(
    site: Site, catalog: Catalog, fleet: Mapping[str, Site] | None = None, fleet_name: str = ""
) -> Plan:
    r = _Resolver(site, catalog, fleet or {})
    for index, integ in enumerate(site.integrations):
        p = catalog.partners[integ.partner]
        r.index = index
        getattr(r, integ.pattern)(integ, p)
    wan, lan = site.wan, site.lan
    net = ipaddress.IPv4Network(lan.subnet)
    ddns = None
    if wan.ddns is not None:
        d = wan.ddns
        ddns = DdnsPlan(
            client=d.client,
            provider=d.provider,
            hostname=d.hostname or wan.fqdn or "",
            username=d.username,
            password=r.need(d.password, "DDNS account password"),
            zone=d.zone,
            interface=wan.interface,
        )
    hosts = tuple(sorted((r.host_plan(h.name) for h in site.hosts), key=lambda h: h.name))
    dhcp = tuple(
        sorted(
            (DhcpReservation(h.name, h.mac, h.ip) for h in hosts if h.mac),
            key=lambda d: ipaddress.IPv4Address(d.ip),
        )
    )
    return Plan(
        site_id=site.id,
        site_name=site.name,
        fleet=fleet_name,
        group=site.group,
        wan=WanPlan(wan.ip_mode, wan.isp, wan.interface, wan.public_ip, wan.fqdn),
        lan=LanPlan(
            subnet=lan.subnet,
            gateway=lan.gateway,
            interface=lan.interface,
            prefixlen=net.prefixlen,
            netmask=str(net.netmask),
            pool_start=lan.dhcp_pool.start if lan.dhcp_pool else None,
            pool_end=lan.dhcp_pool.end if lan.dhcp_pool else None,
            domain=lan.domain,
        ),
        management=ManagementPlan(
            site.edge.management.port,
            tuple(sorted(set(site.edge.management.allow_from), key=_ipkey)),
        ),
        firewall=site.edge.kind,
        egress_policy=site.edge.egress,
        hosts=hosts,
        exposures=tuple(sorted(r.exposures, key=lambda e: (e.public_port, e.id))),
        egress=tuple(sorted(r.egress, key=lambda e: e.id)),
        lan_flows=tuple(sorted(r.lan_flows, key=lambda f: f.id)),
        proxies=tuple(sorted(r.proxies, key=lambda p: p.id)),
        ddns=ddns,
        dhcp=dhcp,
        windows=tuple(sorted(r.windows, key=lambda w: w.id)),
        devices=tuple(sorted(r.devices, key=lambda d: d.id)),
        tunnels=tuple(sorted(r.tunnels, key=lambda t: t.id)),
        briefs=tuple(r.briefs),
        secrets=tuple(sorted(r.secrets.values(), key=lambda s: s.ref)),
        lint_disable=tuple(sorted(set(site.lint.disable))),
    )
