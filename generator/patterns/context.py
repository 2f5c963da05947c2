"""The small shared context every pattern's resolve step works on.

A pattern reads the store (hosts, services, public name) and adds to the Plan only
through these verbs: expose, need a secret, add a LAN or egress flow, add a proxy,
device file, Windows binding or tunnel, and brief the partner.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from generator.netparse import ipv4_network
from generator.plan import (
    DeviceConfig,
    EgressFlow,
    Exposure,
    HostPlan,
    LanFlow,
    PartnerBrief,
    ProxyPlan,
    SecretKind,
    SecretNeed,
    ServicePlan,
    TlsPlan,
    TunnelPlan,
    WindowsBinding,
)
from generator.spec.parts import TlsSpec

if TYPE_CHECKING:
    from generator.catalog import Partner
    from generator.spec.fleet import SiteFacts
    from generator.spec.model import Site

TLS_DIR = "/etc/posnet/tls"


def secret(ref: str, purpose: str, kind: SecretKind) -> SecretNeed:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", ref).strip("_")
    return SecretNeed(ref=ref, marker=f"@@POSNET_SECRET_{slug}@@", purpose=purpose, kind=kind)


def ipkey(cidr: str) -> tuple[int, int]:
    """Sort key of a network (parsed once per process by netparse)."""
    net = ipv4_network(cidr, strict=False)
    return int(net.network_address), net.prefixlen


def host_cidrs(ips: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Host addresses as sorted, de-duplicated /32s."""
    return tuple(sorted({f"{ip}/32" for ip in ips}, key=ipkey))


def public_name(site: Site) -> str:
    """The name (or address) partners reach the store by: wan.fqdn, else the DDNS name."""
    w = site.wan
    return w.fqdn or (w.ddns.hostname if w.ddns and w.ddns.hostname else None) or str(w.public_ip)


class Context:
    """One store being resolved: what patterns read, and what they add to its Plan."""

    def __init__(self, site: Site, fleet: Mapping[str, SiteFacts]) -> None:
        self.site = site
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
        self.index = -1  # the integration being resolved

    # ------------------------------------------------------------------ reading

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
                # HTTP runs over TCP: a UDP service is never asked for an HTTP answer
                ServicePlan(
                    s.name, s.port, s.protocol, s.tls, s.http and s.protocol == "tcp", s.health_path
                )
                for s in h.services
            ),
        )

    def public_name(self) -> str:
        return public_name(self.site)

    # ------------------------------------------------------------------ adding

    def need(self, ref: str, purpose: str, kind: SecretKind) -> SecretNeed:
        s = self.secrets.get(ref) or secret(ref, purpose, kind)
        self.secrets.setdefault(ref, s)
        return s

    def tls(self, proxy_id: str, t: TlsSpec, resolvers: tuple[str, ...] = ()) -> TlsPlan:
        self.need(t.certificate, f"{proxy_id} certificate chain", "certificate")
        self.need(t.key, f"{proxy_id} private key", "private-key")
        stapling = t.trusted if t.ocsp_stapling is None else t.ocsp_stapling
        return TlsPlan(
            cert_ref=t.certificate,
            key_ref=t.key,
            cert_path=f"{TLS_DIR}/{proxy_id}.crt",
            key_path=f"{TLS_DIR}/{proxy_id}.key",
            openssl=t.openssl,
            trusted=t.trusted,
            # Only a CA-issued certificate can carry an OCSP responder URL; the spec
            # turns it off for one that does not (see TlsSpec.ocsp_stapling).
            stapling=stapling,
            ocsp_resolvers=(resolvers or (self.site.lan.gateway,)) if stapling else (),
        )

    def expose(self, exposure: Exposure) -> None:
        self.exposures.append(exposure)

    def expose_proxy(
        self, proxy: ProxyPlan, public_port: int, sources: tuple[str, ...], health_path: str
    ) -> None:
        """Forward `public_port` on the edge to a proxy's TLS listener."""
        self.expose(
            Exposure(
                integration=self.index,
                id=proxy.id,
                partner=proxy.partner,
                pattern=proxy.pattern,
                public_port=public_port,
                protocol="tcp",
                target_host=proxy.host,
                target_ip=proxy.host_ip,
                target_port=proxy.listen_port,
                sources=sources,
                tls=True,
                http=True,
                health_path=health_path,
            )
        )

    def add_flow(self, flow: LanFlow) -> None:
        self.lan_flows.append(flow)

    def add_egress(
        self,
        fid: str,
        partner: str,
        p: Partner,
        ips: tuple[str, ...],
        extra: tuple[str, ...],
        inspected: bool = False,
    ) -> None:
        """The partner's catalog egress from `ips` (plus `extra` domains on the first).

        A flow carries an SSL-inspection exemption only when the store inspects TLS
        (`inspected`) and the catalog says inspection breaks it: a store that inspects
        nothing gets no exemption list to apply."""
        sources = host_cidrs(ips)
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
                    ssl_inspection_exempt=inspected and e.ssl_inspection_exempt,
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
                    inspected,
                )
            )

    def brief(
        self,
        partner: str,
        p: Partner,
        pattern: str,
        endpoints: list[str],
        notes: tuple[str, ...] = (),
        runtime_urls: tuple[str, ...] = (),
    ) -> None:
        # Notes for every store of the partner, then those for this pattern only, then
        # the integration's own.
        extra = next((n for k, n in p.pattern_notes.items() if k == pattern), [])
        self.briefs.append(
            PartnerBrief(
                partner,
                p.title,
                pattern,
                tuple(endpoints),
                (*p.notes, *extra, *notes),
                integration=self.index,
                runtime_urls=runtime_urls,
            )
        )
