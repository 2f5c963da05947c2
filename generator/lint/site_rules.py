"""Rules over one store's Plan. Paths point into the site spec for the reviewer."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from generator.lint import Rule
from generator.netparse import BEHIND_NAT
from generator.plan import Plan
from generator.yamlload import YamlPath

Out = Iterator[tuple[YamlPath, str]]
CONVENTIONAL = {80, 443, 8000, 8080, 8443, 3389}


def _at(index: int) -> YamlPath:
    return ("integrations", index) if index >= 0 else ("integrations",)


def dynamic_ip(plan: Plan) -> Out:
    if plan.wan.mode == "dynamic" and plan.exposures:
        yield (
            ("wan", "ip_mode"),
            (
                "inbound partner access relies on a dynamic IP and a DDNS client; "
                "ask the ISP for a static IP"
            ),
        )


def no_fqdn(plan: Plan) -> Out:
    if plan.exposures and plan.wan.fqdn is None:
        yield ("wan",), "partners reach this store by bare IP; configure an FQDN"


def open_to_anyone(plan: Plan) -> Out:
    for e in plan.exposures:
        if e.open_to_anyone:
            yield (
                _at(e.integration),
                (
                    f"public port {e.public_port} is open to any source"
                    + (f" ({', '.join(e.sources)} is every address)" if e.sources else "")
                    + f"; set partners.{e.partner}.sources in fleet.yaml"
                ),
            )


def tunnel_used(plan: Plan) -> Out:
    for t in plan.tunnels:
        yield _at(t.integration), f"{t.partner} TCP tunnel: not advised for production systems"


def conventional_port(plan: Plan) -> Out:
    for e in plan.exposures:
        if e.public_port in CONVENTIONAL:
            yield (
                _at(e.integration),
                (f"public port {e.public_port} is a conventional port; scanners find it first"),
            )


def plain_http_exposed(plan: Plan) -> Out:
    for e in plan.exposures:
        if not e.tls:
            yield (
                _at(e.integration),
                (
                    f"public port {e.public_port} forwards to plain "
                    f"{'HTTP' if e.http else e.protocol.upper()} "
                    f"on {e.target_host}:{e.target_port}; traffic crosses the internet unencrypted"
                ),
            )


def untrusted_public_cert(plan: Plan) -> Out:
    exposed = {e.target_ip for e in plan.exposures}
    for p in plan.proxies:
        if not p.tls.trusted and p.host_ip in exposed:
            yield (
                _at(p.integration),
                (f"{p.id} presents a self-signed certificate to the internet"),
            )


def public_proxy_without_auth(plan: Plan) -> Out:
    exposed = {(e.target_ip, e.target_port) for e in plan.exposures}
    for p in plan.proxies:
        if (
            p.pattern == "reverse_proxy"
            and p.auth == "none"
            and (p.host_ip, p.listen_port) in exposed
        ):
            yield _at(p.integration), f"{p.id} is public and has no authentication"


def no_local_fallback(plan: Plan) -> Out:
    fallback = {f.partner for f in plan.lan_flows if f.kind == "device-fallback"}
    first: dict[str, int] = {}  # partner -> its first integration with payment devices
    for d in plan.devices:
        if d.kind == "payment-device" and d.partner not in fallback:
            first.setdefault(d.partner, d.integration)
    for partner in sorted(first):
        yield (
            _at(first[partner]),
            (f"{partner}: payment devices have no local fallback when the cloud is unreachable"),
        )


def windows_maintenance(plan: Plan) -> Out:
    for w in plan.windows:
        yield (
            _at(w.integration),
            (
                f"{w.id}: switching to HTTPS interrupts the service; planned for "
                f"{w.maintenance_window}"
            ),
        )


def restricted_without_dns(plan: Plan) -> Out:
    if plan.egress_policy == "restricted" and not plan.egress and plan.exposures == ():
        yield ("edge", "egress"), "egress is restricted but nothing in the plan needs egress"


def domains_not_enforced(plan: Plan) -> Out:
    if plan.egress_policy != "restricted" or plan.lan.edge_dns:
        return
    for f in plan.egress:
        if f.domains:
            yield (
                ("lan", "dns", "servers"),
                f"egress {f.id} needs domains but the LAN's clients are not told to use the "
                "edge's DNS: it is limited by port only, to any address",
            )


def stapling_without_egress(plan: Plan) -> Out:
    if plan.egress_policy != "restricted":
        return
    for p in plan.proxies:
        if p.tls.stapling:
            yield (
                (*_at(p.integration), "tls"),
                f"{p.id} staples OCSP answers, but egress is restricted: it can never "
                "reach its CA's OCSP responder; set tls.ocsp_stapling: false",
            )


def runtime_urls_under_restricted_egress(plan: Plan) -> Out:
    if plan.egress_policy != "restricted":
        return
    for b in plan.briefs:
        if b.runtime_urls:
            yield (
                _at(b.integration),
                f"{b.partner} hands out its {' and '.join(b.runtime_urls)} at run time and "
                "publishes no host for them, but egress is restricted: confirm the hosts "
                f"with {b.title} and set them as the environment's session_hosts",
            )


def ddns_reads_private_address(plan: Plan) -> Out:
    if plan.ddns is None or plan.ddns.checkip is not None:
        return
    for key in ("address", "public_ip"):
        value = getattr(plan.wan, key)
        if value and any(ipaddress.IPv4Address(value) in n for n in BEHIND_NAT):
            yield (
                ("wan", "ddns"),
                f"the WAN address {value} is private (behind NAT): {plan.ddns.client} would "
                "publish it; set wan.ddns.detect: web",
            )
            return


SITE_RULES = (
    Rule(
        "PN101",
        "warning",
        "dynamic-public-ip",
        "The vendor guide recommends a static IP: a DDNS client failing or lagging causes "
        "downtime that is hard to diagnose.",
        check=dynamic_ip,
    ),
    Rule(
        "PN102",
        "warning",
        "exposure-without-fqdn",
        "An FQDN associated with the IP simplifies management; partners should not hard-code IPs.",
        check=no_fqdn,
    ),
    Rule(
        "PN103",
        "warning",
        "no-partner-allow-list",
        "Allow-listing the partner's outgoing IPs stops everyone else from reaching the POS.",
        check=open_to_anyone,
    ),
    Rule(
        "PN104",
        "info",
        "tcp-tunnel",
        "The TCP tunnel is not tested in large live environments and not advised for "
        "production systems.",
        check=tunnel_used,
    ),
    Rule(
        "PN105",
        "info",
        "conventional-port",
        "Unconventional exposed ports help against opportunistic scans.",
        check=conventional_port,
    ),
    Rule(
        "PN106",
        "warning",
        "plain-text-exposure",
        "A POS API exposed without TLS sends orders and credentials in clear text.",
        check=plain_http_exposed,
    ),
    Rule(
        "PN107",
        "error",
        "self-signed-public-certificate",
        "Partners verify certificates; an untrusted self-signed certificate cannot be "
        "used where a trusted one is required.",
        check=untrusted_public_cert,
    ),
    Rule(
        "PN108",
        "error",
        "public-proxy-without-auth",
        "A reverse proxy on the internet must authenticate the partner (basic auth or "
        "client certificates).",
        check=public_proxy_without_auth,
    ),
    Rule(
        "PN109",
        "warning",
        "no-local-fallback",
        "When the cloud or ISP is down, devices need a local fallback to keep transacting.",
        check=no_local_fallback,
    ),
    Rule(
        "PN110",
        "info",
        "maintenance-window",
        "Enabling HTTPS makes the back office unavailable until every terminal is reconfigured.",
        check=windows_maintenance,
    ),
    Rule(
        "PN111",
        "info",
        "restricted-egress-unused",
        "A restricted egress policy with no partner egress blocks everything but DNS.",
        check=restricted_without_dns,
    ),
    Rule(
        "PN113",
        "warning",
        "egress-domains-not-enforced",
        "Restricted egress is enforced by domain only when clients resolve through the "
        "edge, which adds each answer to the flow's firewall set.",
        check=domains_not_enforced,
    ),
    Rule(
        "PN114",
        "warning",
        "ddns-behind-nat",
        "A DDNS client that reads a private WAN address publishes an address partners "
        "cannot reach; behind NAT only a check-ip server sees the public one.",
        check=ddns_reads_private_address,
    ),
    Rule(
        "PN115",
        "warning",
        "ocsp-stapling-without-egress",
        "A proxy fetches the OCSP answers it staples from its CA over HTTP; restricted "
        "egress admits no such flow, so nginx and Apache log the failure and staple nothing.",
        check=stapling_without_egress,
    ),
    Rule(
        "PN116",
        "warning",
        "cloud-session-hosts-unknown",
        "A cloud connector's devices and POS connect a second time to URLs the cloud "
        "returns at run time; restricted egress lets them reach only the published hosts.",
        check=runtime_urls_under_restricted_egress,
    ),
)
