"""What must hold on a store after apply, derived from the same Plan as the configs.

Consumed by the packaged testinfra suite (on the edge) and by `posnet probe` (from a
partner's or a stranger's vantage point).
"""

from __future__ import annotations

from typing import Any

from generator import jsontext
from generator.plan import Plan


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
