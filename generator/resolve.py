"""Resolve a validated Site against the partner catalog into a Plan."""

from __future__ import annotations

from collections.abc import Mapping

from generator.catalog import Catalog
from generator.netparse import ipv4_address, ipv4_network
from generator.patterns import pattern_of
from generator.patterns.context import Context, ipkey
from generator.plan import (
    CheckIpPlan,
    DdnsPlan,
    DhcpReservation,
    LanPlan,
    ManagementPlan,
    Plan,
    WanPlan,
)
from generator.spec.fleet import SiteFacts
from generator.spec.model import Ddns, Site

#: Where a client behind NAT asks for its public address unless the spec names a server:
#: answers over HTTPS with the bare address (both inadyn and ddclient read that).
DEFAULT_CHECKIP = CheckIpPlan("api.ipify.org", None, "/", True)


def checkip_plan(d: Ddns) -> CheckIpPlan:
    c = d.checkip
    return DEFAULT_CHECKIP if c is None else CheckIpPlan(c.server, c.port, c.path, c.tls)


def resolve(
    site: Site,
    catalog: Catalog,
    fleet: Mapping[str, SiteFacts] | None = None,  # other stores, as routes read them
    fleet_name: str = "",
) -> Plan:
    r = Context(site, fleet or {})
    for index, integ in enumerate(site.integrations):
        r.index = index
        pattern_of(integ).resolve(r, integ, catalog.partners[integ.partner])
    wan, lan = site.wan, site.lan
    net = ipv4_network(lan.subnet)
    ddns = None
    if wan.ddns is not None:
        d = wan.ddns
        ddns = DdnsPlan(
            client=d.client,
            provider=d.provider,
            hostname=d.hostname or wan.fqdn or "",
            username=d.username or "",  # none for duckdns and cloudflare
            password=r.need(d.password, "DDNS account password", "ddns-password"),
            zone=d.zone,
            interface=wan.interface,
            checkip=checkip_plan(d) if d.detect == "web" else None,
        )
    hosts = tuple(sorted((r.host_plan(h.name) for h in site.hosts), key=lambda h: h.name))
    dhcp = tuple(
        sorted(
            (DhcpReservation(h.name, h.mac, h.ip) for h in hosts if h.mac),
            key=lambda d: ipv4_address(d.ip),
        )
    )
    return Plan(
        site_id=site.id,
        site_name=site.name,
        fleet=fleet_name,
        group=site.group,
        wan=WanPlan(wan.ip_mode, wan.isp, wan.interface, wan.public_ip, wan.fqdn, wan.address),
        lan=LanPlan(
            subnet=lan.subnet,
            gateway=lan.gateway,
            interface=lan.interface,
            prefixlen=net.prefixlen,
            netmask=str(net.netmask),
            pool_start=lan.dhcp_pool.start if lan.dhcp_pool else None,
            pool_end=lan.dhcp_pool.end if lan.dhcp_pool else None,
            domain=lan.domain,
            dns_upstreams=tuple(lan.dns.upstreams),
            dns_servers=tuple(lan.dns.servers),
        ),
        management=ManagementPlan(
            site.edge.management.port,
            tuple(sorted(set(site.edge.management.allow_from), key=ipkey)),
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
