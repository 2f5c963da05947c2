"""What must hold on a store after apply, derived from the same Plan as the configs.

Consumed by the packaged testinfra suite (on the edge) and by `posnet probe` (from a
partner's or a stranger's vantage point).
"""

from __future__ import annotations

from typing import Any

from generator import jsontext
from generator.plan import Plan, ProxyPlan

# The proxy behind an exposure, with the server name partners use and its first route.
Front = tuple[ProxyPlan, str, str]


def _fronts(plan: Plan) -> dict[str, Front | None]:
    from generator.targets.proxy_layout import front_door

    proxies = {p.id: p for p in plan.proxies}
    return {
        e.id: (p, *front_door(p, plan.lan.subnet)) if (p := proxies.get(e.id)) else None
        for e in plan.exposures
    }


def server_names(plan: Plan, fronts: dict[str, Front | None] | None = None) -> dict[str, str]:
    """The name partners send (SNI, Host) and the certificate carries, per exposure: a
    proxy's server name, else the store's public name (its address without one)."""
    public = plan.wan.fqdn or plan.wan.public_ip or "PUBLIC-IP"
    found = _fronts(plan) if fronts is None else fronts
    return {i: f[1] if f else public for i, f in found.items()}


def expectations(plan: Plan) -> dict[str, Any]:
    from generator.targets import firewall_backend

    target, backend = firewall_backend(plan.firewall)
    ruleset_file = target.artifacts(plan)[0].destination
    public = plan.wan.public_ip or plan.wan.fqdn
    fronts = _fronts(plan)
    names = server_names(plan, fronts)
    exposures = []
    for e in plan.exposures:
        front = fronts[e.id]
        exposures.append(
            {
                "id": e.id,
                "partner": e.partner,
                "public_host": public,
                "server_name": names[e.id],
                "public_port": e.public_port,
                "protocol": e.protocol,
                "target": f"{e.target_ip}:{e.target_port}",
                "sources": list(e.sources),
                "open_to_anyone": e.open_to_anyone,  # a stranger finds it open
                "tls": e.tls,
                "http": e.http,
                # a proxy's route: its `/` only reaches the catch-all's 404, no upstream
                "path": front[2] if front else e.health_path,
                # a proxy that asks for credentials must refuse `path` without them
                # (a route: an unrouted path is a 404 before any password is asked)
                "auth": {"kind": front[0].auth} if front and front[0].auth != "none" else None,
            }
        )
    # the TCP ports the probe finds as exposures; a UDP exposure's number is no TCP port
    exposed = {e.public_port for e in plan.exposures if e.protocol == "tcp"}
    # the management port is probed as itself (probe reads firewall.management_port)
    taken = exposed | {plan.management.port}
    blocked = sorted(({s.port for h in plan.hosts for s in h.services} | {3389, 445, 23}) - taken)
    return {
        "site": plan.site_id,
        "firewall": {
            "kind": plan.firewall,
            "table": backend.activation.table,
            "file": ruleset_file,
            "policy": "drop",
            "management_port": plan.management.port,
        },
        "exposures": exposures,
        "blocked_ports": blocked,
        "dhcp": [{"name": d.name, "mac": d.mac, "ip": d.ip} for d in plan.dhcp],
        "ddns": {"client": plan.ddns.client, "hostname": plan.ddns.hostname} if plan.ddns else None,
    }


def render(plan: Plan) -> dict[str, str]:
    return {"expectations.json": jsontext.dumps(expectations(plan), indent=2) + "\n"}
