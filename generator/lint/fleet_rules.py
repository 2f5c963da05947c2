"""Rules across stores: shared secrets, tunnel roll-outs, central proxy reachability."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

from generator import netparse
from generator.lint import Finding, LintContext, Rule
from generator.plan import Plan


def tunnel_rollout(plans: Sequence[Plan], ctx: LintContext) -> Iterator[Finding]:
    users = sorted(p.site_id for p in plans if p.tunnels)
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


SHOWN = 5  # stores named in one message; the rest are counted


def few(sites: Sequence[str], limit: int = SHOWN) -> str:
    """`a, b, c` or `a, b, c, d, e and 329 more`: one finding per store of a group of
    hundreds must not repeat the whole group (334 stores made 2.6 MB of output)."""
    names = sorted(sites)
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])} and {len(names) - limit} more"


def shared_auth_secret(plans: Sequence[Plan], ctx: LintContext) -> Iterator[Finding]:
    refs: dict[str, list[str]] = defaultdict(list)
    for p in plans:
        for s in p.secrets:
            if s.kind == "auth-secret":
                refs[s.ref].append(p.site_id)
    for ref, sites in sorted(refs.items()):
        if len(sites) > 1:
            for site in sites:
                yield Finding(
                    site,
                    ("integrations",),
                    f"AuthSecret {ref} is shared by {len(sites)} stores: {few(sites)}",
                )


def central_proxy_reach(plans: Sequence[Plan], ctx: LintContext) -> Iterator[Finding]:
    by_name: dict[str, Plan] = {}
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
                        ("integrations",),
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
                        ("integrations",),
                        (
                            f"route {route.value} -> {route.label}: {other.site_id} does not "
                            f"admit this proxy's IP {me} on port {e.public_port}"
                        ),
                    )
                if e.tls != (route.upstream_scheme == "https"):
                    yield Finding(
                        p.site_id,
                        ("integrations",),
                        (
                            f"route {route.value} -> {route.label}: scheme "
                            f"{route.upstream_scheme} does not match the store's service"
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
)
