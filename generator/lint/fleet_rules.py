"""Rules across stores: shared secrets, tunnel roll-outs, central proxy reachability."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

from generator import netparse
from generator.errors import few
from generator.lint import Finding, FleetView, LintContext, Rule
from generator.plan import ProxyPlan, ProxyRoutePlan
from generator.targets.proxy_layout import is_upstream_name
from generator.targets.tls_policy import is_lan_upstream
from generator.yamlload import YamlPath


def tunnel_rollout(plans: Sequence[FleetView], ctx: LintContext) -> Iterator[Finding]:
    users = sorted(p.site_id for p in plans if p.uses_tunnel)
    if len(users) > ctx.tunnel_limit:
        for site in users:
            yield Finding(
                site,
                ("integrations",),
                (
                    f"{len(users)} stores use a TCP tunnel (limit {ctx.tunnel_limit}): "
                    "move them to a direct connection or a reverse proxy"
                ),
            )


def shared_auth_secret(plans: Sequence[FleetView], ctx: LintContext) -> Iterator[Finding]:
    refs: dict[str, list[str]] = defaultdict(list)
    for p in plans:
        for ref in p.auth_secrets:
            refs[ref].append(p.site_id)
    for ref, sites in sorted(refs.items()):
        if len(sites) > 1:
            for site in sites:
                yield Finding(
                    site,
                    ("integrations",),
                    f"AuthSecret {ref} is shared by {len(sites)} stores: {few(sites)}",
                )


def _at_route(proxy: ProxyPlan, route: ProxyRoutePlan) -> YamlPath:
    """The route in the site spec, else its integration (a route the pattern made)."""
    if route.route < 0:
        return ("integrations", proxy.integration)
    return ("integrations", proxy.integration, "routes", route.route)


def central_proxy_reach(plans: Sequence[FleetView], ctx: LintContext) -> Iterator[Finding]:
    by_name: dict[str, FleetView] = {}
    for p in plans:
        for name in (p.wan.fqdn, p.wan.public_ip):
            if name:
                by_name[name] = p
    for p in plans:
        if p.wan.public_ip is None:
            continue
        me = netparse.ipv4_address(p.wan.public_ip)
        for proxy in p.proxies:
            for route in proxy.routes:
                other = by_name.get(route.upstream_host)
                if other is None or other is p:
                    continue
                exp = [e for e in other.exposures if e.public_port == route.upstream_port]
                if not exp:
                    yield Finding(
                        p.site_id,
                        _at_route(proxy, route),
                        (
                            f"route {route.value} -> {route.label}: {other.site_id} exposes no "
                            f"public port {route.upstream_port}"
                        ),
                    )
                    continue
                e = exp[0]
                if e.sources and not any(me in netparse.ipv4_network(s) for s in e.sources):
                    yield Finding(
                        p.site_id,
                        _at_route(proxy, route),
                        (
                            f"route {route.value} -> {route.label}: {other.site_id} does not "
                            f"admit this proxy's IP {me} on port {e.public_port}"
                        ),
                    )
                if e.tls != (route.upstream_scheme == "https"):
                    yield Finding(
                        p.site_id,
                        _at_route(proxy, route),
                        (
                            f"route {route.value} -> {route.label}: scheme "
                            f"{route.upstream_scheme} does not match the store's service"
                        ),
                    )


def _route_allowed(p: FleetView, host_ip: str, host: str, port: int) -> bool:
    src = netparse.ipv4_address(host_ip)
    return any(
        host in f.domains
        and port in f.ports
        and any(src in netparse.ipv4_network(s, strict=False) for s in f.sources)
        for f in p.egress
    )


def proxy_egress_blocked(plans: Sequence[FleetView], ctx: LintContext) -> Iterator[Finding]:
    """Under `egress: restricted` only named egress flows leave the store; a route to
    another store must be one of them (stores reached by IP never are)."""
    for p in plans:
        if p.egress_policy != "restricted":
            continue
        for proxy in p.proxies:
            for route in proxy.routes:
                if is_lan_upstream(route.upstream_host, p.lan_subnet):
                    continue
                if not _route_allowed(p, proxy.host_ip, route.upstream_host, route.upstream_port):
                    yield Finding(
                        p.site_id,
                        _at_route(proxy, route),
                        (
                            f"route {route.value} -> {route.label}: egress is restricted and "
                            f"nothing lets {proxy.host} reach {route.upstream_host}:"
                            f"{route.upstream_port}"
                            + (
                                " (an address: give that store a wan.fqdn)"
                                if not is_upstream_name(route.upstream_host)
                                else ""
                            )
                        ),
                    )


def proxy_plain_http_hop(plans: Sequence[FleetView], ctx: LintContext) -> Iterator[Finding]:
    for p in plans:
        for proxy in p.proxies:
            for route in proxy.routes:
                if route.upstream_scheme == "http" and not is_lan_upstream(
                    route.upstream_host, p.lan_subnet
                ):
                    yield Finding(
                        p.site_id,
                        _at_route(proxy, route),
                        (
                            f"route {route.value} -> {route.label}: plain HTTP to "
                            f"{route.upstream_host}:{route.upstream_port} crosses the internet "
                            "(credentials and orders in clear): serve that service over TLS"
                        ),
                    )


FLEET_RULES = (
    Rule(
        "PN201",
        "warning",
        "tunnel-large-rollout",
        "The TCP tunnel is not suggested for large-scale roll-outs.",
        fleet_check=tunnel_rollout,
    ),
    Rule(
        "PN202",
        "error",
        "shared-auth-secret",
        "The AuthSecret must be unique per organisation and outlet.",
        fleet_check=shared_auth_secret,
    ),
    Rule(
        "PN203",
        "error",
        "central-proxy-unreachable",
        "A central proxy only works when each store exposes the service to the proxy's address.",
        fleet_check=central_proxy_reach,
    ),
    Rule(
        "PN204",
        "error",
        "proxy-egress-blocked",
        "A proxy in a store with restricted egress must be allowed out to its upstreams.",
        fleet_check=proxy_egress_blocked,
    ),
    Rule(
        "PN205",
        "warning",
        "proxy-plain-http-over-internet",
        "A proxy's hop to an upstream outside its LAN should use TLS.",
        fleet_check=proxy_plain_http_hop,
    ),
)
