"""What must hold on a store after apply, derived from the same Plan as the configs.

Consumed by the packaged testinfra suite (on the edge) and by `posnet probe` (from a
partner's or a stranger's vantage point).
"""

from __future__ import annotations

from typing import Any

from generator import jsontext
from generator.plan import Plan


def _auth_check(plan: Plan, exposure_id: str) -> dict[str, str] | None:
    """Where a partner without credentials must be refused, for an exposure in front
    of a proxy that requires them: the first route of its first virtual server (a
    route, not `/`: nginx answers an unrouted path with 404 before it asks for a
    password). None without such a proxy."""
    from generator.targets.proxy_layout import layout

    proxy = next((p for p in plan.proxies if p.id == exposure_id), None)
    if proxy is None or proxy.auth == "none":
        return None
    server = layout(proxy, plan.lan.subnet)[0]
    return {"kind": proxy.auth, "host": server.name, "path": server.routes[0].path}


def expectations(plan: Plan) -> dict[str, Any]:
    from generator.targets import firewall_backend

    target, backend = firewall_backend(plan.firewall)
    ruleset_file = target.artifacts(plan)[0].destination
    public = plan.wan.public_ip or plan.wan.fqdn
    exposures = [
        {
            "id": e.id,
            "partner": e.partner,
            "public_host": public,
            "public_port": e.public_port,
            "protocol": e.protocol,
            "target": f"{e.target_ip}:{e.target_port}",
            "sources": list(e.sources),
            "tls": e.tls,
            "http": e.http,
            "path": e.health_path,
            "auth": _auth_check(plan, e.id),
        }
        for e in plan.exposures
    ]
    exposed = {e.public_port for e in plan.exposures}
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
